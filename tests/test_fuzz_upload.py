"""The dashboard's upload path with hostile files (issue 13): what the app keeps and plays is the clip at
the model's rate, mono; decoding bombs and broken headers are one message, and the page stays usable."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
MODEL = "synth-tf"   # trained on demand and cached, as in test_app.py
TIMEOUT = 600
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main(st.session_state.get("_test_page", "explore"))
"""

pytestmark = pytest.mark.timeout(1800)


def app(**state) -> AppTest:
    at = AppTest.from_string(HARNESS, default_timeout=TIMEOUT)
    at.session_state["w_model"] = MODEL
    at.session_state["p_explainer_ig_n_steps"] = 4
    for k, v in state.items():
        at.session_state[k] = v
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def encode(data: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def test_upload_is_kept_and_played_at_the_model_rate():
    """Before: a 48 kHz stereo upload was kept (and re-encoded for the player) at 48 kHz."""
    t = np.arange(48000 * 10) / 48000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)], axis=1)
    data = encode(stereo.astype(np.float32), 48000)
    at = app(pending_bytes=("stereo48k.wav", data))
    assert not at.error, [e.value for e in at.error]
    current = at.session_state["current"]
    card = current["card"]
    clip = current["clip"]
    assert clip.sample_rate == card.sample_rate and clip.clip.original_rate == 48000 and clip.clip.channels == 2
    assert len(clip.wave) == 10 * card.sample_rate
    from dashboard import services as sv
    played = sv.wav_bytes(clip.wave, clip.sample_rate)
    assert len(played) < 2 * 10 * card.sample_rate + 1000 < len(data) // 4   # 16-bit mono at the model's rate


@pytest.mark.parametrize("case, message", [
    ("rate0", "has a sample rate of 0 Hz in its header"),
    ("bomb", "has a sample rate of 384,000 Hz; Earmark reads 1,000 to 192,000 Hz"),
    ("odd-rate", None),
])
def test_hostile_uploads(case, message):
    if case == "rate0":
        data = bytearray(encode(np.zeros(64, np.float32), 8000))
        data[24:28] = bytes(4)
    elif case == "bomb":
        buffer = io.BytesIO()
        with sf.SoundFile(buffer, "w", samplerate=384_000, channels=8, format="FLAC", subtype="PCM_16") as f:
            f.write(np.zeros((384_000, 8), np.int16))
        data = buffer.getvalue()
    else:  # 22,051 Hz: before, +2.9 GB and 23 s in the resampler; now an ordinary clip
        data = encode((0.3 * np.sin(2 * np.pi * 300 * np.arange(22051) / 22051)).astype(np.float32), 22051)
    at = app(pending_bytes=(f"{case}.wav", bytes(data)))
    errors = [e.value for e in at.error]
    if message is None:
        assert not errors and at.session_state["current"]["clip"].clip.original_rate == 22051
    else:
        assert any(message in e for e in errors), errors
        assert not any("Traceback" in e for e in errors)
