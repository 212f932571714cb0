"""Learnable and minimal masks: known answers on a toy model, the loss terms by hand, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from earmark.explainers import EXPLAINERS, explain
from earmark.explainers.learnable_mask import (
    band_segments, diff_weights, dwt_level_weights, fill_defaults, initial_masks, segment_weights, smoothness,
    sparsity_hinge,
)
from earmark.explainers.minimal_mask import restart_alphas
from earmark.probe import read_class
from earmark.models.base import from_module
from earmark.transforms import get_transform

LENGTH = 256
KEY_BINS = list(range(20, 26))


class BandReadout(torch.nn.Module):
    """Class 0's logit is a fixed linear readout of the rFFT magnitude in bins 20–25; class 1's is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.fft.rfft(x, norm="ortho").abs()[:, KEY_BINS[0]:KEY_BINS[-1] + 1].sum(-1)
        return torch.stack([s - 3.0, torch.zeros_like(s)], dim=-1)


@pytest.fixture(scope="module")
def toy():
    model = from_module(BandReadout(), sample_rate=8000, num_samples=LENGTH, labels=["key", "other"])
    n = torch.arange(LENGTH)
    unit = math.sqrt(2 / LENGTH)
    x = sum(unit * torch.cos(2 * math.pi * k * n / LENGTH + 0.3 * k) for k in KEY_BINS)
    # Louder distractors the model ignores, plus a little noise everywhere.
    x = x + sum(3 * unit * torch.cos(2 * math.pi * k * n / LENGTH) for k in range(50, 56))
    x = x + 0.05 * torch.randn(LENGTH, generator=torch.Generator().manual_seed(0))
    return model, x


def top_overlap(saliency: torch.Tensor, truth: list[int]) -> float:
    top = set(saliency.flatten().topk(len(truth)).indices.tolist())
    return len(top & set(truth)) / len(truth)


def fourier():
    return get_transform("fourier", 8000)


# ---- known answers -------------------------------------------------------------------------------------
def test_registered():
    assert {"learnable_mask", "minimal_mask"} <= set(EXPLAINERS.names())
    for name in ("learnable_mask", "minimal_mask"):
        assert EXPLAINERS.get(name).family == "optimisation"


def test_learnable_mask_finds_the_key_bins(toy):
    model, x = toy
    e = explain(model, x, fourier(), target=0, method="learnable_mask", steps=150, restarts=2)
    assert top_overlap(e.saliency, KEY_BINS) >= 0.8
    assert float(e.saliency[KEY_BINS].min()) > 0.9                # every key bin kept …
    assert float(e.saliency[60:].max()) < 0.1                    # … and the loud distractors dropped


def test_minimal_mask_finds_the_key_bins(toy):
    model, x = toy
    e = explain(model, x, fourier(), target=0, method="minimal_mask", steps=150, restarts=2)
    assert top_overlap(e.saliency, KEY_BINS) >= 0.8
    tradeoff = e.extras["tradeoff"]
    assert tradeoff.shape == (150, 2)
    assert float(tradeoff[-1, 0]) > float(tradeoff[0, 0]) + 0.5  # much sparser at the end …
    assert float(tradeoff[-1, 1]) > 0.5                          # … while the class stays likely
    assert torch.allclose(e.extras["final_sparsity"], 1 - e.extras["restart_masks"].flatten(1).mean(-1))


def test_larger_lambda_r_gives_a_sparser_mask(toy):
    model, x = toy
    means = [float(explain(model, x, fourier(), target=0, method="learnable_mask", steps=100, restarts=2,
                           lambda_r=lam, r=0.0).saliency.mean()) for lam in (0.0, 2.0, 20.0)]
    assert means[0] > means[1] > means[2]


def test_larger_alpha_gives_a_sparser_minimal_mask(toy):
    model, x = toy
    means = [float(explain(model, x, get_transform("time", 8000), target=0, method="minimal_mask", steps=60,
                           restarts=1, alpha=a).saliency.mean()) for a in (0.1, 3.0)]
    assert means[0] > means[1]


# ---- the loss terms by hand ----------------------------------------------------------------------------
def test_stft_smoothness_on_a_2x3_example():
    masks = torch.tensor([[[0.0, 1.0, 3.0], [2.0, 2.0, 0.0]]])     # (R=1, F=2, T=3)
    weights = diff_weights((3,), torch.ones(1))
    # time differences (1, 2) and (0, −2): squares 1, 4, 0, 4 → mean 9/4
    assert torch.allclose(smoothness(masks, weights), torch.tensor([2.25]))
    stft = get_transform("stft", 8000, n_fft=64, hop=16)
    assert band_segments(stft, 256, stft.map_shape(256)) == (256 // 16 + 1,)


def test_dwt_weights_grow_with_coarseness():
    assert dwt_level_weights(4).tolist() == [8.0, 8.0, 4.0, 2.0]   # A3, D3, D2, D1
    dwt = get_transform("dwt", 8000, level=4)
    segments = band_segments(dwt, LENGTH, dwt.map_shape(LENGTH))
    assert segments == dwt.layout(LENGTH)
    w = segment_weights(dwt, segments)
    assert bool((w[1:-1] > w[2:]).all()) and float(w[0]) == float(w[1])  # coarser detail level, larger weight


def test_dwt_smoothness_by_hand():
    # levels A2 (2 cells, weight 4), D2 (2 cells, weight 4), D1 (3 cells, weight 2)
    weights = diff_weights((2, 2, 3), dwt_level_weights(3))
    masks = torch.tensor([[0.0, 1.0, 1.0, 3.0, 0.0, 0.0, 2.0]])
    # per-level mean squared differences: A2 1, D2 4, D1 (0 + 4)/2 = 2; the jumps 1→1 and 3→0 across level
    # boundaries do not count. Weighted mean: (4·1 + 4·4 + 2·2) / (4 + 4 + 2) = 2.4
    assert torch.allclose(smoothness(masks, weights), torch.tensor([2.4]))
    assert weights[1] == 0 and weights[3] == 0


def test_sparsity_hinge():
    masks = torch.tensor([[0.0, 0.2, 0.4, 0.2], [0.0, 0.0, 0.0, 0.4]])   # means 0.2 and 0.1
    assert torch.allclose(sparsity_hinge(masks, 0.15), torch.tensor([0.05, 0.0]))


def test_paper_defaults_per_domain():
    sentinel = dict(lambda_r=-1.0, lambda_s=-1.0, r=-1.0, init_high=-1.0)
    assert fill_defaults("dwt", **sentinel) == dict(lambda_r=0.5, lambda_s=10.0, r=0.1, init_high=0.1)
    assert fill_defaults("stft", **sentinel) == dict(lambda_r=2.0, lambda_s=5.0, r=0.05, init_high=1.0)
    assert fill_defaults("mel", **sentinel) == fill_defaults("stft", **sentinel)
    assert fill_defaults("dwt", lambda_r=3.0, lambda_s=-1.0, r=0.2, init_high=-1.0)["lambda_r"] == 3.0


def test_initial_masks_fill_ten_percent_of_each_band(generator):
    masks = initial_masks((3, 2, 30), (10, 20), fraction=0.1, high=0.1, generator=generator, device="cpu",
                          rest=-1.0)
    drawn = masks >= 0
    assert drawn[..., :10].sum(-1).eq(1).all() and drawn[..., 10:].sum(-1).eq(2).all()
    assert float(masks.max()) <= 0.1 and float(masks[drawn].min()) >= 0.0
    assert bool(initial_masks((1, 30), (30,), fraction=0.1, high=1.0, generator=generator, device="cpu").gt(0).all())
    assert not torch.equal(masks[0], masks[1])                   # each restart draws its own cells


def test_helpers_of_the_minimal_mask():
    assert restart_alphas(2.0, 1, spread_octaves=1.0).tolist() == [2.0]
    assert torch.allclose(restart_alphas(2.0, 3, spread_octaves=2.0), torch.tensor([1.0, 2.0, 4.0]))
    logits = torch.tensor([[1.0, 0.0]])
    assert torch.allclose(read_class(logits, 0, "prob"), torch.sigmoid(torch.tensor([1.0])))
    assert float(read_class(logits, 0, "logit")) == 1.0


# ---- contract: shapes, uncertainty, reproducibility, loss curves ---------------------------------------
TRANSFORMS = {
    "fourier": {},
    "time": {},
    "stft": {"n_fft": 64, "hop": 16},
    "mel": {"n_fft": 64, "hop": 16, "n_mels": 12},
    "dwt": {"level": 3},
}


@pytest.mark.parametrize("method", ["learnable_mask", "minimal_mask"])
@pytest.mark.parametrize("domain", list(TRANSFORMS))
def test_contract_in_every_domain(toy, method, domain):
    model, x = toy
    transform = get_transform(domain, 8000, **TRANSFORMS[domain])
    seen = []
    e = explain(model, x, transform, target=0, method=method, steps=40, restarts=3,
                progress=lambda f, stage: seen.append((f, stage)))
    shape = transform.map_shape(LENGTH)
    assert e.saliency.shape == shape and e.uncertainty.shape == shape
    assert bool(torch.isfinite(e.uncertainty).all()) and float(e.uncertainty.min()) >= 0
    assert 0.0 <= float(e.saliency.min()) and float(e.saliency.max()) <= 1.0
    assert e.extras["restart_masks"].shape == (3, *shape)
    curve = e.extras["loss_curve"]
    assert curve.shape == (40,) and float(curve[-1]) < float(curve[0])
    assert seen[-1][0] == 1.0 and any(stage for _, stage in seen[:-1])
    assert e.meta["backward_passes"] == 3 * 40


@pytest.mark.parametrize("method", ["learnable_mask", "minimal_mask"])
def test_restarts_reproducible_by_seed(toy, method):
    model, x = toy
    stft = get_transform("stft", 8000, n_fft=64, hop=16)
    run = lambda seed: explain(model, x, stft, target=0, method=method, steps=15, restarts=2, seed=seed)
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.extras["restart_masks"], b.extras["restart_masks"])
    assert torch.equal(a.uncertainty, b.uncertainty)
    assert not torch.equal(a.extras["restart_masks"], c.extras["restart_masks"])
    assert not torch.equal(a.extras["restart_masks"][0], a.extras["restart_masks"][1])


def test_learnable_mask_per_term_curves(toy):
    model, x = toy
    e = explain(model, x, get_transform("dwt", 8000, level=3), target=0, method="learnable_mask", steps=20,
                restarts=2)
    for name in ("ce_curve", "sparsity_curve", "smoothness_curve", "mask_mean_curve"):
        assert e.extras[name].shape == (20,)
    # the resolved values by name, the DWT row of Table 1 (the −1 sentinels asked for the paper's defaults)
    assert {k: e.params[k] for k in ("lambda_r", "lambda_s", "r", "init_high")} == pytest.approx(
        {"lambda_r": 0.5, "lambda_s": 10.0, "r": 0.1, "init_high": 0.1})
    assert "settings" not in e.extras
    given = explain(model, x, get_transform("dwt", 8000, level=3), target=0, method="learnable_mask", steps=2,
                    restarts=1, lambda_r=3.0)
    assert given.params["lambda_r"] == 3.0 and given.params["lambda_s"] == 10.0


def test_early_stop_is_opt_in(toy):
    model, x = toy
    e = explain(model, x, fourier(), target=0, method="minimal_mask", steps=300, restarts=1, tolerance=0.05)
    assert 10 < e.extras["loss_curve"].shape[0] < 300
