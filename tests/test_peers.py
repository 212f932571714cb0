"""``earmark bench --peers``: the minimal estimators agree with Earmark's, the table runs and the burners stop."""

from __future__ import annotations

import subprocess

import torch
from torch import nn

from earmark.explainers import explain
from earmark.explainers.masks import RunningMean, WeightedMoments
from earmark.models.base import from_module
from earmark.peers import cpu_burners, minimal_ig, minimal_smoothgrad, peers_markdown, run_peers
from earmark.transforms import get_transform

L = 256


def small():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(L, 16), nn.Tanh(), nn.Linear(16, 3))
    return from_module(net, sample_rate=8000, num_samples=L, labels=["a", "b", "c"])


def test_minimal_ig_equals_earmark_ig_at_equal_settings():
    """The same integral (zero baseline, midpoint rule): the maps agree to float round-off in every domain."""
    model, wave = small(), torch.randn(L) * 0.3
    for name in ("time", "fourier", "stft", "dwt"):
        tr = get_transform(name, 8000)
        ours = explain(model, wave, tr, 1, method="ig", n_steps=16, baselines="zero", spacing="uniform").saliency
        peer = minimal_ig(model, wave, tr, 1, n_steps=16)
        torch.testing.assert_close(ours, peer, rtol=1e-4, atol=1e-6 * float(peer.abs().max()))


def test_minimal_smoothgrad_is_mean_abs_gradient():
    """With no noise every copy is the clip: the peer is |∂f/∂z| pooled, as Earmark's saliency."""
    model, wave = small(), torch.randn(L) * 0.3
    tr = get_transform("time", 8000)
    gen = torch.Generator().manual_seed(0)
    peer = minimal_smoothgrad(model, wave, tr, 2, n_samples=3, noise_level=0.0, generator=gen)
    ours = explain(model, wave, tr, 2, method="smoothgrad", n_samples=3, noise_level=0.0).saliency
    torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-7)


def test_peer_table_runs_quiet_and_beside_a_burner():
    model, wave = small(), torch.randn(L) * 0.3
    rows, meta = run_peers(model, wave, transforms=[get_transform("fourier", 8000)], methods=("ig", "freqrise"),
                           sizes={"ig": 8, "freqrise": 50}, burners=(0, 1), repeats=1)
    assert [(r.method, r.burners) for r in rows] == [("ig", 0), ("freqrise", 0), ("ig", 1), ("freqrise", 1)]
    ig = [r for r in rows if r.method == "ig"]
    assert all(r.earmark_quality > 0.9 and r.peer_quality > 0.9 for r in ig)       # both near the 512-step map
    assert all(r.earmark_s > 0 and r.peer_s > 0 and r.speedup == r.peer_s / r.earmark_s for r in rows)
    text = peers_markdown(rows, meta)
    assert "| ig | minimal batched IG | fourier | 1 |" in text and "relative to its quiet time" in text
    assert "torch thread" in meta["threads"]


def test_burners_are_stopped():
    with cpu_burners(2) as procs:
        assert all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
    assert not [p for p in procs if subprocess.Popen.poll(p) is None]


def test_unit_weight_moments_are_the_weighted_ones_bit_for_bit():
    """The fast path for unit weights (FreqRISE) does the same arithmetic as the general one."""
    gen = torch.Generator().manual_seed(0)
    fast, general = WeightedMoments((5, 7)), WeightedMoments((5, 7))
    for b in (3, 4, 1):
        x = torch.rand((b, 5, 7), generator=gen)
        fast.update(x, torch.ones(()))
        general.update(x, torch.ones((b, 5, 7)))
    for name in ("mean", "spread", "weight", "weight_sq"):
        assert torch.equal(getattr(fast, name), getattr(general, name)), name


def test_running_mean_matches_weighted_moments_for_every_weight_layout():
    gen = torch.Generator().manual_seed(1)
    for make_w in (lambda b: torch.ones(()), lambda b: torch.rand((b, 4, 6), generator=gen)):
        moments, means = WeightedMoments((4, 6)), RunningMean((4, 6))
        for b in (2, 5):
            v = torch.rand((b, 4, 6), generator=gen)
            w = make_w(b)
            moments.update(v, w)
            means.update(v, w)
        torch.testing.assert_close(means.mean, moments.mean, rtol=1e-5, atol=1e-6)
    per_draw = torch.rand((6, 1, 1), generator=gen)          # RELAX: a score per draw, weighted by its mask
    masks = torch.rand((6, 4, 6), generator=gen)
    moments, means = WeightedMoments((4, 6)), RunningMean((4, 6))
    moments.update(per_draw, masks)
    means.update(per_draw, masks)
    torch.testing.assert_close(means.mean, moments.mean, rtol=1e-5, atol=1e-6)
