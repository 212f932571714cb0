"""Sampling explainers (FreqRISE, RELAX) and their mask generators, checked against known answers.

The explainers run with reduced mask counts here (100–1000 instead of the papers' 3,000) on tiny
analytic models so the whole file takes a few seconds on one CPU core.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError
from earmark.explainers import EXPLAINERS, explain
from earmark.explainers.freqrise import explain_freqrise
from earmark.explainers.masks import (
    STRATEGIES, WeightedMoments, block_masks, chunk_schedule, grid_for, smooth_masks, strategy_masks,
    to_map_space,
)
from earmark.explainers.relax import explain_relax, u_relax
from earmark.models.base import from_module
from earmark.probe import Probe, no_progress
from earmark.transforms import get_transform

SR = 8000


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- toy models -------------------------------------------------------------------------------------
class BandModel(nn.Module):
    """Class 1's logit is a fixed linear readout of the rFFT magnitude in bins 10–15 (nothing else)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        band = torch.fft.rfft(x, norm="ortho").abs()[:, 10:16].sum(-1)
        logit = 0.25 * (band - 12.0)
        return torch.stack([torch.zeros_like(logit), logit], dim=-1)


class IdentityEmbedding(nn.Module):
    """Embedding = the waveform itself; logits = ± its sum (only there to satisfy the contract)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.sum(-1)
        return torch.stack([s, -s], dim=-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ConstantEmbedding(IdentityEmbedding):
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(x.shape[0], 4, dtype=x.dtype, device=x.device) + 0 * x[:, :1]


def band_setup():
    n = 256
    t = torch.arange(n, dtype=torch.float32)
    cos = lambda k, a: a * torch.cos(2 * math.pi * k * t / n)  # noqa: E731
    x = cos(11, 1.0) + cos(13, 1.0) + cos(14, 1.0) + cos(40, 2.0) + cos(60, 2.0) + cos(90, 2.0)
    model = from_module(BandModel(), sample_rate=SR, num_samples=n, labels=["off", "on"])
    return model, x


def burst_setup():
    """512 samples, a 1 kHz tone (STFT bin 8 at n_fft = 64) in samples 192–320, silence elsewhere."""
    n = 512
    t = torch.arange(n, dtype=torch.float32)
    x = torch.sin(2 * math.pi * 1000 * t / SR) * ((t >= 192) & (t < 320)).float()
    model = from_module(IdentityEmbedding(), sample_rate=SR, num_samples=n, labels=["a", "b"], embed="embed")
    tr = get_transform("stft", SR, n_fft=64, hop=16)
    return model, x, tr


# ---- masks ------------------------------------------------------------------------------------------
def test_grid_follows_aspect_and_dimension():
    assert grid_for((129, 126), 200) == (14, 14)
    assert grid_for((4001, 1), 200) == (200, 1)
    assert grid_for((1, 8000), 200) == (1, 200)
    assert grid_for((6, 4003), 200) == (6, 33)          # DWT: one grid row per level
    gf, gt = grid_for((40, 126), 200)
    assert abs(gf * gt - 200) <= 10 and gt > gf


@pytest.mark.parametrize("shape,p", [((129, 126), 0.5), ((129, 126), 0.3), ((4001, 1), 0.5), ((1, 2000), 0.7)])
def test_smooth_masks_range_and_keep_rate(shape, p):
    m = smooth_masks(400, shape, p=p, generator=gen(0))
    assert m.shape == (400, *shape) and m.dtype == torch.float32
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    assert abs(float(m.mean()) - (1 - p)) < 0.02


def _smooth_masks_by_upsampling(n, shape, *, cells, p, generator):
    """The definition (RISE): the whole grid bilinearly up-sampled by ``F.interpolate``, then cropped."""
    f, t = shape
    gf, gt = grid_for(shape, cells)
    cf, ct = math.ceil(f / gf), math.ceil(t / gt)
    grid = (torch.rand((n, 1, gf, gt), generator=generator) >= p).float()
    size = (f if gf == f else (gf + 1) * cf, t if gt == t else (gt + 1) * ct)
    up = torch.nn.functional.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0]
    dy = torch.randint(0, 1 if gf == f else cf, (n, 1), generator=generator)
    dx = torch.randint(0, 1 if gt == t else ct, (n, 1), generator=generator)
    rows, cols = dy + torch.arange(f), dx + torch.arange(t)
    return up[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


@pytest.mark.parametrize("shape", [(129, 2501), (129, 126), (64, 2501), (6, 4003), (1, 16000), (4001, 1), (20, 7)])
def test_smooth_masks_equal_upsampling_then_crop(shape):
    """The axis-by-axis interpolation of the cropped pixels gives the up-sampled image's pixels."""
    ours = smooth_masks(12, shape, p=0.5, generator=gen(3))
    reference = _smooth_masks_by_upsampling(12, shape, cells=200, p=0.5, generator=gen(3))
    assert torch.allclose(ours, reference, atol=2e-5)


def test_smooth_masks_are_smooth_and_shifted():
    m = smooth_masks(4000, (1, 400), cells=20, p=0.5, generator=gen(1))[:, 0]        # cells of 20 px
    c = torch.corrcoef(m[:, 100:300].T)
    near = torch.diagonal(c, offset=1).mean()
    far = torch.diagonal(c, offset=80).mean()                                          # 4 cells apart
    assert near > 0.95 and abs(far) < 0.05
    # Random shifts make every pixel equally variable; without them, pixels between cell centres
    # would have about half the variance of those at the centres.
    var = m[:, 20:380].var(0)
    assert float(var.max() / var.min()) < 1.3


def test_same_seed_same_masks():
    for s in STRATEGIES:
        a = strategy_masks(50, (33, 40), strategy=s, generator=gen(7))
        b = strategy_masks(50, (33, 40), strategy=s, generator=gen(7))
        c = strategy_masks(50, (33, 40), strategy=s, generator=gen(8))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_stripes_constant_along_the_right_axis_and_fraction():
    shape = (65, 63)
    time = strategy_masks(1000, shape, strategy="time", fraction=0.5, generator=gen(2))
    freq = strategy_masks(1000, shape, strategy="frequency", fraction=0.3, generator=gen(3))
    patch = strategy_masks(1000, shape, strategy="patches", fraction=0.5, generator=gen(4))
    assert torch.equal(time, time[:, :1].expand_as(time))        # whole columns
    assert torch.equal(freq, freq[:, :, :1].expand_as(freq))     # whole rows
    assert not torch.equal(patch, patch[:, :1].expand_as(patch))
    assert not torch.equal(patch, patch[:, :, :1].expand_as(patch))
    for m, masked in ((time, 0.5), (freq, 0.3), (patch, 0.5)):
        assert bool(((m == 0) | (m == 1)).all())
        assert abs(1 - float(m.mean()) - masked) < 0.02


def test_block_masks_blocks_have_the_requested_size():
    m = block_masks(20, (30, 60), block=(30, 6), fraction=0.5, generator=gen(5))
    edges = (m[:, 0, 1:] != m[:, 0, :-1]).float()                # column boundaries of time stripes
    gaps = [torch.diff(torch.nonzero(e)[:, 0]) for e in edges]
    assert all(bool((g % 6 == 0).all()) for g in gaps if g.numel())


def test_stripes_need_the_axis():
    with pytest.raises(ConfigError):
        strategy_masks(2, (4001, 1), strategy="time", generator=gen(0))
    with pytest.raises(ConfigError):
        strategy_masks(2, (1, 400), strategy="frequency", generator=gen(0))


def test_weighted_moments_merge_equals_direct():
    g = gen(9)
    values = torch.randn(300, 1, 5, generator=g, dtype=torch.float64)
    weights = torch.rand(300, 4, 5, generator=g, dtype=torch.float64)
    acc = WeightedMoments((4, 5), dtype=torch.float64)
    for start in range(0, 300, 70):                              # uneven chunks
        acc.update(values[start:start + 70], weights[start:start + 70])
    w = weights.sum(0)
    mean = (weights * values).sum(0) / w
    spread = (weights * (values - mean) ** 2).sum(0)
    torch.testing.assert_close(acc.mean, mean)
    torch.testing.assert_close(acc.spread, spread)


@pytest.mark.parametrize("domain", ["time", "fourier", "stft", "mel", "dwt"])
def test_masks_reach_every_domain(domain):
    tr = get_transform(domain, SR)
    shape = tr.image_shape(2048)
    m = to_map_space(tr, smooth_masks(8, shape, generator=gen(0)), length=2048)
    assert m.shape == (8, *tr.map_shape(2048))
    assert float(m.min()) >= 0 and float(m.max()) <= 1


# ---- FreqRISE ---------------------------------------------------------------------------------------
def test_registered_with_paper_defaults():
    fr, rx = EXPLAINERS.get("freqrise"), EXPLAINERS.get("relax")
    d = {p.name: p.default for p in fr.params}
    assert d == {"n_masks": 3000, "cells": 200, "p": 0.5, "readout": "prob", "baseline": "zero",
                 "sampler": "bernoulli", "estimator": "plain", "stop": "budget", "stop_at_stability": 0.0,
                 "inert": "none"}                       # ours: zero cells get no importance ("raw": the paper's)
    assert "raw" in next(p for p in fr.params if p.name == "inert").choices
    d = {p.name: p.default for p in rx.params}
    assert d["n_masks"] == 3000 and d["fraction"] == 0.5 and d["strategy"] == "unstructured"
    assert d["replacement"] == "zero" and d["similarity"] == "embedding"
    assert fr.family == rx.family == "sampling"


@pytest.mark.parametrize("readout", ["prob", "logit", "log_prob"])
def test_freqrise_finds_the_band(readout):
    model, x = band_setup()
    ex = explain(model, x, get_transform("fourier", SR), 1, method="freqrise", seed=0, n_masks=1000, readout=readout)
    top = set(ex.saliency.topk(3).indices.tolist())
    assert top == {11, 13, 14}
    assert ex.uncertainty.shape == ex.saliency.shape and bool((ex.uncertainty >= 0).all())


def test_freqrise_importance_is_the_rise_estimator():
    model, x = band_setup()
    tr = get_transform("fourier", SR)
    probe = Probe(model, tr, x, target=1)
    res = explain_freqrise(probe, generator=gen(3), progress=no_progress, n_masks=200, p=0.3, inert="raw")
    g, shape = gen(3), tr.image_shape(256)
    masks = to_map_space(tr, torch.cat([smooth_masks(b, shape, p=0.3, generator=g)       # drawn chunk by chunk
                                        for b in chunk_schedule(200, shape)]), length=256)
    s = probe.score(masks)
    x_n = s[:, None] * masks / 0.7
    torch.testing.assert_close(res.saliency, (s[:, None] * masks).sum(0) / (200 * 0.7), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(res.uncertainty, x_n.var(0) / 200, rtol=1e-4, atol=1e-8)


def test_freqrise_variance_shrinks_with_more_masks_and_is_calibrated():
    model, x = band_setup()
    tr = get_transform("fourier", SR)
    small = explain(model, x, tr, 1, method="freqrise", seed=11, n_masks=250)
    large = explain(model, x, tr, 1, method="freqrise", seed=11, n_masks=1000)
    ratio = float(large.uncertainty.mean() / small.uncertainty.mean())
    assert ratio <= 0.5 and abs(ratio - 0.25) < 0.08
    # The reported variance matches the spread of the importance over independent runs.
    runs = [explain(model, x, tr, 1, method="freqrise", seed=100 + k, n_masks=100) for k in range(16)]
    empirical = torch.stack([r.saliency for r in runs]).var(0).mean()
    reported = torch.stack([r.uncertainty for r in runs]).mean()
    assert 0.7 < float(empirical / reported) < 1.4


@pytest.mark.parametrize("domain", ["time", "fourier", "stft", "mel", "dwt"])
def test_freqrise_and_relax_run_in_every_domain(domain):
    model, x = band_setup()
    tr = get_transform(domain, SR)
    for method in ("freqrise", "relax"):
        ex = explain(model, x, tr, 1, method=method, seed=0, n_masks=60, baseline="mean") if method == "freqrise" \
            else explain(model, x, tr, 1, method=method, seed=0, n_masks=60, replacement="min")
        assert ex.saliency.shape == ex.uncertainty.shape == tr.map_shape(256)
        assert bool(torch.isfinite(ex.saliency).all() and torch.isfinite(ex.uncertainty).all())
        assert ex.meta["forward_passes"] == 60      # the masks; the clean pass is not counted


def test_seed_gives_bit_identical_maps():
    model, x = band_setup()
    tr = get_transform("stft", SR, n_fft=64, hop=16)
    for method in ("freqrise", "relax"):
        a = explain(model, x, tr, 1, method=method, seed=5, n_masks=100)
        b = explain(model, x, tr, 1, method=method, seed=5, n_masks=100)
        c = explain(model, x, tr, 1, method=method, seed=6, n_masks=100)
        assert torch.equal(a.saliency, b.saliency) and torch.equal(a.uncertainty, b.uncertainty)
        assert not torch.equal(a.saliency, c.saliency)


# ---- RELAX ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_relax_importance_on_the_signal_cells(strategy):
    model, x, tr = burst_setup()
    ex = explain(model, x, tr, 0, method="relax", seed=0, n_masks=600, strategy=strategy, inert="raw")
    power = tr.analyze(x[None])[0].abs()
    region = power > 0.1 * power.max()                          # bins 7–9, frames ≈ 11–20
    r, u = ex.saliency, ex.uncertainty
    assert r.shape == u.shape == power.shape
    assert bool(torch.isfinite(u).all() and (u >= 0).all())
    rows, cols = region.any(1).nonzero()[:, 0], region.any(0).nonzero()[:, 0]
    if strategy == "time":
        assert int(r.mean(0).argmax()) in cols.tolist()
    elif strategy == "frequency":
        assert int(r.mean(1).argmax()) in rows.tolist()
    else:
        near = torch.nn.functional.max_pool2d(region[None, None].float(), 3, 1, 1)[0, 0] > 0
        assert bool(near.flatten()[r.argmax()])
        far = torch.nn.functional.max_pool2d(region[None, None].float(), 15, 1, 7)[0, 0] == 0
        assert float(r[region].mean()) > float(r[far].mean()) + 5 * float(r[far].std())
    torch.testing.assert_close(ex.extras["u_relax"], u_relax(r, u))


def test_relax_constant_embedding_has_no_uncertainty():
    _, x, tr = burst_setup()
    model = from_module(ConstantEmbedding(), sample_rate=SR, num_samples=512, labels=["a", "b"], embed="embed")
    ex = explain(model, x, tr, 0, method="relax", seed=0, n_masks=100, inert="raw")  # the estimator itself
    torch.testing.assert_close(ex.saliency, torch.ones_like(ex.saliency))
    assert float(ex.uncertainty.max()) < 1e-10


def test_relax_replacement_values_known_answer():
    n = 512
    tr = get_transform("time", SR)
    model = from_module(IdentityEmbedding(), sample_rate=SR, num_samples=n, labels=["a", "b"], embed="embed")
    # A constant clip replaced by its own mean is unchanged by every mask: R = 1, U = 0.
    flat = torch.full((n,), 0.5)
    same = explain(model, flat, tr, 0, method="relax", seed=0, n_masks=100, replacement="mean", inert="raw")
    torch.testing.assert_close(same.saliency, torch.ones(n))
    assert float(same.uncertainty.max()) < 1e-10
    zero = explain(model, flat, tr, 0, method="relax", seed=0, n_masks=100, replacement="zero", inert="raw")
    assert float(zero.saliency.max()) < 0.95
    # Alternating 1, 3: mean 2, smallest magnitude 1. R and U follow the formulas with those values.
    x = 2 + (-1.0) ** torch.arange(n)
    probe = Probe(model, tr, x, target=0)
    g = gen(4)
    masks = to_map_space(tr, torch.cat([strategy_masks(b, tr.image_shape(n), strategy="time", generator=g)
                                        for b in chunk_schedule(200, tr.image_shape(n))]), length=n)
    results = {}
    for kind, value in (("zero", 0.0), ("mean", 2.0), ("min", 1.0)):
        res = explain_relax(probe, generator=gen(4), progress=no_progress, n_masks=200, strategy="time",
                            replacement=kind, inert="raw")
        s = torch.nn.functional.cosine_similarity(masks * x + (1 - masks) * value, x[None], dim=-1)[:, None]
        r = (s * masks).sum(0) / masks.sum(0)
        u = (masks * (s - r) ** 2).sum(0) / masks.sum(0)
        torch.testing.assert_close(res.saliency, r, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(res.uncertainty, u, rtol=1e-3, atol=1e-7)
        results[kind] = res.saliency
    assert float((results["mean"] - results["zero"]).abs().max()) > 0.01
    assert float((results["min"] - results["mean"]).abs().max()) > 0.01
    # Cells already equal to the replacement are inert: with "min" (= 1) every other sample, none for "mean".
    res = explain_relax(probe, generator=gen(4), progress=no_progress, n_masks=200, strategy="time", replacement="min")
    assert torch.equal(res.extras["inert"].bool(), x == 1) and bool((res.saliency[x == 1] < res.saliency[x == 3].min()).all())
    res = explain_relax(probe, generator=gen(4), progress=no_progress, n_masks=200, strategy="time", replacement="mean")
    assert not bool(res.extras["inert"].any())


def test_relax_probability_similarity():
    model, x = band_setup()
    ex = explain(model, x, get_transform("fourier", SR), 1, method="relax", seed=0, n_masks=800,
                 similarity="probs", strategy="frequency", cells=129)
    assert set(ex.saliency.topk(3).indices.tolist()) <= set(range(10, 16))
    assert 0 < float(ex.extras["mean_similarity"]) <= 1


def test_relax_rejects_a_strategy_without_its_axis():
    model, x = band_setup()
    with pytest.raises(ConfigError):
        explain(model, x, get_transform("fourier", SR), 1, method="relax", n_masks=20, strategy="time")
