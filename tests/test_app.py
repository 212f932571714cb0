"""The dashboard driven headlessly with ``streamlit.testing.v1.AppTest``.

Every test uses a fast configuration (synthetic model, IG with 4 path steps). The pages are run through
``dashboard.app.main(page)`` — the same sidebar and page scripts as the router, because AppTest reruns only
the page script of a ``st.navigation`` app after the first run; one test covers the router itself.
Bad inputs enter through ``pending_bytes``, the same handler the uploader and the microphone use.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamlit.testing.v1 import AppTest

from apptest_jobs import explain, run, settle

ROOT = Path(__file__).resolve().parents[1]
MODEL = "synth-tf"   # weights trained on demand and cached; the digit models may lack weights
TIMEOUT = 600        # the first test may train the synthetic model

HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main(st.session_state.get("_test_page", "explore"))
"""

pytestmark = pytest.mark.timeout(1800)


def make_app(**state) -> AppTest:
    at = AppTest.from_string(HARNESS, default_timeout=TIMEOUT)
    at.session_state["w_model"] = MODEL
    at.session_state["p_explainer_ig_n_steps"] = 4
    for k, v in state.items():
        at.session_state[k] = v
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "caption", "markdown", "success")
             for e in getattr(at, kind)]
    return "\n".join(map(str, parts))


def n_charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def wav(wave: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def tone(seconds: float = 1.0, sr: int = 8000, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


# ---- router ----------------------------------------------------------------------------------------

def test_router_entry_file_runs():
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=TIMEOUT)
    at.session_state["w_model"] = MODEL
    at.run(timeout=TIMEOUT)
    assert not at.exception
    assert any("Earmark" in t.value for t in at.title)


# ---- input sources ---------------------------------------------------------------------------------

def test_example_explain_views_listen_export():
    at = run(make_app())
    assert at.session_state["w_source"] == "Example"
    assert at.session_state["w_example"]  # earmark.examples.default_example()
    assert n_charts(at) == 2  # waveform + probabilities before explaining
    explain(at)
    assert n_charts(at) >= 5   # + saliency, uncertainty, per-band importance
    assert "What the uncertainty means here" in texts(at)
    # IG draws its map from the zero baseline first, then finishes the spread over three baselines
    assert "with its uncertainty in" in texts(at)
    # the first-look map was replaced by the final one, not added: waveform, probabilities, saliency,
    # uncertainty, bands and IG's declared chart (completeness gap per baseline)
    assert n_charts(at) == 6
    assert len(at.get("audio")) >= 5  # clip + original/keep/remove/soft
    assert "model hears" in texts(at)
    labels = {b.label for b in at.get("download_button")}
    assert any("PNG" in l for l in labels) and any("NPZ" in l for l in labels) and any("JSON" in l for l in labels)
    assert sum("WAV" in l for l in labels) == 3
    # a file now, or rendered on click (the PNG and the npz: seconds on a 10 s map, not on every rerun)
    assert all(b.proto.url or b.proto.HasField("deferred_file_id") for b in at.get("download_button"))
    assert {b.label for b in at.get("download_button") if b.proto.HasField("deferred_file_id")} == {
        "PNG figure (power, saliency, uncertainty)", "Maps and axes (NPZ)"}
    assert any("earmark explain" in c.value and f"--model {MODEL}" in c.value for c in at.code)
    # re-running with the same settings shows the stored result without pressing Explain
    run(at)
    assert n_charts(at) >= 5


def test_generator_source_and_offset():
    at = run(make_app(w_source="Generator", w_gen_kind="chirp", p_gen_signal_seconds=2.0))
    assert not at.error, [e.value for e in at.error]
    # 2 s clip, 0.5 s model input: the window is a visible choice
    assert at.slider(key="w_offset").value == pytest.approx(0.75)
    at.slider(key="w_offset").set_value(0.2)
    run(at)
    explain(at)
    assert n_charts(at) >= 5


def test_upload_source_48k_stereo_is_resampled_with_note():
    at = run(make_app(w_source="Upload"))
    stereo = np.stack([tone(1.0, 48000), tone(1.0, 48000, 880)], axis=1)
    at.get("file_uploader")[0].set_value(("stereo48k.wav", wav(stereo, 48000), "audio/wav"))
    run(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["input_bytes"][0] == "stereo48k.wav"
    explain(at)
    assert n_charts(at) >= 5


def test_microphone_source():
    at = run(make_app(w_source="Microphone"))
    at.get("audio_input")[0].set_value(("recording.wav", wav(tone(0.8), 16000), "audio/wav"))
    run(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["input_bytes"][0] == "recording.wav"
    assert n_charts(at) == 2


# ---- bad input never breaks the page ---------------------------------------------------------------

def _nan_wav() -> bytes:
    x = tone(1.0)
    x[100:200] = np.nan
    return wav(x, 8000, "FLOAT")


BAD = {
    "corrupt": ("broken.wav", b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4),
    "empty": ("empty.wav", b""),
    "unsupported": ("notes.txt", b"this is not audio at all\n" * 50),
    "nan": ("nan.wav", None),
    "silence": ("silence.wav", None),
    "ten_minutes": ("long.wav", None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_shows_a_message(case):
    name, data = BAD[case]
    if case == "nan":
        data = _nan_wav()
    elif case == "silence":
        data = wav(np.zeros(8000, np.float32), 8000)
    elif case == "ten_minutes":
        data = wav(np.zeros(600 * 8000, np.float32) + 0.01, 8000)
    at = run(make_app(pending_bytes=(name, data)))
    messages = [e.value for e in at.error] + [w.value for w in at.warning]
    assert messages, f"no message for {case}"
    assert not any("Traceback" in m for m in messages)
    # the app stays usable: back to an example, explain works
    at.session_state["w_source"] = "Example"
    run(at)
    explain(at)
    assert n_charts(at) >= 5


def test_bundled_default_model_loads():
    at = run(make_app(w_model="audionet-digits"))
    assert not at.error and at.button(key="explain")          # the weights ship in assets/models


# ---- every model, transform and explainer is reachable ---------------------------------------------

def test_every_model_is_selectable():
    from earmark.models import MODELS

    at = run(make_app())
    for name in MODELS.names():
        at.session_state["w_model"] = name
        run(at)
        assert at.error or at.button(key="explain"), name


def test_every_transform_explains_and_every_explainer_has_widgets():
    from earmark.explainers import EXPLAINERS
    from earmark.transforms import TRANSFORMS

    at = run(make_app())
    for tname in TRANSFORMS.names():
        at.session_state["w_transform"] = tname
        at.session_state["w_explainer"] = "ig"
        run(at)
        explain(at)
        assert n_charts(at) >= 4, tname
        for spec in EXPLAINERS:
            if not spec.supports(tname):
                continue
            at.session_state["w_explainer"] = spec.name
            run(at)
            keys = {w.key.removesuffix("_auto") for kind in ("slider", "selectbox", "toggle", "select_slider",
                                                             "number_input", "checkbox")
                    for w in at.get(kind) if w.key}
            missing = [p.name for p in spec.params if f"p_explainer_{spec.name}_{p.name}" not in keys]
            assert not missing, (spec.name, missing)


def test_energy_reference_explains_without_settings():
    """The model-free reference: no sliders, a zero uncertainty map drawn without error, listenable."""
    at = explain(run(make_app(w_explainer="energy", w_transform="stft")))
    assert n_charts(at) >= 4
    assert not at.get("button") or "reset_explainer_energy" not in {b.key for b in at.get("button")}
    assert len(at.get("audio")) >= 5
    assert any("--explainer energy" in c.value for c in at.code)


def test_reset_button_restores_defaults():
    at = run(make_app())
    assert at.session_state["p_explainer_ig_n_steps"] == 4
    at.button(key="reset_explainer_ig").click()
    run(at)
    assert at.session_state["p_explainer_ig_n_steps"] == 50


def test_target_class_and_seed():
    at = run(make_app(w_target=1, w_seed=3))
    explain(at)
    assert "Explained class **" in texts(at)
    assert any("--target 1" in c.value and "--seed 3" in c.value for c in at.code)


# ---- pin, compare, clear; faithfulness; about -----------------------------------------------------

def test_pin_compare_remove_clear():
    at = run(make_app())
    explain(at)
    at.button(key="pin").click()
    run(at)
    at.session_state["w_seed"] = 1
    run(at)
    explain(at)
    at.button(key="pin").click()
    run(at)
    assert len(at.session_state["slots"]) == 2
    run(at, "compare")
    body = texts(at)
    assert "Slot 1" in body and "Slot 2" in body
    assert n_charts(at) == 2
    assert len(at.get("audio")) == 4  # keep/remove per slot
    at.button(key="remove_slot_0").click()
    run(at)
    assert len(at.session_state["slots"]) == 1
    at.button(key="clear_slots").click()
    run(at)
    assert at.session_state["slots"] == []
    assert "Nothing pinned yet" in texts(at)


def test_faithfulness_page():
    at = run(make_app(w_seed=4242))  # a seed no other test explained (results are shared per server)
    run(at, "evaluate")
    assert "Explain" in texts(at)  # nothing computed yet for these settings → says what to do
    run(at, "explore")
    explain(at)
    run(at, "evaluate")
    assert n_charts(at) == 1 or at.warning  # curves, or a message while earmark.metrics is missing
    table = at.dataframe[0].value
    assert {"score", "ig", "energy reference"} <= set(table.columns)
    assert len(at.get("plotly_chart")[0].proto.spec) and "energy reference" in at.get("plotly_chart")[0].proto.spec
    at.toggle(key="w_eval_reference").set_value(False)
    run(at)
    assert "energy reference" not in set(at.dataframe[0].value.columns)


def test_about_page_lists_models_and_methods():
    at = run(make_app(), "about")
    body = texts(at)
    assert "Free Spoken Digit Dataset" in body
    assert "Integrated Gradients" in body


# ---- jobs: the page submits, polls and draws; widgets stay live ----------------------------------------

def _service():
    import sys
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from dashboard.services import job_service
    return job_service()   # the server's one shared service (st.cache_resource), as the app sees it


def _progress_text(at: AppTest) -> str:
    return "\n".join(p.proto.text for p in at.get("progress"))


def _job(at: AppTest):
    jobs = [j for j in at.session_state["_jobs"].values() if j.spec.kind == "explanation"]
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_a_job_survives_a_widget_change_and_a_page_switch_and_can_be_stopped():
    service = _service()
    at = run(make_app(w_seed=8080, w_explainer="freqrise", p_explainer_freqrise_n_masks=20000,
                      p_explainer_freqrise_stop="budget"))    # the whole budget: the run is still going
    service.pause()  # hold the job in the queue while the person clicks around
    try:
        at.button(key="explain").click()
        run(at)
        job = _job(at)
        assert job.status == "queued" and "in the queue" in _progress_text(at)
        at.toggle(key="w_log_freq").set_value(True)             # a view toggle
        run(at)
        assert _job(at) is job and not job.cancel_requested and "in the queue" in _progress_text(at)
        run(at, "evaluate")                                     # another page shows the same job
        assert _job(at) is job and "being computed" in _progress_text(at)
        run(at, "explore")
        # an estimate as FreqRISE publishes it: the poll draws it with the masks so far and the convergence
        import torch
        from earmark.jobs import JobContext
        from earmark.transforms import get_transform

        cur = at.session_state["current"]
        shape = get_transform(cur["settings"].transform, cur["card"].sample_rate,
                              **dict(cur["settings"].tparams)).map_shape(cur["card"].num_samples)
        JobContext(job).partial(torch.rand(tuple(shape)), 400, 20000, 0.61)
        run(at)
        spec_json = " ".join(c.proto.spec for c in at.get("plotly_chart"))
        assert "after 400 of 20,000 masks, convergence 0.61" in spec_json
    finally:
        service.resume()
    while job.status == "queued":
        job.wait(5, since=job.version)
    at.toggle(key="w_log_freq").set_value(False)                # while it runs
    run(at)
    assert _job(at) is job and not job.cancel_requested
    assert job.status == "running", job                         # 20,000 masks: far from done
    at.button(key="stop_explain").click()                       # the fragment's Stop button keeps the work
    run(at)
    assert job.status == "stopped" and (job.done or 0) < 20000
    run(at)
    assert "Partial result" in texts(at) and at.button(key="continue") is not None
    at.session_state["p_explainer_freqrise_n_masks"] = 200      # Explain again: a new job, to the end
    run(at)
    explain(at)
    assert n_charts(at) >= 5 and "What the uncertainty means here" in texts(at)


def test_identical_requests_from_two_sessions_share_one_job():
    service = _service()
    a = run(make_app(w_seed=9090))
    b = run(make_app(w_seed=9090))
    service.pause()
    try:
        a.button(key="explain").click()
        run(a)
        b.button(key="explain").click()
        run(b)
        assert _job(a) is _job(b) and len(_job(a).sessions) == 2
    finally:
        service.resume()
    settle(a)
    settle(b)
    assert n_charts(a) >= 5 and n_charts(b) >= 5


def test_a_request_above_max_model_passes_is_refused_with_the_setting_named():
    at = run(make_app(w_explainer="freqrise", p_explainer_freqrise_n_masks=90000))
    at.button(key="explain").click()
    run(at)
    assert any("max_model_passes" in e.value for e in at.error), [e.value for e in at.error]


def test_sampling_and_mask_methods_start_at_stop_auto_with_the_paper_value_labelled():
    """The app's runs end when the map has converged (the budget stays the cap); "budget" is the paper's."""
    at = run(make_app(w_explainer="freqrise", p_explainer_freqrise_n_masks=600))
    box = at.selectbox(key="p_explainer_freqrise_stop")
    assert box.value == "auto" and "budget (paper)" in box.options
    assert at.selectbox(key="p_explainer_freqrise_sampler").value == "sobol"         # a third of the masks
    assert at.selectbox(key="p_explainer_freqrise_estimator").value == "control_variate"
    explain(at)
    line = next(c.value for c in at.caption if "forward / " in c.value)
    assert ("converged after " in line and " of 600 masks (stop = auto" in line) or "all 600 masks (stop = auto" in line
    assert any("--set stop=auto" in c.value for c in at.code)
    at.button(key="reset_explainer_freqrise").click()       # the paper's defaults: the whole budget
    run(at)
    assert at.session_state["p_explainer_freqrise_stop"] == "budget"
    assert at.session_state["p_explainer_freqrise_sampler"] == "bernoulli"
