"""Split-half stability of sampling maps: two halves of one run's masks, compared on the live cells."""

from __future__ import annotations

import torch

from earmark.explainers import explain
from earmark.explainers.anytime import SplitHalves, rank_agreement, stability_text, top_overlap
from earmark.models.base import from_module
from earmark.transforms import get_transform

from test_minimal_mask_region import L, SR, RegionEnergy, region_clip


def test_rank_agreement_and_top_overlap_on_known_inputs():
    a = torch.arange(100.0)
    assert abs(rank_agreement(a, a * 3 + 1) - 1) < 1e-12 and abs(rank_agreement(a, -a) + 1) < 1e-12
    assert top_overlap(a, a) == 1.0 and top_overlap(a, -a) == 0.0


def test_halves_split_alternate_pairs_and_average_to_the_whole():
    h = SplitHalves((3,), dtype=torch.float64)
    v = torch.arange(24.0, dtype=torch.float64).view(8, 3)
    h.update(v[:5], torch.ones(()))
    h.update(v[5:], torch.ones(()))
    # pairs (0,1), (4,5) in half 0; (2,3), (6,7) in half 1 — across the chunk boundary at 5
    torch.testing.assert_close(h.halves[0].mean, v[[0, 1, 4, 5]].mean(0))
    torch.testing.assert_close(h.halves[1].mean, v[[2, 3, 6, 7]].mean(0))


class BandEnergy(RegionEnergy):
    """Class 0's logit grows with the energy below 2 kHz (about a third of the cells carry it)."""

    def energy(self, x):
        s = torch.stft(x, 128, 32, window=self.win, return_complex=True, center=True)
        return s[:, :33].abs().pow(2).sum((-2, -1))


def _band_model():
    x = region_clip()
    net = BandEnergy()
    with torch.no_grad():
        net.ref = float(net.energy(x[None])[0])
    return from_module(net, sample_rate=SR, num_samples=L, labels=["band", "other"]), x


class Scrambled(torch.nn.Module):
    """A 'randomised model': its logit jumps with any change of the input (no structure to find)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.randn(L, generator=torch.Generator().manual_seed(1)))

    def forward(self, x):
        z = torch.sin(1e4 * (x * self.w).sum(-1))
        return torch.stack([z, -z], -1)


def test_stable_when_the_map_is_the_truth_and_flagged_on_a_randomised_model():
    model, x = _band_model()
    t = get_transform("stft", SR, n_fft=128, hop=32)
    exp = explain(model, x, t, 0, method="freqrise", seed=0, n_masks=600, sampler="sobol",
                  estimator="control_variate")
    top = float(exp.extras["stability_top10"])
    assert top >= 0.8 and float(exp.extras["stability_spearman"]) > 0.2
    assert stability_text(exp.extras).startswith("stable")
    assert exp.summary()["stability"]["top10_overlap"] == top
    noise = from_module(Scrambled(), sample_rate=SR, num_samples=L, labels=["a", "b"])
    bad = explain(noise, x, t, 0, method="freqrise", seed=0, n_masks=600, sampler="sobol",
                  estimator="control_variate")
    print("scrambled", bad.summary()["stability"])
    assert float(bad.extras["stability_top10"]) < 0.5 and abs(float(bad.extras["stability_spearman"])) < 0.1
    assert stability_text(bad.extras).startswith("still noisy")
    relax = explain(noise, x, t, 0, method="relax", seed=0, n_masks=400, similarity="probs")
    assert float(relax.extras["stability_top10"]) < 0.5


def test_stop_at_stability_ends_a_stable_map_early_and_spends_the_budget_on_a_scrambled_one():
    """The rule reads the same figure the result carries (and the app prints under the map)."""
    model, x = _band_model()
    t = get_transform("stft", SR, n_fft=128, hop=32)
    opts = dict(n_masks=3000, sampler="sobol", estimator="control_variate", stop_at_stability=0.8)
    exp = explain(model, x, t, 0, method="freqrise", seed=0, **opts)
    used, top = int(exp.extras["budget_used"]), float(exp.extras["stability_top10"])
    assert 400 <= used < 3000 and top >= 0.8 and float(exp.extras["stability_target"]) == 0.8
    assert exp.meta["budget_used"] == used and stability_text(exp.extras).startswith(f"stable: top-10 % cells agree at {top:.2f}")
    # the same masks without the rule: the prefix of the full run gives the same figure at the same count
    prefix = explain(model, x, t, 0, method="freqrise", seed=0, **{**opts, "n_masks": used, "stop_at_stability": 0.0})
    assert float(prefix.extras["stability_top10"]) == top and torch.equal(prefix.saliency, exp.saliency)
    noise = from_module(Scrambled(), sample_rate=SR, num_samples=L, labels=["a", "b"])
    bad = explain(noise, x, t, 0, method="freqrise", seed=0, **{**opts, "n_masks": 1200})
    assert int(bad.extras["budget_used"]) == 1200 and float(bad.extras["stability_top10"]) < 0.8
    relax = explain(model, x, t, 0, method="relax", seed=0, n_masks=3000, similarity="probs", stop_at_stability=0.8)
    relax_bad = explain(noise, x, t, 0, method="relax", seed=0, n_masks=1200, similarity="probs", stop_at_stability=0.8)
    print("relax used", int(relax.extras["budget_used"]), float(relax.extras["stability_top10"]))
    assert int(relax_bad.extras["budget_used"]) == 1200
    assert int(relax.extras["budget_used"]) < 3000 and float(relax.extras["stability_top10"]) >= 0.8
