"""The minimal mask on a model with a known decisive region, and mask methods on zero-padded clips.

``RegionEnergy`` is analytic: class 0's logit is ``4·E_R/E_R(x) − 2`` with ``E_R`` the energy of one
STFT region (1.375–1.625 kHz × 0.20–0.26 s); the clip has louder distractors in the same band later, in
another band at the same time, and a long low tone. A minimal mask must end with the region and little
else, in the STFT and in the DWT (where "the region" is the DWT coefficients holding 95 % of the energy of
the in-region burst alone).
"""

from __future__ import annotations

import math

import pytest
import torch

from earmark.explainers import explain
from earmark.models.base import from_module
from earmark.transforms import get_transform

SR, L, NFFT, HOP = 8000, 4096, 128, 32
ROWS = slice(22, 27)                                   # bins of 1375–1625 Hz (62.5 Hz each)
COLS = slice(int(0.20 * SR / HOP), int(0.26 * SR / HOP) + 1)


def burst(f: float, t0: float, t1: float, amp: float) -> torch.Tensor:
    n = torch.arange(L) / SR
    env = ((n >= t0) & (n < t1)).float() * torch.sin(math.pi * ((n - t0) / (t1 - t0)).clamp(0, 1)) ** 2
    return amp * env * torch.sin(2 * math.pi * f * n)


class RegionEnergy(torch.nn.Module):
    def __init__(self, ref: float = 1.0):
        super().__init__()
        self.register_buffer("win", torch.hann_window(NFFT))
        self.ref = ref

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.stft(x, NFFT, HOP, window=self.win, return_complex=True, center=True)
        return s[:, ROWS, COLS].abs().pow(2).sum((-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.energy(x)
        return torch.stack([4.0 * e / self.ref - 2.0, torch.zeros_like(e)], -1)


REGION_BURST = burst(1500.0, 0.20, 0.26, 0.3)


def region_clip(noise: float = 0.01) -> torch.Tensor:
    x = REGION_BURST + burst(1500.0, 0.32, 0.40, 0.6) + burst(600.0, 0.05, 0.45, 0.5) + burst(3000.0, 0.18, 0.28, 0.6)
    return x + noise * torch.randn(L, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def region():
    x = region_clip()
    net = RegionEnergy()
    with torch.no_grad():
        net.ref = float(net.energy(x[None])[0])
    return from_module(net, sample_rate=SR, num_samples=L, labels=["region", "other"]), x


def transform(domain: str):
    if domain == "stft":
        return get_transform("stft", SR, n_fft=NFFT, hop=HOP)
    return get_transform("dwt", SR, wavelet="sym2", level=5)


def truth_cells(domain: str, t) -> torch.Tensor:
    if domain == "stft":
        truth = torch.zeros(t.map_shape(L), dtype=torch.bool)
        truth[ROWS, COLS] = True
        return truth
    power = t.analyze(REGION_BURST[None])[0].abs() ** 2
    order = power.argsort(descending=True)
    share = power[order].cumsum(0) / power.sum()
    truth = torch.zeros_like(power, dtype=torch.bool)
    truth[order[: int((share < 0.95).sum()) + 1]] = True
    return truth


@pytest.mark.parametrize("domain", ["stft", "dwt"])
def test_minimal_mask_keeps_the_region_and_little_else(region, domain):
    model, x = region
    t = transform(domain)
    e = explain(model, x, t, 0, method="minimal_mask", seed=0, steps=300, restarts=2)
    truth = truth_cells(domain, t)
    kept = e.saliency > 0.5
    assert 5 <= int(kept.sum()) <= int(truth.sum())            # small: at most the region's size
    assert float(truth[kept].float().mean()) >= 0.95            # the kept cells lie in the region
    top = e.saliency.flatten().topk(int(truth.sum()) // 4).indices
    assert float(truth.flatten()[top].float().mean()) >= 0.95
    assert float(e.saliency[truth].sum() / e.saliency.sum()) >= 0.9
    # it reports its final size and score, and the score is kept (the clean clip: σ(2) = 0.88)
    final = e.summary()["final_mask"]
    assert final["size"] < 0.02 and final["score"] >= 0.85 and final["clean_score"] == pytest.approx(0.8808, abs=1e-3)
    assert len(final["size_per_restart"]) == 2


def test_uncapped_paper_objective_overshoots_in_the_dwt(region):
    """The paper's objective (``score_cap="none"``) pushes the score above the clip's with distractor cells."""
    model, x = region
    t = transform("dwt")
    capped = explain(model, x, t, 0, method="minimal_mask", seed=0, steps=300, restarts=2)
    paper = explain(model, x, t, 0, method="minimal_mask", seed=0, steps=300, restarts=2, score_cap="none")
    assert float(paper.extras["final_score"].mean()) > 0.95 > float(capped.extras["final_score"].mean())
    assert int((paper.saliency > 0.5).sum()) > 1.5 * int((capped.saliency > 0.5).sum())
    truth = truth_cells("dwt", t)
    assert float(truth[paper.saliency > 0.5].float().mean()) < float(truth[capped.saliency > 0.5].float().mean())


# ---- zero padding: cells where masking changes nothing ------------------------------------------------
@pytest.fixture(scope="module")
def padded():
    """The region model on a clip whose first and last 0.1 s are exact zeros (STFT frames there are 0)."""
    x = region_clip(noise=0.02)
    x[: int(0.1 * SR)] = 0
    x[-int(0.1 * SR):] = 0
    net = RegionEnergy()
    with torch.no_grad():
        net.ref = float(net.energy(x[None])[0])
    return from_module(net, sample_rate=SR, num_samples=L, labels=["region", "other"]), x


FAST = {"learnable_mask": {"steps": 60, "restarts": 2}, "minimal_mask": {"steps": 60, "restarts": 2},
        "freqrise": {"n_masks": 200}, "relax": {"n_masks": 200, "similarity": "probs"}}


@pytest.mark.parametrize("method", list(FAST))
@pytest.mark.parametrize("domain", ["stft", "mel", "dwt"])
def test_zero_cells_carry_no_importance(padded, method, domain):
    model, x = padded
    t = (get_transform("mel", SR, n_fft=NFFT, hop=HOP, n_mels=32) if domain == "mel" else transform(domain))
    e = explain(model, x, t, 0, method=method, seed=0, **FAST[method])
    inert = e.extras["inert"].bool()
    z = t.analyze(x[None])[0]
    silent = t.pool((z.abs() ** 2)[None].real)[0] == 0
    assert bool(silent.any()) and torch.equal(inert, silent)     # exactly the zero cells of the padding
    floor = float(e.saliency.min())
    assert floor <= 0 and torch.all(e.saliency[inert] == floor)  # no importance there …
    assert torch.all(e.uncertainty[inert] == 0)
    live = e.saliency[~inert]
    k = int(0.1 * e.saliency.numel())                            # … and never in a top-10 % ranking
    assert not bool(inert.flatten()[e.saliency.flatten().topk(min(k, live.numel())).indices].any())
    raw = e.extras["raw_saliency"]                              # the method's own map stays available
    assert torch.equal(raw[~inert], e.saliency[~inert])
    paper = explain(model, x, t, 0, method=method, seed=0, inert="raw", **FAST[method])
    assert torch.equal(paper.saliency, raw)


def test_learnable_mask_paints_silence_without_the_fix(padded):
    """The issue's symptom: the mask is moved only by its regularisers on zero cells, and is not 0 there."""
    model, x = padded
    e = explain(model, x, transform("stft"), 0, method="learnable_mask", seed=0, steps=60, restarts=2, inert="raw")
    inert = e.extras["inert"].bool()
    assert float(e.saliency[inert].max()) > 0
