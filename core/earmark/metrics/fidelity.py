"""Fidelity scores: FF, Fid-In and μ-fidelity.

* **FF** (Frehr et al.; FLEXtime): drop of the class logit when the masked-in part (the top fraction of
  the map) is removed — large when the explanation found what the model needs.
* **Fid-In**: 1 if the class predicted on the full clip is still predicted from the masked-in part alone.
* **μ-fidelity** (Bhatt et al. 2020): Pearson correlation, over random subsets S of cells, between the
  summed attribution ``Σ_{i∈S} a_i`` and the output drop ``f(x) − f(x with S set to 0)``. The output is the
  class *logit* by default, the quantity the gradient methods attribute, so that exact attributions of a
  linear model score exactly 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..probe import READOUTS, Readout
from .spec import MetricSpec, register_metric
from .curves import _check_map, cell_counts, rank_cells


def masked_in(saliency: Tensor, *, fraction: float = 0.1, absolute: bool = False) -> Tensor:
    """(*M) float mask, 1 on the top ``fraction`` of cells by saliency (stable tie breaking)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"The masked-in fraction must lie in (0, 1]; got {fraction}.")
    ranks = rank_cells(saliency, absolute=absolute)
    k = int(cell_counts(torch.tensor([fraction]), ranks.numel())[0])
    return (ranks < k).float()


def ff_and_fid_in(probe, saliency: Tensor, *, fraction: float = 0.1, absolute: bool = False,
                  target: int | None = None) -> tuple[float, float]:
    """FF and Fid-In from one batched model call (keep-only and remove the masked-in part).

    Args:
        probe: the clip in the explanation's domain.
        saliency: (*M) map.
        fraction: share of cells forming the masked-in part.
        target: the class (default: the probe's target).

    Returns:
        ``(ff, fid_in)``: ``logit_c(x) − logit_c(x without the part)`` and 1.0 / 0.0.
    """
    _check_map(probe, saliency)
    c = probe.target if target is None else int(target)
    keep = masked_in(saliency, fraction=fraction, absolute=absolute).to(probe.device)
    logits = probe.score(torch.stack([keep, 1.0 - keep]), baseline="zero", readout="logits",
                         stage="fidelity").detach().to("cpu", torch.float64)
    ff = float(probe.logits[c].double().cpu() - logits[1, c])
    fid_in = float(int(logits[0].argmax()) == int(probe.logits.argmax()))
    return ff, fid_in


def random_subsets(num_subsets: int, shape: tuple[int, ...], *, size: int, generator: torch.Generator) -> Tensor:
    """(N, *M) float masks, each with exactly ``size`` cells set to 1, drawn uniformly."""
    n = int(torch.Size(shape).numel())
    noise = torch.rand(num_subsets, n, generator=generator, device=generator.device)
    chosen = noise.argsort(dim=1)[:, :size]
    masks = torch.zeros(num_subsets, n, device=noise.device)
    masks.scatter_(1, chosen, 1.0)
    return masks.reshape(num_subsets, *shape)


def pearson(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two (N,) vectors; NaN when either is constant."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denom = a.norm() * b.norm()
    return float((a * b).sum() / denom) if float(denom) > 0 else float("nan")


def mu_fidelity(probe, saliency: Tensor, *, subset_fraction: float = 0.2, num_subsets: int = 128,
                generator: torch.Generator, readout: Readout = "logit", target: int | None = None) -> float:
    """μ-fidelity: correlation between summed attribution of random subsets and the drop when removed.

    Args:
        probe: the clip in the explanation's domain.
        saliency: (*M) signed attribution map.
        subset_fraction: share of cells in each random subset.
        num_subsets: subsets drawn (one batched model call).
        generator: draws the subsets (on the probe's device).
        readout: ``"logit"`` (default) or ``"prob"`` of the target class.

    Returns:
        Pearson correlation in [−1, 1]; NaN when the attribution sums or the drops do not vary.
    """
    _check_map(probe, saliency)
    if readout not in READOUTS:
        raise ConfigError(f"μ-fidelity reads one of {', '.join(map(repr, READOUTS))}, not '{readout}'.")
    n = saliency.numel()
    size = max(1, int(round(subset_fraction * n)))
    subsets = random_subsets(num_subsets, tuple(saliency.shape), size=size, generator=generator).to(probe.device)
    masks = torch.cat([torch.ones_like(subsets[:1]), 1.0 - subsets])      # first row: the clean clip
    values = probe.score(masks, baseline="zero", readout=readout, target=target, stage="μ-fidelity").detach()
    drops = values[0] - values[1:]
    sums = (subsets.flatten(1) * saliency.to(subsets).flatten()[None]).sum(1)
    return pearson(sums.cpu(), drops.cpu())


for _spec in (
    MetricSpec("FF", "higher", "fidelity", lambda c: c.fidelity()[0],
               "Drop of the class logit when the masked-in part (top {fraction}) is removed."),
    MetricSpec("fid_in", "higher", "fidelity", lambda c: c.fidelity()[1],
               "1 if the masked-in part alone is still given the clip's predicted class.", label="Fid-In"),
    MetricSpec("mu_fidelity", "higher", "fidelity",
               lambda c: mu_fidelity(c.probe, c.saliency, subset_fraction=c.options.mu_fraction,
                                     num_subsets=c.options.mu_subsets, generator=c.generator("mu")),
               "Correlation between the summed attribution of random subsets and the logit drop when removed.",
               label="μ-fidelity"),
):
    register_metric(_spec)
