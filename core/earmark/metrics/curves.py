"""Deletion and insertion curves, their AUC, faithfulness, and the single-point scores I, D, RI, RD.

Everything happens in the explanation's own domain: map cells are ranked by saliency, a binary mask keeps
(insertion) or removes (deletion) the top fraction, and the model scores the clip with the removed cells
set to the baseline value 0. All masks of a curve go through :meth:`earmark.probe.Probe.score` as one batch.

Ties are broken deterministically: among equal saliency values the cell with the lower flat index ranks
first (a stable sort).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError
from .spec import MetricSpec, register_metric


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves of one explanation.

    Attributes:
        fractions: (K,) fraction of cells removed / inserted, from 0 to 1.
        deletion: (K,) true-class probability with the top fraction removed.
        insertion: (K,) true-class probability with only the top fraction kept.
    """

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor

    @property
    def deletion_auc(self) -> float:
        return auc(self.fractions, self.deletion)

    @property
    def insertion_auc(self) -> float:
        return auc(self.fractions, self.insertion)

    @property
    def faithfulness(self) -> float:
        """Insertion AUC − deletion AUC (higher: the ranking separates helpful from unhelpful cells)."""
        return self.insertion_auc - self.deletion_auc


def fraction_grid(steps: int = 20, *, device=None) -> Tensor:
    """(steps + 1,) evenly spaced fractions 0, 1/steps, …, 1 (float64)."""
    if steps < 1:
        raise ConfigError(f"Curves need at least 1 step between 0 % and 100 %; got {steps}.")
    return torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64, device=device)


def rank_cells(saliency: Tensor, *, absolute: bool = False) -> Tensor:
    """Rank of every cell, 0 = most salient.

    Args:
        saliency: (*M) map.
        absolute: rank by ``|saliency|`` instead of the signed value.

    Returns:
        (*M) int64 ranks; ties go to the lower flat index (stable sort).
    """
    flat = saliency.detach().flatten().real
    flat = flat.abs() if absolute else flat
    order = torch.sort(-flat.to(torch.float64), stable=True).indices
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(order.numel(), device=order.device)
    return ranks.reshape(saliency.shape)


def cell_counts(fractions: Tensor, num_cells: int) -> Tensor:
    """(K,) number of cells in the top fraction: ``round(fraction · num_cells)``."""
    return torch.round(fractions.to(torch.float64) * num_cells).long()


def top_masks(ranks: Tensor, counts: Tensor) -> Tensor:
    """(K, *M) float masks, 1 on the ``counts[k]`` best-ranked cells of ``ranks`` (*M)."""
    shape = (-1,) + (1,) * ranks.ndim
    return (ranks[None] < counts.to(ranks.device).view(shape)).float()


def curves(probe, saliency: Tensor, *, fractions: Tensor | None = None, absolute: bool = False,
           target: int | None = None) -> Curves:
    """Deletion and insertion curves of the target-class probability, in one batched model call.

    Args:
        probe: a :class:`~earmark.probe.Probe` of the clip in the explanation's domain.
        saliency: (*M) map in ``probe``'s map space.
        fractions: (K,) fractions in [0, 1] (default :func:`fraction_grid` with 20 steps).
        absolute: rank by ``|saliency|``.
        target: class whose probability is read (default: the probe's target).

    Returns:
        :class:`Curves` with (K,) float64 tensors on the CPU.
    """
    _check_map(probe, saliency)
    fractions = fraction_grid() if fractions is None else fractions.to(torch.float64)
    ranks = rank_cells(saliency, absolute=absolute).to(probe.device)
    keep = top_masks(ranks, cell_counts(fractions, ranks.numel()))           # (K, *M)
    probs = probe.score(torch.cat([1.0 - keep, keep]), baseline="zero", readout="prob", target=target,
                        stage="deletion and insertion curves")
    k = fractions.numel()
    probs = probs.detach().to("cpu", torch.float64)
    return Curves(fractions.cpu(), probs[:k], probs[k:])


def auc(fractions: Tensor, values: Tensor) -> float:
    """Area under a curve by the trapezoid rule over the fraction axis (fractions in [0, 1])."""
    return float(torch.trapezoid(values.to(torch.float64), fractions.to(torch.float64)))


@dataclass(frozen=True)
class SinglePoint:
    """The seeds' single-point scores: mean target probability keeping (I) / removing (D) the top
    fraction by the explanation, and the same for random rankings (RI, RD, averaged over rankings)."""

    I: float
    D: float
    RI: float
    RD: float


def random_ranks(num_rankings: int, shape: tuple[int, ...], *, generator: torch.Generator) -> Tensor:
    """(R, *M) ranks of R uniformly random orderings of the cells."""
    n = int(torch.Size(shape).numel())
    noise = torch.rand(num_rankings, n, generator=generator, device=generator.device)
    order = noise.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=order.device).expand(num_rankings, n).contiguous())
    return ranks.reshape(num_rankings, *shape)


def single_point(probe, saliency: Tensor, *, fraction: float = 0.1, num_random: int = 5,
                 generator: torch.Generator, absolute: bool = False, target: int | None = None) -> SinglePoint:
    """I, D, RI, RD in one batched model call.

    Args:
        probe: the clip in the explanation's domain.
        saliency: (*M) map.
        fraction: share of cells kept (I) or removed (D); the seeds use 0.1.
        num_random: random rankings averaged for RI and RD.
        generator: draws the random rankings (on the probe's device).

    Returns:
        :class:`SinglePoint`.
    """
    _check_map(probe, saliency)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"The single-point fraction must lie in (0, 1]; got {fraction}.")
    ranks = rank_cells(saliency, absolute=absolute).to(probe.device)
    k = int(cell_counts(torch.tensor([fraction]), ranks.numel())[0])
    rand = random_ranks(num_random, tuple(ranks.shape), generator=generator).to(probe.device)
    keep = (torch.cat([ranks[None], rand]) < k).float()                  # (1 + R, *M)
    probs = probe.score(torch.cat([keep, 1.0 - keep]), baseline="zero", readout="prob", target=target,
                        stage="single-point scores").detach().to("cpu", torch.float64)
    n = 1 + num_random
    kept, removed = probs[:n], probs[n:]
    return SinglePoint(I=float(kept[0]), D=float(removed[0]), RI=float(kept[1:].mean()),
                       RD=float(removed[1:].mean()))


def _check_map(probe, saliency: Tensor) -> None:
    if tuple(saliency.shape) != tuple(probe.map_shape):
        raise ConfigError(
            f"The saliency map has shape {tuple(saliency.shape)} but the {probe.transform.name} domain "
            f"expects {tuple(probe.map_shape)}; compute the map and the metric in the same domain."
        )


for _spec in (
    MetricSpec("deletion_auc", "lower", "faithfulness", lambda c: c.curves().deletion_auc,
               "Area under the true-class probability as the most salient cells are removed (set to 0).",
               label="deletion AUC"),
    MetricSpec("insertion_auc", "higher", "faithfulness", lambda c: c.curves().insertion_auc,
               "Area under the true-class probability as the most salient cells are inserted into a zero clip.",
               label="insertion AUC"),
    MetricSpec("faithfulness", "higher", "faithfulness", lambda c: c.curves().faithfulness,
               "Insertion AUC − deletion AUC."),
    MetricSpec("I", "higher", "faithfulness", lambda c: c.single_point().I,
               "True-class probability keeping only the top {fraction} of cells.", label="I (keep {fraction})"),
    MetricSpec("D", "lower", "faithfulness", lambda c: c.single_point().D,
               "True-class probability with the top {fraction} of cells removed.", label="D (remove {fraction})"),
    MetricSpec("RI", "higher", "faithfulness", lambda c: c.single_point().RI,
               "Reference for I: keeping {fraction} of cells chosen at random (mean over rankings).",
               label="RI (random keep)"),
    MetricSpec("RD", "lower", "faithfulness", lambda c: c.single_point().RD,
               "Reference for D: removing {fraction} of cells chosen at random (mean over rankings).",
               label="RD (random remove)"),
):
    register_metric(_spec)
