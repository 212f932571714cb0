"""The energy reference: the clip's own energy per cell, with no model passes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from earmark.explainers import EXPLAINERS, explain
from earmark.models.base import from_module
from earmark.transforms import get_transform

SR, L = 8000, 1024


def model():
    net = nn.Linear(L, 3)
    return from_module(net, sample_rate=SR, num_samples=L, labels=["a", "b", "c"])


def tone(freq: float) -> torch.Tensor:
    t = torch.arange(L) / SR
    return torch.sin(2 * math.pi * freq * t)


def test_time_domain_energy_is_the_squared_waveform_and_costs_no_passes():
    x = torch.randn(L, generator=torch.Generator().manual_seed(0))
    exp = explain(model(), x, get_transform("time", SR), 0, method="energy")
    assert torch.allclose(exp.saliency, x.pow(2), atol=1e-6)
    assert exp.meta["forward_passes"] <= 1 and exp.meta["backward_passes"] == 0   # at most the prediction
    assert float(exp.uncertainty.abs().max()) == 0.0


@pytest.mark.parametrize("domain", ["fourier", "stft", "mel"])
def test_a_tone_puts_its_energy_at_its_frequency(domain):
    tr = get_transform(domain, SR)
    freq = 1000.0
    exp = explain(model(), tone(freq), tr, 0, method="energy")
    axes = tr.axes(L)
    rows = exp.saliency if exp.saliency.dim() == 1 else exp.saliency.sum(-1)        # energy per frequency
    peak = float(axes.freqs[int(rows.argmax())])
    width = float(axes.freqs[1] - axes.freqs[0]) if domain != "mel" else 0.15 * freq
    assert abs(peak - freq) <= width, (domain, peak)


def test_dwt_energy_sums_to_the_clip_energy():
    """The DWT is orthogonal (periodised sym2 is not exactly, so allow a little): Σ z² ≈ Σ x²."""
    x = torch.randn(L, generator=torch.Generator().manual_seed(1))
    exp = explain(model(), x, get_transform("dwt", SR), 0, method="energy")
    assert float(exp.saliency.sum()) == pytest.approx(float(x.pow(2).sum()), rel=0.05)


def test_registered_as_a_reference_without_settings():
    spec = EXPLAINERS.get("energy")
    assert spec.family == "reference" and spec.params == ()
