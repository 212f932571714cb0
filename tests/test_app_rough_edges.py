"""The rough edges a new user met, driven through the app (``AppTest``): each fails on the app before its fix.

Pure figure, view and loader checks are in ``test_rough_edges.py``; rendered layout in ``test_browser.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from apptest_jobs import settle, unfinished
from test_app import explain, make_app, run, texts, tone, wav

pytestmark = pytest.mark.timeout(1800)


def _widgets(at, prefix: str) -> dict:
    out = {}
    for kind in ("slider", "select_slider", "number_input", "selectbox", "toggle"):
        for w in at.get(kind):
            if w.key and w.key.startswith(prefix):
                out[w.key[len(prefix):]] = w
    return out


def test_generator_shows_the_chosen_kinds_settings_with_plain_names():
    at = run(make_app(w_source="Generator"))
    at.selectbox(key="w_gen_kind").set_value("tone")
    run(at)
    shown = _widgets(at, "p_gen_signal_")
    assert set(shown) == {"sample_rate", "seconds", "amplitude", "freq"}
    assert shown["freq"].label == "Frequency (Hz)" and shown["sample_rate"].label == "Sample rate (Hz)"
    assert all("_" not in w.label for w in shown.values())
    at.selectbox(key="w_gen_kind").set_value("chirp")
    run(at)
    shown = _widgets(at, "p_gen_signal_")
    assert set(shown) == {"sample_rate", "seconds", "amplitude", "f0", "f1"}
    assert shown["f0"].label == "Start frequency (Hz)" and shown["f1"].label == "End frequency (Hz)"
    options = at.selectbox(key="w_gen_kind").options
    assert "Chirp (a sweep from one frequency to another)" in options and not any("`" in o or "f0" in o
                                                                                for o in options)


def test_the_window_of_a_long_clip_is_said_once_as_information_and_real_warnings_stay():
    at = run(make_app(pending_bytes=("long.wav", wav(tone(3.72), 8000))))
    hears = [t for t in texts(at).splitlines() if "hears" in t and "3.72 s clip" in t]
    assert len(hears) == 1, hears
    assert [i.value for i in at.info if "The model hears" in i.value] == hears
    assert not [w.value for w in at.warning if "hears" in w.value]
    assert "longer than the model's input" not in texts(at)
    silent = run(make_app(pending_bytes=("quiet.wav", wav(np.zeros(8000, np.float32), 8000))))
    assert any("silent" in w.value for w in silent.warning)          # a real warning is still a warning


def test_a_cached_result_says_it_came_from_the_cache():
    at = run(make_app(w_seed=31337))
    explain(at)
    first = next(c.value for c in at.caption if "forward / " in c.value)
    assert "from cache" not in first
    explain(at)                                   # the same settings again: answered by the result cache
    again = next(c.value for c in at.caption if "forward / " in c.value)
    assert "from cache" in again and "first map in 0.00 s" not in again


def test_compare_slots_score_only_on_request():
    at = run(make_app(w_seed=4711))
    explain(at)
    at.button(key="pin").click()
    run(at)
    run(at, "compare")
    kinds = [spec.kind for spec in at.session_state["_jobs"]]
    assert "faithfulness" not in kinds, kinds           # drawing a slot starts nothing
    assert not at.dataframe
    at.button(key="score_slot_0").click()
    run(at)
    settle(at)
    assert not unfinished(at)
    assert "faithfulness" in [spec.kind for spec in at.session_state["_jobs"]]
    assert at.dataframe and "score" in at.dataframe[0].value.columns
    assert not [b for b in at.button if b.key == "score_slot_0"]      # scored: no button any more


def test_quiz_names_the_method_and_domain_as_the_menus_do(tmp_path, monkeypatch):
    from earmark.explainers import EXPLAINERS
    from earmark.transforms import TRANSFORMS

    monkeypatch.setenv("EARMARK_QUIZ_DB", str(tmp_path / "quiz.sqlite"))
    at = run(make_app(w_model="audionet-digits"), "quiz")
    body = " ".join(str(m.value) for m in at.markdown)
    assert f"{EXPLAINERS.items['ig'].title} map in the {TRANSFORMS.items['stft'].title} domain" in body
    assert "ig map in the stft domain" not in body
    q = at.session_state["quiz_question"]
    at.radio(key="quiz_answer").set_value(q.truth)
    at.get("form_submit_button")[0].click()
    run(at)
    assert "Right" in " ".join(str(s.value) for s in at.success)
    assert at.session_state["quiz_question"].clip != q.clip and at.session_state["quiz_answer"] is None


def test_a_link_carries_the_settings_and_follows_them():
    at = make_app()
    at.query_params.update({"clip": "digit_3_en-us", "domain": "dwt", "explainer": "saliency", "seed": "5",
                            "model": "synth-tf"})
    run(at)
    s = at.session_state["current"]["settings"]
    assert (s.clip_name, s.transform, s.explainer, s.seed, s.model) == ("digit_3_en-us", "dwt", "saliency", 5,
                                                                         "synth-tf")
    assert at.query_params["clip"] == "digit_3_en-us" and at.query_params["seed"] == "5"
    at.number_input(key="w_seed").set_value(6)
    run(at)
    assert at.query_params["seed"] == "6"                          # written when the settings change
    assert at.session_state["current"]["settings"].seed == 6       # and the link is read only on first load
    at.selectbox(key="w_explainer").set_value("ig")
    run(at)
    _widgets(at, "p_explainer_ig_")["n_steps"].set_value(10)
    run(at)
    assert at.query_params["explainer"] == "ig" and at.query_params["e.n_steps"] == "10"
    again = make_app()                                             # the link opens the same settings
    again.query_params.update(at.query_params)
    run(again)
    assert again.session_state["current"]["settings"] == at.session_state["current"]["settings"]

    bad = make_app()
    bad.query_params.update({"model": "no-such-model", "seed": "-3", "domain": "wavelets", "e.n_steps": "many"})
    run(bad)
    assert not bad.exception and bad.session_state["current"] is not None
    note = " ".join(str(t.value) for t in bad.toast)
    assert "partly skipped" in note and "no-such-model" in note and "seed" in note and "wavelets" in note
