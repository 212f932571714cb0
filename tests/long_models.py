"""A 16 kHz model whose input is 10 s (160,000 samples) and a 10 s clip for it, for the app's long-clip tests
and ``tools/studies/toggle_timing.py``: a linear model of the energy of 100 blocks (cheap, with gradients), so
an IG map in the STFT (129 × 2,501 cells) is computed in seconds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

SR = 16_000
SECONDS = 10
NAME = "test-linear-10s"


class BlockEnergy(nn.Module):
    """logits = W · (mean energy of 100 equal blocks of the input): (B, 160,000) → (B, 3)."""

    def __init__(self, classes: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.weight = nn.Parameter(torch.randn(classes, 100, generator=g) / 100, requires_grad=False)

    def forward(self, x):
        return x.reshape(x.shape[0], 100, -1).pow(2).mean(-1) @ self.weight.T


def register() -> str:
    """Register :data:`NAME` in the model registry (once per process) and return it."""
    from earmark.models import MODELS, ModelSpec, from_module, register_model

    if NAME not in MODELS:
        register_model(ModelSpec(NAME, "Linear block-energy model, 10 s at 16 kHz (tests)",
                                 lambda dev: from_module(BlockEnergy(), sample_rate=SR, num_samples=SR * SECONDS,
                                                         labels=["a", "b", "c"], name=NAME), kind="synthetic"))
    return NAME


def clip(seed: int = 11) -> np.ndarray:
    """(160,000,) a gliding tone in bursts plus a little noise (a word every second or so)."""
    g = np.random.default_rng(seed)
    t = np.arange(SR * SECONDS) / SR
    tone = np.sin(2 * np.pi * (300 + 200 * t) * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)
    return (0.3 * tone + 0.01 * g.standard_normal(t.size)).astype(np.float32)


def clip_wav(seed: int = 11) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, clip(seed), SR, format="WAV", subtype="FLOAT")
    return buf.getvalue()


ROOT = Path(__file__).resolve().parents[1]
#: The Explore page with this model registered; ``_profile_to`` in the session state profiles one run.
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / 'tests')!r})
import long_models
long_models.register()
import streamlit as st
from dashboard.app import main
if st.session_state.get("_profile_to"):   # a profile of this run only, in the script's own thread
    import cProfile
    cProfile.runctx('main("explore")', globals(), locals(), st.session_state.pop("_profile_to"))
else:
    main("explore")
"""


def explore_app(explainer: str = "ig", **state):
    """An ``AppTest`` of Explore on the 10 s clip with this model, IG (4 steps) in the STFT; ``state`` adds
    session keys."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(HARNESS, default_timeout=600)
    at.session_state["w_model"] = register()
    at.session_state["w_transform"] = "stft"
    at.session_state["w_explainer"] = explainer
    at.session_state["p_explainer_ig_n_steps"] = 4
    at.session_state["pending_bytes"] = ("ten-seconds.wav", clip_wav())
    for k, v in state.items():
        at.session_state[k] = v
    return at
