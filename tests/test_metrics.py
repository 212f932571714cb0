"""Metrics on tiny models whose answers can be computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError
from earmark.explainers import explain
from earmark.metrics import METRICS, MetricContext, MetricOptions, compute_metrics, select_metrics
from earmark.metrics.complexity import entropy
from earmark.metrics.curves import auc, curves, fraction_grid, random_ranks, rank_cells, single_point
from earmark.metrics.fidelity import ff_and_fid_in, mu_fidelity
from earmark.metrics.localisation import relevance_rank_accuracy
from earmark.metrics.randomisation import cascading_randomisation, spearman
from earmark.models import from_module
from earmark.probe import Probe
from earmark.transforms import get_transform

W = torch.tensor([0.4, 0.3, 0.2, 0.1])


class ShareOfKept(nn.Module):
    """Two classes; P(class 0) = w · x exactly (for x in [0, 1]^4): logits = log(w·x), log(1 − w·x)."""

    def forward(self, x):
        p = (x * W).sum(-1).clamp(1e-12, 1 - 1e-12)
        return torch.stack([p.log(), (1 - p).log()], -1)


@pytest.fixture
def share_probe():
    model = from_module(ShareOfKept(), sample_rate=8000, num_samples=4, labels=["kept", "rest"])
    return Probe(model, get_transform("time", 8000), torch.ones(4), target=0)


def test_every_metric_declares_itself():
    for spec in METRICS:
        assert spec.direction in ("higher", "lower") and spec.category and spec.help
    assert "randomisation" not in select_metrics("default") and "randomisation" in select_metrics("all")
    assert select_metrics("complexity,FF") == ["complexity", "FF"]
    with pytest.raises(ConfigError, match="Unknown metric"):
        select_metrics("accuracy")


def test_ranks_break_ties_by_index():
    assert rank_cells(torch.tensor([0.5, 0.9, 0.5, 0.9])).tolist() == [2, 0, 3, 1]
    assert rank_cells(torch.tensor([-3.0, 1.0]), absolute=True).tolist() == [0, 1]


def test_curves_are_exact_for_a_linear_readout(share_probe):
    c = curves(share_probe, W.clone(), fractions=fraction_grid(4))
    torch.testing.assert_close(c.deletion, torch.tensor([1.0, 0.6, 0.3, 0.1, 0.0], dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(c.insertion, torch.tensor([0.0, 0.4, 0.7, 0.9, 1.0], dtype=torch.float64), atol=1e-6, rtol=0)
    assert c.deletion_auc == pytest.approx(0.375, abs=1e-6)     # 0.25 · (1/2 + 0.6 + 0.3 + 0.1 + 0)
    assert c.insertion_auc == pytest.approx(0.625, abs=1e-6)
    assert c.faithfulness == pytest.approx(0.25, abs=1e-6)
    assert share_probe.forward_passes == 10                      # one batch of 2 × 5 masks


def test_faithfulness_sign_flips_for_a_reversed_ranking(share_probe):
    good = curves(share_probe, W.clone(), fractions=fraction_grid(4)).faithfulness
    bad = curves(share_probe, -W, fractions=fraction_grid(4)).faithfulness
    assert good > 0 > bad and bad == pytest.approx(-good, abs=1e-6)


def test_auc_of_known_curves():
    x = torch.linspace(0, 1, 11)
    assert auc(x, torch.ones(11)) == pytest.approx(1.0)
    assert auc(x, x) == pytest.approx(0.5)
    assert auc(x, 1 - x) == pytest.approx(0.5)


def test_single_point_scores(share_probe):
    g = torch.Generator().manual_seed(3)
    s = single_point(share_probe, W.clone(), fraction=0.25, num_random=7, generator=g)
    assert s.I == pytest.approx(0.4, abs=1e-6) and s.D == pytest.approx(0.6, abs=1e-6)
    first = random_ranks(7, (4,), generator=torch.Generator().manual_seed(3)).argmin(1)   # the cell each keeps
    assert s.RI == pytest.approx(float(W[first].mean()), abs=1e-6)
    assert s.RI + s.RD == pytest.approx(1.0, abs=1e-6)


def test_random_ranks_are_permutations():
    r = random_ranks(5, (2, 3), generator=torch.Generator().manual_seed(0))
    assert r.shape == (5, 2, 3)
    assert all(sorted(row.tolist()) == list(range(6)) for row in r.flatten(1))


def test_ff_and_fid_in(share_probe):
    ff, fid_in = ff_and_fid_in(share_probe, W.clone(), fraction=0.25)
    assert ff == pytest.approx(-math.log(0.6), abs=1e-5)        # log 1 − log 0.6
    assert fid_in == 0.0                                        # 0.4 kept: class "rest" wins
    _, fid_in = ff_and_fid_in(share_probe, W.clone(), fraction=0.75)
    assert fid_in == 1.0                                        # 0.9 kept: still "kept"


@pytest.mark.parametrize("domain", ["time", "fourier"])
def test_mu_fidelity_is_one_for_ig_on_a_linear_model(domain, generator):
    net = nn.Linear(32, 3)
    model = from_module(net, sample_rate=8000, num_samples=32, labels=["a", "b", "c"])
    x = torch.randn(32, generator=generator)
    transform = get_transform(domain, 8000)
    exp = explain(model, x, transform, 1, method="ig", n_steps=4)
    probe = Probe(model, transform, x, target=1)
    mu = mu_fidelity(probe, exp.saliency, num_subsets=64, generator=torch.Generator().manual_seed(0))
    assert mu == pytest.approx(1.0, abs=1e-4)


def test_complexity_of_uniform_and_one_hot_maps():
    assert entropy(torch.ones(3, 5)) == pytest.approx(math.log(15))
    assert entropy(torch.tensor([0.0, -2.0, 0.0])) == pytest.approx(0.0)
    assert math.isnan(entropy(torch.zeros(4)))


def test_relevance_rank_accuracy():
    s = torch.tensor([[0.9, 0.1, 0.5, 0.0]])
    assert float(relevance_rank_accuracy(s, torch.tensor([[1, 0, 0, 1]]))[0]) == pytest.approx(0.5)
    assert float(relevance_rank_accuracy(s, torch.tensor([[1, 0, 1, 0]]))[0]) == pytest.approx(1.0)
    assert float(relevance_rank_accuracy(-s, torch.tensor([[1, 0, 1, 0]]), absolute=True)[0]) == pytest.approx(1.0)
    assert math.isnan(float(relevance_rank_accuracy(s, torch.zeros(1, 4))[0]))
    with pytest.raises(ConfigError, match="same|shape"):
        relevance_rank_accuracy(s, torch.zeros(1, 5))


def test_spearman():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a * 10 + 3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([5.0, 5.0, 9.0])) == pytest.approx(1.0)


def test_cascading_randomisation_drops_after_reinit():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 2))
    model = from_module(net, sample_rate=8000, num_samples=16, labels=["a", "b"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(16, generator=torch.Generator().manual_seed(1))
    transform = get_transform("time", 8000)
    explain_fn = lambda m: explain(m, x, transform, 0, method="ig", n_steps=8).saliency
    result = cascading_randomisation(model, explain_fn, explain_fn(model), generator=torch.Generator().manual_seed(0))
    assert result.layers == ("module.4", "module.2", "module.0")
    assert result.correlations[0] == pytest.approx(1.0)
    assert result.final < 0.9
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # the original is untouched


def test_compute_metrics_skips_what_the_context_lacks(share_probe):
    ctx = MetricContext(share_probe, W.clone(), seed=0, options=MetricOptions(steps=4, fraction=0.25, mu_subsets=8))
    values = compute_metrics(select_metrics("all"), ctx)
    assert "relevance_rank_accuracy" not in values and "randomisation" not in values
    assert values["faithfulness"] == pytest.approx(0.25, abs=1e-6)
    assert values["I"] == pytest.approx(0.4, abs=1e-6)
    again = compute_metrics(select_metrics("all"), MetricContext(share_probe, W.clone(), seed=0,
                                                                 options=MetricOptions(steps=4, fraction=0.25, mu_subsets=8)))
    assert values == again                                                    # seeded: reproducible


def test_map_in_the_wrong_domain_is_a_clear_error(share_probe):
    with pytest.raises(ConfigError, match="same domain"):
        curves(share_probe, torch.ones(5))


def test_help_and_labels_follow_the_options_and_the_declared_direction():
    """Help texts and table labels come from the MetricSpec and the MetricOptions, never hand-typed."""
    spec = METRICS.get("I")
    assert spec.describe(MetricOptions(fraction=0.25)) == "True-class probability keeping only the top 25 % of cells."
    assert spec.title(MetricOptions(fraction=0.25)) == "I (keep 25 %) ↑"
    assert METRICS.get("D").describe() == "True-class probability with the top 10 % of cells removed."
    assert METRICS.get("deletion_auc").title() == "deletion AUC ↓"
    for s in METRICS:
        assert "10 %" not in s.help and "10 %" not in s.label
        assert s.title().endswith({"higher": "↑", "lower": "↓"}[s.direction])
