"""Anytime estimates (``on_partial``) and ``stop="auto"`` of the sampling and mask explainers.

Tiny analytic models so the file runs in seconds: listening must not change a result, the last estimate
is the result bit for bit, a shorter run is a prefix of a longer one, and ``auto`` stops early on a clip
whose answer is clear but never spends more than the budget.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from earmark.cli.common import ProgressBar
from earmark.explainers import EXPLAINERS, explain
from earmark.explainers.anytime import JACCARD_MIN, MIN_MASKS, STOPS, jaccard, top_cells
from earmark.explainers.masks import RAMP, STEADY_CHUNK, chunk_schedule
from earmark.models.base import from_module
from earmark.transforms import get_transform

SR = 8000
N = 256
KEY = tuple(range(20, 33))          # 13 of the 129 rFFT bins = the top 10 %


class KeyBins(nn.Module):
    """Class 1's logit = 4 × the mean rFFT magnitude over the ``key`` bins; embedding = those magnitudes."""

    def __init__(self, key=KEY):
        super().__init__()
        self.key = list(key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mag = torch.fft.rfft(x, norm="forward").abs() * x.shape[-1]
        logit = 4.0 * mag[:, self.key].sum(-1) / len(self.key)
        return torch.stack([torch.zeros_like(logit), logit], dim=-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        mag = torch.fft.rfft(x, norm="forward").abs() * x.shape[-1]
        return torch.cat([mag[:, self.key], 0.05 * mag.sum(-1, keepdim=True)], dim=-1)


def key_setup(n: int = N, key=KEY):
    """An impulse (flat spectrum: every bin has magnitude 1) through :class:`KeyBins`, in the rFFT domain
    (one mask cell per bin, so the masks are binary)."""
    x = torch.zeros(n)
    x[0] = 1.0
    model = from_module(KeyBins(key), sample_rate=SR, num_samples=n, labels=["off", "on"], embed="embed")
    return model, x, get_transform("fourier", SR)


#: The easy clip: 20 rFFT bins, two of which (the top 10 %) decide the class, each as much as the other.
EASY_N, EASY_KEY = 38, (5, 9)


class TanhMix(nn.Module):
    """A smooth two-class model of a waveform, for the mask optimisers."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = nn.Parameter(torch.randn(N, 8, generator=g) / math.sqrt(N), requires_grad=False)
        self.v = nn.Parameter(torch.randn(8, 2, generator=g), requires_grad=False)

    def forward(self, x):
        return torch.tanh(x @ self.w) @ self.v

    def embed(self, x):
        return torch.tanh(x @ self.w)


def mix_setup():
    t = torch.arange(N, dtype=torch.float32)
    x = torch.sin(2 * math.pi * 9 * t / N) + 0.5 * torch.sin(2 * math.pi * 30 * t / N)
    model = from_module(TanhMix(), sample_rate=SR, num_samples=N, labels=["a", "b"], embed="embed")
    return model, x, get_transform("stft", SR, n_fft=64, hop=16)


BUDGETS = {"freqrise": {"n_masks": 700, "readout": "logit"}, "relax": {"n_masks": 700},
           "learnable_mask": {"steps": 12, "restarts": 2}, "minimal_mask": {"steps": 12, "restarts": 2}}
ANYTIME = tuple(BUDGETS)


def setup_for(method):
    return key_setup() if EXPLAINERS.get(method).family == "sampling" else mix_setup()


def listen():
    calls = []
    return calls, lambda s, done, total, conv: calls.append((s, done, total, conv))


# ---- declarations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ANYTIME)
def test_anytime_methods_declare_it_and_a_stop_setting(method):
    spec = EXPLAINERS.get(method)
    assert spec.anytime
    stop = {p.name: p for p in spec.params}["stop"]
    assert stop.default == "budget" and tuple(stop.choices) == STOPS == ("budget", "auto")
    assert spec.budget_unit == ("masks" if spec.family == "sampling" else "steps")


def test_other_methods_are_not_anytime_and_ignore_a_listener():
    assert not any(EXPLAINERS.get(m).anytime for m in ("saliency", "ig", "smoothgrad", "energy"))
    model, x, t = mix_setup()
    calls, fn = listen()
    explain(model, x, t, 0, method="saliency", on_partial=fn)
    assert calls == []


def test_chunk_schedule_ramps_up_then_steadies_and_is_a_prefix():
    assert chunk_schedule(700, (129, 126)) == [25, 25, 50, 100, 200, 200, 100]
    assert chunk_schedule(10, (129, 126)) == [10]
    long, short = chunk_schedule(3000, (129, 126)), chunk_schedule(1000, (129, 126))
    assert sum(long) == 3000 and long[:len(short)] == short and max(long) == STEADY_CHUNK
    ends = torch.tensor(long).cumsum(0).tolist()
    assert all(e in ends for e in range(200, 3001, 200))       # every 200 masks is a chunk end
    assert max(chunk_schedule(500, (8000, 2000))) <= 2**23 // (8000 * 2000) + 1   # memory bound holds
    assert RAMP[0] <= 25                                         # a first estimate after few masks


# ---- listening changes nothing; the last estimate is the result -------------------------------------------
@pytest.mark.parametrize("method", ANYTIME)
def test_listening_does_not_change_the_result_and_the_last_estimate_is_it(method):
    model, x, t = setup_for(method)
    plain = explain(model, x, t, 1, method=method, seed=5, **BUDGETS[method])
    calls, fn = listen()
    heard = explain(model, x, t, 1, method=method, seed=5, on_partial=fn, **BUDGETS[method])
    assert torch.equal(plain.saliency, heard.saliency) and torch.equal(plain.uncertainty, heard.uncertainty)
    total = BUDGETS[method].get("n_masks", BUDGETS[method].get("steps"))
    dones = [c[1] for c in calls]
    assert dones == sorted(set(dones)) and dones[-1] == total        # increasing, ends at the budget
    assert all(c[2] == total for c in calls)
    assert dones[0] == (RAMP[0] if EXPLAINERS.get(method).family == "sampling" else 1)   # an early first map
    assert torch.equal(calls[-1][0], heard.saliency)                 # bit for bit
    assert all(tuple(c[0].shape) == tuple(heard.saliency.shape) for c in calls)
    assert heard.meta["budget_used"] == total and heard.meta["budget_total"] == total
    calls[-1][0].add_(1.0)                                           # the listener's copy is its own
    assert torch.equal(plain.saliency, heard.saliency)


@pytest.mark.parametrize("method", ["freqrise", "relax"])
def test_an_estimate_after_k_masks_is_the_one_shot_map_of_k_masks(method):
    model, x, t = key_setup()
    calls, fn = listen()
    explain(model, x, t, 1, method=method, seed=2, on_partial=fn, **BUDGETS[method])
    by_done = {c[1]: c[0] for c in calls}
    for k in (50, 400):
        one_shot = explain(model, x, t, 1, method=method, seed=2, **{**BUDGETS[method], "n_masks": k})
        assert torch.equal(by_done[k], one_shot.saliency)


def test_convergence_is_the_top_set_overlap_with_the_estimate_200_masks_earlier():
    model, x, t = key_setup()
    calls, fn = listen()
    explain(model, x, t, 1, method="freqrise", seed=1, on_partial=fn, n_masks=1000, readout="logit")
    by_done = {c[1]: c for c in calls}
    assert all(c[3] is None for c in calls if c[1] < 200)
    for done in (400, 600, 1000):
        earlier = max(d for d in by_done if d <= done - 200)
        want = jaccard(top_cells(by_done[done][0]), top_cells(by_done[earlier][0]))
        assert by_done[done][3] == pytest.approx(want)


def test_top_cells_and_jaccard():
    s = torch.tensor([0.0, 5.0, 1.0, 4.0, 0.0, 3.0, 2.0, 0.0, 0.0, 0.0])
    assert top_cells(s, 0.2).tolist() == [1, 3]
    assert top_cells(torch.tensor([0.0] * 9 + [1.0]), 0.5).tolist() == [9]     # ties at the floor left out
    assert jaccard(torch.tensor([1, 2, 3]), torch.tensor([2, 3, 4])) == pytest.approx(0.5)


# ---- stop="auto" ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["freqrise", "relax"])
def test_auto_stops_early_on_a_clear_clip_and_finds_the_key_bins(method):
    model, x, t = key_setup(EASY_N, EASY_KEY)
    settings = {**BUDGETS[method], "n_masks": 3000}
    calls, fn = listen()
    auto = explain(model, x, t, 1, method=method, seed=0, stop="auto", on_partial=fn, **settings)
    used = auto.meta["budget_used"]
    assert MIN_MASKS <= used < 3000 and auto.meta["budget_total"] == 3000
    assert auto.meta["forward_passes"] == used
    assert set(top_cells(auto.saliency).tolist()) == set(EASY_KEY)     # the analytic answer
    assert calls[-1][1] == used and calls[-1][3] >= JACCARD_MIN
    # auto is the budget run cut short: the same masks, so the same map at that point
    cut = explain(model, x, t, 1, method=method, seed=0, **{**settings, "n_masks": used})
    assert torch.equal(cut.saliency, auto.saliency)


@pytest.mark.parametrize("method,budget", [("freqrise", 30), ("freqrise", 450), ("relax", 250),
                                           ("learnable_mask", 7), ("minimal_mask", 130)])
def test_auto_never_exceeds_the_budget(method, budget):
    model, x, t = setup_for(method)
    key = "n_masks" if EXPLAINERS.get(method).family == "sampling" else "steps"
    e = explain(model, x, t, 1, method=method, seed=0, stop="auto", **{**BUDGETS[method], key: budget})
    assert e.meta["budget_used"] <= budget
    if key == "n_masks":
        assert e.meta["forward_passes"] == e.meta["budget_used"]
    else:
        assert e.meta["backward_passes"] == e.meta["budget_used"] * BUDGETS[method]["restarts"]


def test_auto_ends_a_mask_optimisation_when_the_loss_is_flat():
    model, x, t = mix_setup()
    e = explain(model, x, t, 1, method="learnable_mask", seed=0, stop="auto", steps=1500, restarts=2, lr=0.05)
    used = e.meta["budget_used"]
    assert used < 1500
    loss = e.extras["loss_curve"]
    assert loss.shape[0] == used
    fallen = float(loss[:5].mean() - loss[-5:].mean())
    assert fallen > 0 and float(loss[-55:-50].mean() - loss[-5:].mean()) <= 0.01 * fallen + 1e-6
    full = explain(model, x, t, 1, method="learnable_mask", seed=0, steps=used, restarts=2, lr=0.05)
    assert torch.equal(full.saliency, e.saliency)                     # the budget run's mask at that step


# ---- the CLI's bar ----------------------------------------------------------------------------------
def test_progress_bar_shows_masks_so_far_and_convergence(capsys):
    bar = ProgressBar("freqrise/stft", enabled=True)
    bar.partial(torch.zeros(3), 400, 3000, 0.93)
    bar(0.5, "FreqRISE: scoring masks")
    err = capsys.readouterr().err
    assert "400/3000 masks" in err and "top10% 0.93" in err


def test_progress_goes_to_a_log_as_plain_lines_when_stderr_is_not_a_terminal(capsys):
    bar = ProgressBar("ig/stft", tty=False)
    for i in range(101):
        bar(i / 100, "IG: path")
    lines = capsys.readouterr().err.splitlines()
    assert 10 <= len(lines) <= 12 and "\r" not in "".join(lines)
    assert lines[-1].startswith("ig/stft 100.0% IG: path")
    ProgressBar("x", tty=False, enabled=False)(0.5)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("method,k,settings", [("freqrise", 50, {"n_masks": 200}), ("relax", 100, {"n_masks": 200}),
                                               ("learnable_mask", 6, {"steps": 9, "restarts": 2})])
def test_estimates_on_a_clip_with_silence_are_the_maps_the_result_would_show(method, k, settings):
    """Zero padding makes inert cells (no importance in the result): the estimates show them the same way."""
    model, x, t = mix_setup()
    x = x.clone()
    x[: N // 2] = 0.0
    calls, fn = listen()
    explain(model, x, t, 1, method=method, seed=4, on_partial=fn, **settings)
    key = "n_masks" if "n_masks" in settings else "steps"
    one_shot = explain(model, x, t, 1, method=method, seed=4, **{**settings, key: k})
    assert bool(one_shot.extras["inert"].bool().any())
    assert torch.equal({c[1]: c[0] for c in calls}[k], one_shot.saliency)
