"""Every control keeps its value across reruns, pages and hidden states; the figures show the numbers the
colour rules of ``earmark.display`` give.

Each test changes a control, hides it (another page, another source or explainer, a result that is not
computed), shows it again, and checks both the widget's value and what is drawn with it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_app import explain, make_app, run, texts

pytestmark = pytest.mark.timeout(1800)

KINDS = ("toggle", "slider", "select_slider", "selectbox", "number_input", "checkbox", "segmented_control",
         "text_input")


def widget(at, key):
    for kind in KINDS:
        for w in at.get(kind):
            if w.key == key:
                return w
    return None


def figure(at, key: str) -> dict:
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(key):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no figure {key}")


def heatmap(fig: dict) -> dict:
    return [t for t in fig["data"] if t.get("type") == "heatmap"][-1]


def z(trace) -> np.ndarray:
    """The heatmap's values (plotly may ship them as a base64 typed array)."""
    v = trace["z"]
    if isinstance(v, dict):
        import base64
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = [int(n) for n in str(v["shape"]).split(",")] if "shape" in v else [-1]
        return arr.reshape(shape).astype(float)
    return np.array([[np.nan if x is None else x for x in row] for row in v], dtype=float)


def set_and_run(at, key, value):
    widget(at, key).set_value(value)
    return run(at)


def away_and_back(at, page="about"):
    run(at, page)
    return run(at, "explore")


def explained(**state):
    at = run(make_app(**state))
    return explain(at)


# ---- view controls on Explore: change, leave the page, come back ---------------------------------------

def test_k_slider_keeps_its_value_and_the_players_follow():
    at = explained()
    set_and_run(at, "w_k", 25)
    assert "**Keep 25 %** →" in texts(at)
    away_and_back(at)
    assert widget(at, "w_k").value == 25
    assert "**Keep 25 %** →" in texts(at) and "**Remove 25 %** →" in texts(at)
    # hidden by a result that is not computed yet (another seed), then shown again
    at.session_state["w_seed"] = 7
    run(at)
    assert widget(at, "w_k") is None
    at.session_state["w_seed"] = 0
    run(at)
    assert widget(at, "w_k").value == 25 and "**Keep 25 %** →" in texts(at)


def test_match_toggle_keeps_its_value():
    at = explained()
    set_and_run(at, "w_match", False)
    away_and_back(at)
    assert widget(at, "w_match").value is False
    assert at.session_state["v_match"] is False


def test_log_frequency_toggle_keeps_its_value_and_the_axis_is_log():
    at = explained()
    set_and_run(at, "w_log_freq", True)
    away_and_back(at)
    assert widget(at, "w_log_freq").value is True
    assert figure(at, "fig_saliency")["layout"]["yaxis2"]["type"] == "log"


def test_colour_by_rank_is_the_default_and_padding_is_blank():
    """The default colours each live cell by its rank (the bar's whole length shows structure; the ticks give
    values), and zero padding (cells masking cannot change) is drawn blank."""
    at = explained()
    trace = heatmap(figure(at, "fig_saliency"))
    shown = z(trace)
    assert trace["zmin"] == -1 and trace["zmax"] == 1 and "rank" in trace["colorbar"]["title"]["text"]
    assert len(trace["colorbar"]["ticktext"]) >= 3
    blank = np.isnan(shown)
    assert blank.any() and not blank.all()                                  # the example is padded
    live = shown[~blank]
    lo, hi = np.percentile(live, [5, 95])
    assert (hi - lo) / 2 >= 0.8                                             # the live cells use the bar


def test_clip_colours_toggle_changes_the_limit_and_persists():
    from earmark.display import colour_limit

    at = explained(w_contrast="value", v_contrast="value")
    clipped = heatmap(figure(at, "fig_saliency"))
    shown = z(clipped)
    assert clipped["zmax"] == pytest.approx(colour_limit(shown, 99.5), rel=1e-4)
    assert clipped["zmin"] == pytest.approx(-clipped["zmax"])  # IG: signed, symmetric around 0
    set_and_run(at, "w_clip_colours", False)
    away_and_back(at)
    assert widget(at, "w_clip_colours").value is False
    full = heatmap(figure(at, "fig_saliency"))
    assert full["zmax"] == pytest.approx(np.nanmax(np.abs(z(full))), rel=1e-4)
    assert full["zmax"] >= clipped["zmax"]


def test_layout_keeps_its_value_and_cannot_become_empty():
    at = explained()
    set_and_run(at, "w_layout", "Side by side")
    away_and_back(at)
    assert widget(at, "w_layout").value == "Side by side"
    titles = [a.get("text") for a in figure(at, "fig_saliency")["layout"].get("annotations", [])]
    assert "Power (dB)" in titles
    set_and_run(at, "w_layout", None)  # clicking the selected option again
    assert at.session_state["v_layout"] == "Side by side"


def test_dim_silent_cells_blanks_the_quiet_cells_and_persists():
    at = explained(w_contrast="value", v_contrast="value")
    padding = np.isnan(z(heatmap(figure(at, "fig_saliency"))))       # cells masking cannot change: blank
    assert not padding.all()
    set_and_run(at, "w_dim_silent", True)
    away_and_back(at, "compare")
    assert widget(at, "w_dim_silent").value is True
    blank = np.isnan(z(heatmap(figure(at, "fig_saliency"))))
    assert blank.any() and not blank.all() and (blank >= padding).all()   # quiet cells blanked as well


def test_freqrise_is_shown_relative_to_its_mean_and_the_choice_persists():
    state = dict(w_explainer="freqrise", p_explainer_freqrise_n_masks=50, w_contrast="value", v_contrast="value")
    at = explained(**state)
    trace = heatmap(figure(at, "fig_saliency"))
    assert "mean" in trace["colorbar"]["title"]["text"]
    shown = z(trace)
    assert abs(np.nanmean(shown)) < 1e-6 * max(1.0, np.nanmax(np.abs(shown)))  # centred on its own mean
    assert trace["zmin"] == pytest.approx(-trace["zmax"])
    set_and_run(at, "w_reference", "zero")
    at.session_state["w_explainer"] = "ig"
    run(at)
    at.session_state["w_explainer"] = "freqrise"
    run(at)
    assert widget(at, "w_reference").value == "zero"
    trace = heatmap(figure(at, "fig_saliency"))
    assert trace["zmin"] == 0.0 and np.nanmin(z(trace)) >= -1e-4 * np.nanmax(z(trace))  # round-off only
    set_and_run(at, "w_reference", "baseline")
    assert "mean score" in heatmap(figure(at, "fig_saliency"))["colorbar"]["title"]["text"]


# ---- sidebar controls: hidden by another source / explainer, shown again ----------------------------

def test_example_choice_survives_the_generator():
    at = run(make_app())
    from earmark.examples import list_examples

    other = [e.name for e in list_examples() if e.name != widget(at, "w_example").value][0]
    set_and_run(at, "w_example", other)
    set_and_run(at, "w_source", "Generator")
    assert widget(at, "w_example") is None
    set_and_run(at, "w_source", "Example")
    assert widget(at, "w_example").value == other


def test_generator_settings_survive_and_frequencies_stay_below_nyquist():
    at = run(make_app(w_source="Generator"))
    set_and_run(at, "w_gen_kind", "tone")
    set_and_run(at, "p_gen_signal_freq", 1200.0)
    set_and_run(at, "w_source", "Example")
    set_and_run(at, "w_source", "Generator")
    assert widget(at, "w_gen_kind").value == "tone"
    assert widget(at, "p_gen_signal_freq").value == 1200.0
    assert widget(at, "p_gen_signal_freq").max < 4000.0   # 8 kHz: Nyquist 4 kHz
    assert "reset_gen_signal" not in {b.key for b in at.get("button")}
    set_and_run(at, "p_gen_signal_sample_rate", 2000)
    assert widget(at, "p_gen_signal_freq").value <= 1000.0
    assert "below Nyquist (1000 Hz" in texts(at)


def test_explainer_settings_survive_another_explainer():
    at = run(make_app())
    set_and_run(at, "p_explainer_ig_blur_ms", 8.0)
    set_and_run(at, "w_explainer", "smoothgrad")
    assert widget(at, "p_explainer_ig_blur_ms") is None
    set_and_run(at, "w_explainer", "ig")
    assert widget(at, "p_explainer_ig_blur_ms").value == 8.0
    assert ("blur_ms", 8.0) in at.session_state["current"]["settings"].eparams


def test_transform_target_seed_survive_other_pages():
    at = run(make_app())
    set_and_run(at, "w_transform", "mel")
    set_and_run(at, "w_target", 1)
    set_and_run(at, "w_seed", 5)
    run(at, "about")
    run(at, "evaluate")
    run(at, "explore")
    assert widget(at, "w_transform").value == "mel"
    assert widget(at, "w_target").value == 1 and widget(at, "w_seed").value == 5
    s = at.session_state["current"]["settings"]
    assert (s.transform, s.target, s.seed) == ("mel", 1, 5)


def test_offset_survives_a_short_clip():
    at = run(make_app(w_source="Generator", p_gen_signal_seconds=2.0))
    set_and_run(at, "w_offset", 0.4)
    set_and_run(at, "p_gen_signal_seconds", 0.5)
    assert widget(at, "w_offset") is None
    set_and_run(at, "p_gen_signal_seconds", 2.0)
    assert widget(at, "w_offset").value == pytest.approx(0.4)
    assert at.session_state["current"]["offset"] == pytest.approx(0.4)


# ---- the sliders the declarations ask for ---------------------------------------------------------

def test_count_sliders_are_logarithmic_and_small_noise_is_a_number():
    at = run(make_app(w_explainer="freqrise"))
    n_masks = widget(at, "p_explainer_freqrise_n_masks")
    assert {"300", "1,000", "3,000", "100,000"} <= set(n_masks.options) and n_masks.value == 3000
    set_and_run(at, "p_explainer_freqrise_n_masks", 300)
    assert ("n_masks", 300) in at.session_state["current"]["settings"].eparams
    at = run(make_app(w_transform="dwt", w_explainer="wam_sg"))
    noise = widget(at, "p_explainer_wam_sg_noise_level")
    assert type(noise).__name__ == "NumberInput" and noise.value == pytest.approx(0.001)


def test_auto_settings_say_the_paper_value():
    at = run(make_app(w_transform="stft", w_explainer="learnable_mask"))
    auto = widget(at, "p_explainer_learnable_mask_lambda_r_auto")
    assert auto.label.endswith("auto (paper: 2)") and auto.value is True
    assert ("lambda_r", -1.0) in at.session_state["current"]["settings"].eparams
    set_and_run(at, "p_explainer_learnable_mask_lambda_r_auto", False)
    assert widget(at, "p_explainer_learnable_mask_lambda_r").value == 2.0
    set_and_run(at, "p_explainer_learnable_mask_lambda_r", 3.5)
    set_and_run(at, "w_explainer", "ig")
    set_and_run(at, "w_explainer", "learnable_mask")
    assert widget(at, "p_explainer_learnable_mask_lambda_r").value == 3.5
    assert ("lambda_r", 3.5) in at.session_state["current"]["settings"].eparams


# ---- other pages' controls -------------------------------------------------------------------------

def test_compare_and_faithfulness_controls_persist():
    at = explained()
    at.button(key="pin").click()
    run(at)
    run(at, "compare")
    set_and_run(at, "w_cmp_what", "Uncertainty")
    run(at, "evaluate")
    set_and_run(at, "w_eval_steps", 10)
    set_and_run(at, "w_eval_reference", False)
    run(at, "explore")
    run(at, "compare")
    assert widget(at, "w_cmp_what").value == "Uncertainty"
    fig = [json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith("cmp_fig_0")][0]
    assert "Uncertainty" in heatmap(fig)["colorbar"]["title"]["text"]
    assert heatmap(fig)["zmax"] == 1.0  # normalised
    run(at, "evaluate")
    assert widget(at, "w_eval_steps").value == 10 and widget(at, "w_eval_reference").value is False


def test_presentation_mode_persists_and_opens_the_panel():
    at = explained()
    set_and_run(at, "w_present", True)
    run(at, "compare")
    run(at, "explore")
    assert widget(at, "w_present").value is True
    panel = [e for e in at.get("expander") if "What am I looking at" in e.label]
    assert panel and "Keep top" in " ".join(m.value for m in panel[0].markdown)
    fig = figure(at, "fig_saliency")
    assert fig["layout"]["font"]["size"] >= 19
    assert heatmap(fig)["colorscale"][0][1] != "rgba(5,48,160,1)"  # the colour-blind-safe overlay


def test_export_png_follows_the_screen_and_json_has_provenance():
    at = explained()
    set_and_run(at, "w_clip_colours", False)
    buttons = {b.key: b for b in at.get("download_button")}
    assert {"dl_png", "dl_npz", "dl_json"} <= set(buttons)
    from dashboard import services as sv

    cur = at.session_state["current"]
    exp = sv.explanation(cur["settings"])
    data = json.loads(sv.json_bytes(cur["settings"], exp, cur["clip"].name))
    for key in ("clip", "model", "labels", "prediction", "target_label", "command", "params", "seed"):
        assert key in data, key
    assert data["command"].startswith("earmark explain")
    import io
    arrays = np.load(io.BytesIO(sv.npz_bytes(cur["settings"], exp, len(cur["ready"].wave))))
    assert {"saliency", "uncertainty", "axes_freqs", "axes_times"} <= set(arrays)


# ---- feedback and click-a-region-to-hear -------------------------------------------------------------

def test_training_message_only_when_the_synthetic_model_must_be_trained(tmp_path, monkeypatch):
    from dashboard import services as sv

    assert sv.training_message("audionet-digits") is None
    monkeypatch.setenv("EARMARK_CACHE", str(tmp_path))   # an empty cache: the model would be trained
    text = sv.training_message("synth-tf")
    assert text and "Training the synthetic model 'synth-tf'" in text and "two minutes" in text


def test_stereo_48k_upload_says_it_was_mixed_and_resampled():
    import io

    import soundfile as sf

    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)], axis=1).astype(np.float32) * 0.3
    buf = io.BytesIO()
    sf.write(buf, stereo, 48000, format="WAV")
    at = run(make_app(pending_bytes=("stereo48k.wav", buf.getvalue())))
    assert "mixed 2 channels to mono and resampled 48000 Hz → 8000 Hz" in texts(at)
    assert not at.error, [e.value for e in at.error]


def test_a_box_on_the_map_plays_only_that_region():
    from dashboard import services as sv
    from dashboard.views import region_from_event

    at = explained()
    cur = at.session_state["current"]
    grid = sv.display(cur["settings"], cur["ready"].wave, sv.explanation(cur["settings"]))
    event = {"selection": {"box": [{"x": [0.3, 0.6], "y": [200.0, 1500.0]}], "points": []}}
    region = region_from_event(event, grid, False)
    assert region["box"] == ((0.3, 0.6), (200.0, 1500.0), None) and "0.30–0.60 s" in region["text"]
    assert region_from_event({"selection": {"box": []}}, grid, False) is None
    wave, probs = sv.listen_region(cur["settings"], cur["ready"].wave, region["box"])
    sr = cur["card"].sample_rate
    outside = np.r_[wave[: int(0.25 * sr)], wave[int(0.65 * sr):]]
    assert np.abs(outside).max() < 0.05 * np.abs(wave).max()   # silent outside the box's time span
    spectrum = np.abs(np.fft.rfft(wave))
    f = np.fft.rfftfreq(len(wave), 1 / sr)
    inside = spectrum[(f > 150) & (f < 1600)].sum()
    assert inside > 0.8 * spectrum.sum()                          # the energy sits in the box's band
    assert probs.shape == (len(cur["card"].labels),) and abs(probs.sum() - 1) < 1e-4


def test_segment_start_of_a_long_recording_survives_another_source():
    import io

    import soundfile as sf

    sr = 8000
    t = np.arange(70 * sr) / sr
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="PCM_16")
    at = run(make_app(pending_bytes=("long.wav", buf.getvalue())))
    assert "longer than 60 s" in texts(at) and "segment=(" not in texts(at)   # no Python API text
    set_and_run(at, "w_segment_start", 10.0)
    set_and_run(at, "w_source", "Example")
    assert widget(at, "w_segment_start") is None
    set_and_run(at, "w_source", "Upload")
    assert widget(at, "w_segment_start").value == 10.0
    assert at.session_state["current"]["clip"].duration == pytest.approx(60.0)
