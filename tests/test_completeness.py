"""IG's completeness check: the report in the Explanation, the JSON summary, the CLI warning, and the
bundled front end (soft-RMS level normalisation) that keeps IG from the zero baseline non-degenerate."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from earmark.explainers import explain
from earmark.explanation import COMPLETENESS_WARN, completeness
from earmark.models.audionet import LEGACY_FLOOR, LEVEL_FLOOR, rms_normalise
from earmark.models.base import from_module
from earmark.transforms import get_transform

SR, L = 8000, 512


class Levelled(nn.Module):
    """tanh MLP on the soft-RMS-normalised wave: scale-invariant when ``floor`` is tiny."""

    def __init__(self, floor: float, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.floor = floor
        self.net = nn.Sequential(nn.Linear(L, 16), nn.Tanh(), nn.Linear(16, 3))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(p.shape[-1])))

    def forward(self, x):
        return self.net(rms_normalise(x, self.floor))


def wrap(net):
    return from_module(net, sample_rate=SR, num_samples=L, labels=["a", "b", "c"])


def clip(rms: float = 0.1):
    x = torch.randn(L, generator=torch.Generator().manual_seed(1))
    return x / x.pow(2).mean().sqrt() * rms


def test_completeness_report_thresholds_relative_to_the_output_change():
    ok = completeness(-0.05, 2.0)
    assert ok["ok"] and ok["warning"] is None and ok["relative_gap"] == pytest.approx(0.025)
    bad = completeness(-2.0, 3.2)
    assert not bad["ok"] and "completeness gap" in bad["warning"] and bad["relative_gap"] == pytest.approx(0.625)
    assert completeness(0.3, 0.0)["relative_gap"] is None and not completeness(0.3, 0.0)["ok"]
    assert completeness(0.0, 0.0)["ok"]
    assert completeness(0.19, 1.0, threshold=0.2)["ok"] and not completeness(0.21, 1.0, threshold=0.2)["ok"]


def test_scale_invariant_model_is_flagged_and_the_soft_floor_is_not():
    """With the legacy floor f(αx) = f(x) for α ≫ floor/rms: the logit jumps before IG's first step."""
    t = get_transform("stft", SR, n_fft=128, hop=32)
    x = clip(0.1)
    legacy = explain(wrap(Levelled(LEGACY_FLOOR)), x, t, 0, method="ig", n_steps=16, baselines="zero",
                     spacing="uniform")                                   # the paper's midpoint rule
    soft = explain(wrap(Levelled(LEVEL_FLOOR)), x, t, 0, method="ig", n_steps=16, baselines="zero",
                   spacing="uniform")
    bad, good = legacy.completeness(), soft.completeness()
    assert not bad["ok"] and bad["relative_gap"] > 0.2
    assert good["ok"] and good["relative_gap"] < 0.05
    # the report is the extras' numbers
    assert bad["gap"] == pytest.approx(float(legacy.extras["completeness_gap"][0]))
    assert bad["output_change"] == pytest.approx(float(legacy.extras["output_change"][0]))
    # JSON summary: at the top level, with the warning
    summary = legacy.summary()
    assert summary["completeness"]["ok"] is False and summary["warnings"] == [bad["warning"]]
    assert soft.summary()["warnings"] == [] and soft.summary()["completeness"]["ok"] is True
    json.dumps(summary)


def test_methods_without_completeness_have_no_report():
    t = get_transform("stft", SR, n_fft=128, hop=32)
    e = explain(wrap(Levelled(LEVEL_FLOOR)), clip(), t, 0, method="saliency", n_draws=2)
    assert e.completeness() is None and "completeness" not in e.summary()


def test_threshold_constant_is_a_share():
    assert 0 < COMPLETENESS_WARN < 1


def test_log_spaced_points_resolve_the_jump_near_the_baseline():
    """``spacing="cubic"`` (the default) puts points where a level-normalising model changes."""
    t = get_transform("stft", SR, n_fft=128, hop=32)
    x, model = clip(1.0), wrap(Levelled(LEGACY_FLOOR))
    paper = explain(model, x, t, 0, method="ig", n_steps=50, baselines="zero", spacing="uniform").completeness()
    ours = explain(model, x, t, 0, method="ig", n_steps=50, baselines="zero").completeness()
    assert not paper["ok"] and ours["ok"] and ours["relative_gap"] < paper["relative_gap"] / 4


def test_path_points_are_a_quadrature():
    from earmark.explainers.ig import path_alphas, path_points

    a, w = path_points(10, "uniform")
    assert torch.equal(a, path_alphas(10)) and torch.allclose(w, torch.full((10,), 0.1))
    a, w = path_points(50, "cubic", dtype=torch.float64)
    assert a.shape == w.shape == (50,) and bool((a[1:] > a[:-1]).all()) and float(a[0]) == pytest.approx(1e-6)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-3) and bool((w > 0).all())
    # integrates a smooth integrand (d/dα sin 3α) and one that is sharp at 0 (d/dα log(1e-3 + α))
    assert float((3 * torch.cos(3 * a) * w).sum()) == pytest.approx(math.sin(3.0), abs=1e-3)
    assert float((w / (1e-3 + a)).sum()) == pytest.approx(math.log(1.001 / 1e-3), rel=1e-3)
    a, w = path_points(50, "uniform", dtype=torch.float64)
    assert abs(float((w / (1e-3 + a)).sum()) / math.log(1.001 / 1e-3) - 1) > 0.1    # the midpoint rule misses it
