"""The Class profiles page driven headlessly: a small synthetic data set, a background job, the results."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main("profiles")
"""


def test_profiles_page_runs_a_job_and_shows_the_profile():
    from earmark.training.synthetic import is_cached

    if not is_cached("synth-freq"):
        pytest.skip("the synth-freq model is not cached yet (tests/test_synthetic.py trains it)")
    at = AppTest.from_string(HARNESS, default_timeout=300)
    at.run()
    assert not at.exception
    at.selectbox(key="prof_source").set_value("synth-freq")
    at.run()
    at.multiselect(key="prof_explainers_stft").set_value(["ig", "energy"])
    at.slider(key="prof_n").set_value(1)
    at.run()
    at.button(key="prof_start").click()
    at.run()
    assert not at.exception
    job = at.session_state["prof_job"]
    assert job.wait(240) and job.status == "done", job.error
    at.run()
    assert not at.exception and not at.warning
    result = job.result
    assert set(result.explainers) == {"ig", "energy"} and sum(len(v) for v in result.clips.values()) == 6
    titles = " ".join(str(s.value) for s in at.subheader)
    assert "Shortcut flags" in titles and "Listen to class" in titles
    assert len(at.get("plotly_chart")) >= 3
    assert at.get("audio"), "the prototype players are drawn"
