"""Variance reduction for the sampling explainers: antithetic and Sobol cell draws, FreqRISE's control variate."""

from __future__ import annotations

import pytest
import torch

from earmark.errors import ConfigError
from earmark.explainers import explain
from earmark.explainers.masks import CellDraws, smooth_masks, strategy_masks

from test_anytime import KEY, key_setup


def test_antithetic_pairs_are_complements_with_the_same_shift():
    g = torch.Generator().manual_seed(0)
    m = smooth_masks(10, (40, 30), cells=20, p=0.5, generator=g, draws=CellDraws("antithetic", generator=g))
    torch.testing.assert_close(m[0::2] + m[1::2], torch.ones(5, 40, 30))      # bilinear: 1 − M exactly
    b = strategy_masks(6, (40, 30), strategy="patches", cells=20, generator=g,
                       draws=CellDraws("antithetic", generator=g))
    assert torch.equal(b[0::2] + b[1::2], torch.ones(3, 40, 30))


def test_sobol_keeps_each_cell_in_close_to_exactly_half_of_the_masks():
    shape, n = (20, 1), 512                                   # one grid cell per row: binary masks
    g = torch.Generator().manual_seed(1)
    sob = smooth_masks(n, shape, cells=20, generator=g, draws=CellDraws("sobol", generator=g))
    ber = smooth_masks(n, shape, cells=20, generator=torch.Generator().manual_seed(1))
    dev = lambda m: float((m.mean(0) - 0.5).abs().max())  # noqa: E731
    assert dev(sob) <= 2 / n < dev(ber)                      # Sobol: balanced to a count or two


def test_a_chunked_sobol_run_continues_the_sequence():
    shape = (20, 1)
    whole = smooth_masks(64, shape, cells=20, generator=torch.Generator().manual_seed(2),
                         draws=CellDraws("sobol", generator=torch.Generator().manual_seed(2)))
    g = torch.Generator().manual_seed(2)
    draws = CellDraws("sobol", generator=g)
    parts = torch.cat([smooth_masks(b, shape, cells=20, generator=g, draws=draws) for b in (25, 25, 14)])
    assert torch.equal(whole, parts)


def test_bernoulli_sampler_is_the_papers_draw_bit_for_bit():
    a = smooth_masks(8, (30, 20), generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    b = smooth_masks(8, (30, 20), generator=g, draws=CellDraws("bernoulli", generator=g))
    assert torch.equal(a, b)


def test_unknown_sampler_is_one_clear_error():
    with pytest.raises(ConfigError, match="sampler"):
        CellDraws("halton", generator=torch.Generator())


def analytic_map():
    truth = torch.full((129,), 2.0)                         # logit 4·k/13: E[s·M_i]/keep = 4/13·(1 + 12/2) on KEY
    truth[list(KEY)] = 4 / 13 * 7
    return truth


@pytest.mark.parametrize("sampler,estimator", [("bernoulli", "control_variate"), ("antithetic", "plain"),
                                               ("sobol", "plain"), ("sobol", "control_variate")])
def test_every_variant_estimates_the_papers_map_with_less_error(sampler, estimator):
    model, x, t = key_setup()
    truth = analytic_map()
    err = lambda **kw: float(torch.stack([  # noqa: E731
        (explain(model, x, t, 1, method="freqrise", seed=s, n_masks=1000, readout="logit", **kw).saliency - truth)
        .pow(2).mean() for s in range(3)]).mean().sqrt())
    plain = err()
    variant = err(sampler=sampler, estimator=estimator)
    assert variant < 0.6 * plain                            # linear toy: all of them help clearly
    assert variant < 0.05                                   # and they are unbiased for the same map


@pytest.mark.parametrize("sampler", ["antithetic", "sobol"])
def test_relax_samplers_find_the_key_bins(sampler):
    model, x, t = key_setup()
    e = explain(model, x, t, 1, method="relax", seed=0, n_masks=1000, sampler=sampler)
    others = [i for i in range(129) if i not in KEY]
    assert float(e.saliency[list(KEY)].min()) > float(e.saliency[others].max()) - 0.01
