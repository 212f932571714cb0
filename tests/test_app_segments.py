"""AppTest of the Segments page: the strip, the table sorted by score, the players and a segment file upload."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apptest_jobs import run

ROOT = Path(__file__).resolve().parents[1]
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main(st.session_state.get("_test_page", "segments"))
"""

pytestmark = pytest.mark.timeout(600)


def make_app() -> AppTest:
    at = AppTest.from_string(HARNESS, default_timeout=300)
    at.session_state["w_model"] = "melcnn-digits"         # shipped weights, 1 s clips
    at.session_state["_test_page"] = "segments"
    return at


def test_segment_strip_table_and_players():
    at = run(make_app())
    at.radio(key="seg_source").set_value("grid")
    run(at)
    at.select_slider(key="seg_width").set_value(0.25)
    run(at)
    assert len(at.get("plotly_chart")) == 1                   # the strip above the waveform
    table = at.dataframe[0].value
    assert len(table) == 4                                    # 1 s in 0.25 s spans
    scores = list(table["score"])
    assert scores == sorted(scores, reverse=True)             # sorted by score
    assert len(at.get("audio")) == 4                          # alone, without, top-k, original
    assert any("f(all) − f(none)" in c.value for c in at.caption)
    at.selectbox(key="seg_pick").set_value(2)
    run(at)
    assert any("alone" in m.value for m in at.markdown)
    at.selectbox(key="seg_method").set_value("occlusion")
    run(at)
    assert len(at.dataframe[0].value) == 4


def test_segment_file_upload_path_and_bad_file_sentence():
    at = run(make_app())
    at.radio(key="seg_source").set_value("file")
    run(at)
    assert any("Upload a segment file" in i.value for i in at.info)
