"""Earmark's metrics against Quantus's, on synthetic maps and a small linear model, where defined the same.

* ``complexity`` (entropy of ``|a|/Σ|a|``) = ``quantus.Complexity`` (Bhatt et al. 2020) — same definition.
* ``relevance_rank_accuracy(absolute=True)`` = ``quantus.RelevanceRankAccuracy(abs=True, normalise=False)``
  (Arras et al. 2022) — same definition; Earmark ranks signed values by default (``absolute=False``), and
  breaks ties by cell order (stable), Quantus by ``np.argsort`` (maps here have no ties).
* ``mu_fidelity`` = ``quantus.FaithfulnessCorrelation(perturb_baseline=0.0, normalise=False)`` (Bhatt et al.
  2020) on the same random subsets, in the time domain — Quantus's default baseline ``"black"`` is the clip's
  minimum and its default subset size 224 samples; Earmark removes a fraction of the cells (default 20 %) to
  zero coefficients, in any domain. The subsets Quantus draws are recorded and handed to Earmark.
* ``ModelParameterRandomisation``: not compared numerically — Quantus re-initialises layers with their own
  ``reset_parameters`` from the global generator; Earmark's cascading randomisation draws from an explicit
  generator, so the randomised models (and scores) differ by construction. Both use Spearman rank
  correlation of the maps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from earmark.metrics import fidelity
from earmark.metrics.complexity import entropy
from earmark.metrics.localisation import relevance_rank_accuracy
from earmark.models import from_module
from earmark.probe import Probe
from earmark.transforms import get_transform

quantus = pytest.importorskip("quantus")

L = 256


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(L, 3)

    def forward(self, x):
        return self.fc(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 1, L, generator=g), torch.randn(4, 1, L, generator=g), np.array([0, 1, 2, 0])


def test_complexity_equals_quantus(data):
    a, x, y = data
    ours = [entropy(m) for m in a]
    theirs = quantus.Complexity(disable_warnings=True)(model=Linear().eval(), x_batch=x.numpy(), y_batch=y,
                                                        a_batch=a.numpy(), channel_first=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_relevance_rank_accuracy_equals_quantus(data):
    a, x, y = data
    g = torch.Generator().manual_seed(1)
    # truths that overlap the top cells partly: the top-8 cells by |a| of a shifted map
    shifted = a + 0.8 * torch.randn(a.shape, generator=g)
    truth = torch.zeros_like(a)
    truth.flatten(1).scatter_(1, shifted.abs().flatten(1).topk(8, dim=1).indices, 1.0)
    ours = relevance_rank_accuracy(a.flatten(1), truth.flatten(1), absolute=True)
    theirs = quantus.RelevanceRankAccuracy(disable_warnings=True, abs=True, normalise=False)(
        model=Linear().eval(), x_batch=x.numpy(), y_batch=y, a_batch=a.numpy(), s_batch=truth.numpy(),
        channel_first=True)
    assert 0 < float(ours.mean()) < 1
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-6)


def test_mu_fidelity_equals_faithfulness_correlation(data, monkeypatch):
    a, x, y = data
    net = Linear().eval()
    model = from_module(nn.Sequential(nn.Unflatten(1, (1, L)), net).eval(), sample_rate=8000, num_samples=L,
                        labels=["a", "b", "c"], name="linear")
    runs, size = 40, 51
    drawn: list[np.ndarray] = []
    choice = np.random.choice

    def recording(*args, **kwargs):
        out = choice(*args, **kwargs)
        drawn.append(np.asarray(out))
        return out

    monkeypatch.setattr(np.random, "choice", recording)
    np.random.seed(7)
    theirs = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, perturb_baseline=0.0, normalise=False,
                                             return_aggregate=False, disable_warnings=True)(
        model=net, x_batch=x[:1].numpy(), y_batch=y[:1], a_batch=a[:1].numpy(), channel_first=True)
    monkeypatch.setattr(np.random, "choice", choice)
    assert len(drawn) == runs
    subsets = torch.zeros(runs, L)
    for i, ix in enumerate(drawn):
        subsets[i, torch.as_tensor(ix)] = 1.0
    monkeypatch.setattr(fidelity, "random_subsets", lambda n, shape, *, size, generator: subsets)
    probe = Probe(model, get_transform("time", 8000), x[0, 0], target=int(y[0]))
    ours = fidelity.mu_fidelity(probe, a[0, 0], subset_fraction=size / L, num_subsets=runs,
                                generator=torch.Generator().manual_seed(0))
    assert abs(ours - float(theirs[0])) < 1e-5
