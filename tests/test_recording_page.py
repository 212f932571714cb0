"""The Recording page driven headlessly: pick, scan in the background, tracks and events, play, explain, export."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main("recording")
"""
pytestmark = pytest.mark.timeout(900)


def _app() -> AppTest:
    at = AppTest.from_string(HARNESS, default_timeout=300)
    at.session_state["w_model"] = "scan-digits"
    return at


def _scan(at: AppTest) -> None:
    at.button(key="rec_scan").click().run()
    for _ in range(240):
        if at.session_state["rec_timeline"] is not None:
            break
        time.sleep(0.5)
        at.run()
    at.run()
    assert at.session_state["rec_timeline"] is not None, "the scan did not finish"


def test_recording_page_scans_a_server_recording(tmp_path, monkeypatch):
    monkeypatch.delenv("EARMARK_DATA", raising=False)
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "noise.wav", (rng.standard_normal(8000 * 12) * 0.01).astype(np.float32), 8000)
    monkeypatch.setenv("EARMARK_RECORDINGS", str(tmp_path))
    at = _app()
    at.run()
    assert not at.exception
    assert at.selectbox(key="rec_pick").options == ["noise.wav", "Upload"]
    _scan(at)
    assert not at.exception
    tl = at.session_state["rec_timeline"]
    assert tl.duration == pytest.approx(12.0) and tl.probs.shape[1] == 11
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    assert [b.label for b in at.get("download_button")] == ["CSV", "Raven", "Audacity"]
    at.selectbox(key="rec_stitch_method").set_value("saliency")
    at.button(key="rec_stitch").click().run()
    assert not at.exception
    stitched = at.session_state["rec_stitched"]
    assert stitched.saliency.shape == (12 * 8000,) and (stitched.coverage > 0).all()
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.slow   # ~60-90 s on a loaded 2-core machine (scan, then one explanation, through AppTest)
def test_recording_page_finds_and_explains_the_digits(fsdd, tmp_path, monkeypatch):
    monkeypatch.setenv("EARMARK_DATA", str(fsdd))
    monkeypatch.setenv("EARMARK_CACHE", str(tmp_path))
    monkeypatch.delenv("EARMARK_RECORDINGS", raising=False)
    at = _app()
    at.run()
    assert at.selectbox(key="rec_pick").value == "Phone number (example)"
    _scan(at)
    assert not at.exception
    tl = at.session_state["rec_timeline"]
    events = tl.events(0.5, trim_db=20)            # scan-digits' card: hop 0.05 s, events trimmed at 20 dB
    assert tl.hop == pytest.approx(0.05) and len(events) >= 10
    at.selectbox(key="rec_event").set_value(3).run()
    assert len(at.get("audio")) >= 1
    at.button(key="rec_explain_event").click().run()
    assert not at.exception
    assert at.session_state["rec_moment"] == pytest.approx((events[3].start + events[3].end) / 2)
    assert at.session_state["rec_explained"] is not None
    assert len(at.get("image")) >= 1            # the moment figure, on the recording's time axis
