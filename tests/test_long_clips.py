"""Real lengths and rates: 10 s at 16 kHz (160,000 samples) through transforms, probe, display and listening.

Every check is against a known answer (exact reconstruction, shapes from the transform's formulas, a
chunked computation equal to the one-call result, pooled display grids equal to a loop over blocks) and
uses a tiny linear model, so the file runs in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from earmark.downsample import MAX_COLUMNS, MAX_ROWS, block_factor, envelope, pool_axis, pool_centres, pool_edges
from earmark.models import from_module
from earmark.probe import Probe, default_batch_size
from earmark.sonify import listen
from earmark.transforms import get_transform

SR = 16_000
L = 160_000  # 10 s
DOMAINS = ("time", "fourier", "stft", "mel", "dwt")


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    t = torch.arange(L) / SR
    # A speech-like test signal: a gliding tone in bursts, plus a little noise.
    tone = torch.sin(2 * math.pi * (300 + 200 * t) * t) * (torch.sin(2 * math.pi * 1.5 * t) > 0)
    return (0.3 * tone + 0.01 * torch.randn(L, generator=g)).float()


class Linear10s(nn.Module):
    """logits = W·frames(x): a linear model with an analytic gradient, sized for 10 s inputs."""

    def __init__(self, classes: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.weight = nn.Parameter(torch.randn(classes, 100, generator=g) / 100, requires_grad=False)

    def forward(self, x):  # (B, L) → (B, C): mean energy of 100 blocks, then linear
        blocks = x.reshape(x.shape[0], 100, -1).pow(2).mean(-1)
        return blocks @ self.weight.T


@pytest.fixture(scope="module")
def model():
    return from_module(Linear10s(), sample_rate=SR, num_samples=L, labels=["a", "b", "c"])


# ---- transforms -------------------------------------------------------------------------------

EXPECTED_MAP = {
    "time": (L,),
    "fourier": (L // 2 + 1,),
    "stft": (129, L // 64 + 1),
    "mel": (40, L // 64 + 1),
}


@pytest.mark.parametrize("name", DOMAINS)
def test_round_trip_and_shapes_at_10_s(name, clip):
    t = get_transform(name, SR)
    z = t.analyze(clip[None])
    back = t.synthesize(z, L)
    assert back.shape == (1, L)
    assert float((back[0] - clip).abs().max()) < 1e-5
    shape = t.map_shape(L)
    if name in EXPECTED_MAP:
        assert shape == EXPECTED_MAP[name]
    else:  # DWT: all levels concatenated, slightly more than L with boundary padding
        assert L <= shape[0] < L + 64
    img_shape = t.image_shape(L)
    ax = t.axes(L)
    assert (len(ax.freqs), len(ax.times)) == img_shape
    assert float(ax.times[-1]) <= L / SR + 1e-9
    # to_image / from_image is a left inverse at this size too
    v = torch.rand((1, *shape), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(t.from_image(t.to_image(v, length=L), length=L), v, atol=1e-6)


# ---- probe: chunking ------------------------------------------------------------------------------

def test_chunk_size_shrinks_with_length_and_respects_memory(monkeypatch):
    monkeypatch.delenv("EARMARK_BATCH", raising=False)
    cpu = torch.device("cpu")
    short = default_batch_size(cpu, 8_000, backward=True)
    long = default_batch_size(cpu, L, backward=True)
    assert 1 <= long < short
    assert default_batch_size(cpu, L, backward=False) >= long
    # little free memory: the chunk shrinks to what fits (a quarter of it), never below 1
    import earmark.probe as probe_mod
    per_item = 4 * 100 * L * 3 * 2
    monkeypatch.setattr(probe_mod, "available_memory", lambda: 4.0 * 2 * per_item)
    assert default_batch_size(cpu, L, backward=True) == 2
    monkeypatch.setattr(probe_mod, "available_memory", lambda: 1e6)
    assert default_batch_size(cpu, L, backward=True) == 1
    monkeypatch.setenv("EARMARK_BATCH", "5")
    assert default_batch_size(cpu, L, backward=True) == 5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_chunk_size_on_cuda_follows_free_memory(monkeypatch):
    monkeypatch.delenv("EARMARK_BATCH", raising=False)
    dev = torch.device("cuda")
    n = default_batch_size(dev, L, backward=True)
    free, _ = torch.cuda.mem_get_info(dev)
    per_item = 4 * 100 * L * 3 * 2
    assert 1 <= n <= max(1, free * 0.5 // per_item)


@pytest.mark.parametrize("name", ("stft", "dwt"))
def test_chunked_scores_and_gradients_equal_one_call(name, clip, model):
    t = get_transform(name, SR)
    shape = t.map_shape(L)
    masks = (torch.rand((7, *shape), generator=torch.Generator().manual_seed(1)) > 0.5).float()
    one = Probe(model, t, clip, batch_size=7)
    chunked = Probe(model, t, clip, batch_size=2)
    a = one.score(masks, readout="logits")
    b = chunked.score(masks, readout="logits")
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    points = one.apply_masks(masks[:3])
    va, ga = one.grad(points)
    vb, gb = chunked.grad(points)
    assert torch.allclose(va, vb, rtol=1e-5, atol=1e-7)
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-9)


def test_gradient_at_10_s_matches_the_analytic_one(clip, model):
    t = get_transform("time", SR)
    probe = Probe(model, t, clip, target=1, batch_size=1)
    _, g = probe.grad(clip[None], readout="logit", target=1)
    w = model.module.weight[1]                       # d/dx of sum_b w_b mean(x_b^2) = 2 w_b x / blocklen
    expected = (2 * w.repeat_interleave(L // 100) * clip / (L // 100))[None]
    assert torch.allclose(g, expected, rtol=1e-4, atol=1e-10)


# ---- listening -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DOMAINS)
def test_listening_at_16_khz_keeps_rate_length_and_complement(name, clip):
    t = get_transform(name, SR)
    sal = torch.rand(t.map_shape(L), generator=torch.Generator().manual_seed(2))
    out = listen(t, clip, sal, 0.1, match=False)
    assert {k: v.shape for k, v in out.items()} == {k: (L,) for k in ("original", "keep", "remove", "soft")}
    assert float((out["keep"] + out["remove"] - clip).abs().max()) < 1e-4


# ---- display grid ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ("peak", "mean", "sum", "max"))
@pytest.mark.parametrize("n,factor", ((10, 3), (12, 4), (7, 1), (160_000, 134)))
def test_pool_axis_equals_a_loop_over_blocks(how, n, factor):
    v = torch.randn(2, n, generator=torch.Generator().manual_seed(n))
    out = pool_axis(v, factor, dim=-1, how=how)
    assert out.shape == (2, math.ceil(n / factor))
    for b in range(0, n, factor * max(1, n // factor // 50)):  # spot-check blocks incl. the first
        block = v[:, b:b + factor]
        ref = {"mean": block.mean(-1), "sum": block.sum(-1), "max": block.amax(-1),
               "peak": block.gather(-1, block.abs().argmax(-1, keepdim=True))[:, 0]}[how]
        assert torch.allclose(out[:, b // factor], ref, atol=1e-5)
    last = v[:, (out.shape[-1] - 1) * factor:]
    if how == "mean":
        assert torch.allclose(out[:, -1], last.mean(-1), atol=1e-6)


def test_peak_pooling_keeps_a_single_spike_and_its_sign():
    img = torch.zeros(129, 2501)
    img[40, 1777] = -3.0
    img[90, 5] = 2.0
    small = pool_axis(img, block_factor(2501, MAX_COLUMNS), dim=-1, how="peak")
    assert small.shape[-1] <= MAX_COLUMNS
    assert float(small.min()) == -3.0 and float(small.max()) == 2.0


def test_pooled_axes_and_envelope():
    times = torch.arange(2501, dtype=torch.float64) * 64 / SR
    f = block_factor(2501, MAX_COLUMNS)
    c = pool_centres(times, f)
    assert c.shape == (math.ceil(2501 / f),) and torch.all(c[1:] > c[:-1])
    assert float(c[0]) == pytest.approx(float(times[:f].mean()))
    edges = torch.linspace(0, 8000, 80_002, dtype=torch.float64)
    fr = block_factor(80_001, MAX_ROWS)
    e = pool_edges(edges, fr)
    assert e.shape == (math.ceil(80_001 / fr) + 1,) and float(e[0]) == 0 and float(e[-1]) == 8000
    wave = torch.sin(torch.arange(L) / 10.0)
    pos, low, high = envelope(wave, 4000)
    assert len(pos) == len(low) == len(high) <= 4000
    assert torch.all(low <= high) and float(high.max()) == pytest.approx(1.0, abs=1e-3)


# ---- the dashboard's display of a 10 s explanation -------------------------------------------------

@pytest.mark.parametrize("name", DOMAINS)
def test_dashboard_display_is_pooled_to_screen_size_and_keeps_peaks(name, clip, model, monkeypatch):
    from dashboard import figures, services

    monkeypatch.setattr(services.models, "get_model", lambda _name: model)
    t = get_transform(name, SR)
    shape = t.map_shape(L)
    sal = torch.zeros(shape)
    spike = tuple(s // 3 for s in shape)
    sal[spike] = -7.0                       # one negative cell: must survive pooling with its sign
    settings = services.Settings(clip_hash="h", clip_name="c", model="m", transform=name, tparams=(),
                                 explainer="ig", eparams=(), target=0, seed=0)
    d = services.display_map(settings, clip.numpy(), sal)
    rows, cols = d.saliency.shape
    assert rows <= max(MAX_ROWS, len(t.axes(L).freqs) if t.axes(L).row_labels else 0) and cols <= MAX_COLUMNS
    assert d.power.shape == d.uncertainty.shape == (rows, cols)
    assert (len(d.freqs), len(d.times), len(d.freq_edges)) == (rows, cols, rows + 1)
    assert float(d.saliency.min()) == -7.0
    assert np.isclose(d.bands.sum(), float(t.band_sums(sal[None], length=L)[0].sum()))   # band totals are kept
    assert d.duration == pytest.approx(10.0)
    from earmark.display import colour_scale

    fig = figures.saliency_map(d, colour_scale(d.saliency), wave=clip.numpy())
    assert sum(len(tr.x) for tr in fig.data if tr.type == "scatter") <= 2 * 4000 + 2 * MAX_COLUMNS
