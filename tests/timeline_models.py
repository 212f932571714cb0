"""Toy models with known answers for the recording tests (also loadable as entry points by the CLI).

``tone()``: 1 s windows at 1 kHz; ``tone`` fires when the window's central 0.1 s holds a 100 Hz tone
(energy of the centre over 0.1), else ``quiet``: its events are the tone's own times to one hop.
``two_tones()``: sigmoid (multi-label), ``low`` for 100 Hz and ``high`` for 300 Hz in the centre.
``linear(weights)``: a logit that is linear in the waveform, for the stitching tests.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from earmark.models import from_module

RATE = 1000
WINDOW = 1000


class _Tone(nn.Module):
    def forward(self, x):
        c = x[:, WINDOW // 2 - 50:WINDOW // 2 + 50]
        logit = (c.pow(2).mean(-1) - 0.1) * 100
        return torch.stack([-logit, logit], -1)


class _TwoTones(nn.Module):
    """Sigmoid logits from the correlation of the window's centre with 100 Hz and 300 Hz."""

    def __init__(self):
        super().__init__()
        t = torch.arange(100) / RATE
        self.register_buffer("basis", torch.stack([torch.cos(2 * math.pi * f * t + p) for f in (100, 300)
                                                   for p in (0, math.pi / 2)]))

    def forward(self, x):
        c = x[:, WINDOW // 2 - 50:WINDOW // 2 + 50]
        power = (c @ self.basis.T).pow(2).view(-1, 2, 2).sum(-1) / 25.0   # ~1 for a unit tone
        return (power - 0.3) * 20


class _Linear(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.register_buffer("w", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, x):
        return x @ self.w.T


def tone():
    return from_module(_Tone(), sample_rate=RATE, num_samples=WINDOW, labels=["quiet", "tone"], name="toy-tone")


def two_tones():
    model = from_module(_TwoTones(), sample_rate=RATE, num_samples=WINDOW, labels=["low", "high"],
                        name="toy-two-tones")
    from dataclasses import replace
    model.card = replace(model.card, activation="sigmoid")
    return model


def linear(weights: np.ndarray):
    """Logits ``W @ x`` for weights (C, WINDOW)."""
    return from_module(_Linear(weights), sample_rate=RATE, num_samples=WINDOW,
                       labels=[f"c{i}" for i in range(len(weights))], name="toy-linear")


def tone_recording(spans, *, seconds: float = 30.0, freq: float = 100.0, rate: int = RATE) -> np.ndarray:
    """A unit-amplitude tone during each (start, end) of ``spans``, silence elsewhere."""
    t = np.arange(int(seconds * rate)) / rate
    on = np.zeros_like(t, dtype=bool)
    for a, b in spans:
        on |= (t >= a) & (t < b)
    return np.where(on, np.sin(2 * np.pi * freq * t), 0.0).astype(np.float32)
