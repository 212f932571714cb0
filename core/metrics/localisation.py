"""Localisation against a known ground truth (the synthetic tasks of :mod:`earmark.data.tasks`).

**Relevance-rank accuracy** (Arras et al. 2022, used by FreqRISE): with K the number of truly relevant
cells, the share of them among the K most salient cells. 1 = the map puts exactly the true cells on top.
The computation is :func:`earmark.data.tasks.relevance_rank_accuracy` (one definition in the project); this
module adapts it to one map and gives an empty truth a NaN instead of an error, so an evaluation over
many clips keeps going.

Two levels of truth:

* **map cells** (:func:`relevance_rank_accuracy`): the truth is the fewest coefficients holding 90 % of the
  key energy (:func:`earmark.data.tasks.true_mask`). Right for the frequency task in the rFFT domain, where the
  keys are single bins; on the time–frequency task it asks a smooth-mask method (≈ 200 random grid cells)
  to resolve the few narrow bins of a tone line, i.e. it scores resolution rather than localisation.
* **task cells** (:func:`task_cell_accuracy`): the time–frequency task's own 4 × 4 (time slot, octave
  band) grid, DESIGN §5's "true cells": the map is summed into the grid (positive part of the
  median-centred saliency, see :meth:`earmark.data.tasks.TimeFrequencyTask.cell_scores`) and the two present
  key cells are the truth. A random ranking scores 2/16 on average.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.tasks import TimeFrequencyTask, cell_relevance_rank_accuracy
from ..data.tasks import relevance_rank_accuracy as _batched_rra
from ..errors import ConfigError
from .base import MetricSpec, register_metric


def relevance_rank_accuracy(saliency: Tensor, true_mask: Tensor, *, absolute: bool = False) -> float:
    """Share of the K true cells among the top-K cells of the map (K = number of true cells).

    Args:
        saliency: (*M) map.
        true_mask: (*M) ground truth; cells with a value > 0 are relevant.
        absolute: rank by ``|saliency|``.

    Returns:
        Accuracy in [0, 1]; NaN when the ground truth marks no cell.

    Example:
        >>> relevance_rank_accuracy(torch.tensor([0.9, 0.1, 0.5, 0.0]), torch.tensor([1, 0, 0, 1]))
        0.5
    """
    if tuple(true_mask.shape) != tuple(saliency.shape):
        raise ConfigError(
            f"The true mask has shape {tuple(true_mask.shape)} but the map has {tuple(saliency.shape)}; "
            "build the ground truth in the explanation's domain."
        )
    truth = true_mask.detach().to(saliency.device).real > 0
    if not bool(truth.any()):
        return float("nan")
    values = saliency.detach().real
    values = values.abs() if absolute else values
    return float(_batched_rra(values[None], truth[None])[0])


def task_cell_accuracy(saliency: Tensor, label: int | Tensor, transform, *, task: TimeFrequencyTask | None = None,
                       length: int | None = None) -> float:
    """Relevance-rank accuracy of one map on the time–frequency task's 16 (slot, band) cells (K = 2).

    Args:
        saliency: (*M) map in ``transform``'s map space.
        label: the clip's class (which pair of keys is present).
        transform: the map's domain.  task: the task settings (default :class:`TimeFrequencyTask`).
        length: clip length in samples (default the task's).

    Returns:
        Accuracy in {0, 0.5, 1}.

    Example:
        >>> task_cell_accuracy(explanation.saliency, 3, get_transform("dwt", 8000))   # doctest: +SKIP
        1.0
    """
    label = torch.as_tensor(label).reshape(1)
    return float(cell_relevance_rank_accuracy(transform, saliency[None], label, length, task=task)[0])


for _spec in (
    MetricSpec("relevance_rank_accuracy", "higher", "localisation",
               lambda c: relevance_rank_accuracy(c.saliency, c.true_mask, absolute=c.options.absolute),
               "Share of the K truly relevant cells among the K most salient (synthetic tasks).",
               requires=("true_mask",)),
    MetricSpec("task_cell_accuracy", "higher", "localisation",
               lambda c: c.cell_scorer(c.saliency.abs() if c.options.absolute else c.saliency),
               "Share of the present key cells among the most salient of a task's own cells (time–frequency "
               "task: 2 of 16 slot × band cells; random ranking 0.125).",
               requires=("cell_scorer",)),
):
    register_metric(_spec)
