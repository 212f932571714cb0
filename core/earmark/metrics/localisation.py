"""Localisation against a known ground truth (the synthetic tasks of :mod:`earmark.data.tasks`).

**Relevance-rank accuracy** (Arras et al. 2022, used by FreqRISE): with K the number of truly relevant
cells, the share of them among the K most salient cells. 1 = the map puts exactly the true cells on top.
:func:`relevance_rank_accuracy` is the one definition in the project; an empty truth gives NaN, so an
evaluation over many clips keeps going.

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

from ..data.tasks import TimeFrequencyTask
from ..errors import ConfigError
from .spec import MetricSpec, register_metric


def relevance_rank_accuracy(saliency: Tensor, truth: Tensor, *, absolute: bool = False) -> Tensor:
    """Share of the K true cells among the top-K cells of each map (K = number of true cells of the clip).

    Cells are ranked by the saliency *value* (``absolute``: by magnitude); ties keep the cells' order (a
    stable sort). This is the one definition in the project: single maps pass ``saliency[None]``.

    Args:
        saliency: (n, *M) real maps.
        truth: (n, *M) ground truth (:func:`earmark.data.tasks.true_mask`); cells with a value > 0 are relevant.
        absolute: rank by ``|saliency|``.

    Returns:
        (n,) float32 accuracies in [0, 1] (a random ranking scores ``K / #cells`` on average); NaN for a
        clip whose truth marks no cell, so an evaluation over many clips keeps going.

    Raises:
        ConfigError: the truth and the maps differ in shape.

    Example:
        >>> relevance_rank_accuracy(torch.tensor([[0.9, 0.1, 0.5, 0.0]]), torch.tensor([[1, 0, 0, 1]]))
        tensor([0.5000])
    """
    if tuple(truth.shape) != tuple(saliency.shape):
        raise ConfigError(
            f"The true mask has shape {tuple(truth.shape)} but the maps have {tuple(saliency.shape)}; "
            "build the ground truth in the explanation's domain."
        )
    truth = (truth.detach().to(saliency.device).real > 0).flatten(1)
    values = saliency.detach().real
    values = values.abs() if absolute else values
    k = truth.sum(1)
    order = values.flatten(1).to(torch.float64).argsort(dim=1, descending=True, stable=True)
    hits = truth.gather(1, order) & (torch.arange(truth.shape[1], device=truth.device) < k[:, None])
    return hits.sum(1).to(torch.float32) / k.to(torch.float32)


def task_cell_accuracy(saliency: Tensor, label: Tensor, transform, *, task: TimeFrequencyTask | None = None,
                       length: int | None = None, centre: bool = True) -> Tensor:
    """Relevance-rank accuracy on the time–frequency task's 16 (slot, band) cells (K = 2; DESIGN §5).

    The maps are aggregated into the task's 4 × 4 grid (:meth:`TimeFrequencyTask.cell_scores`) and the two
    present key cells are the truth (:meth:`TimeFrequencyTask.true_cells`), so the score asks "which bursts
    does the map point at", not "does it resolve the single STFT bins of a tone line" — a question about
    localisation, not about the resolution of a smooth-mask method. A random ranking scores 2/16 = 0.125.

    Args:
        saliency: (n, *M) maps in ``transform``'s map space.
        label: (n,) the clips' classes (which pair of keys is present).
        transform: the maps' domain.  task: the task settings (default :class:`TimeFrequencyTask`).
        length: clip length in samples (default the task's).  centre: subtract each map's median first.

    Returns:
        (n,) accuracies in {0, 0.5, 1}.

    Example:
        >>> task_cell_accuracy(explanation.saliency[None], torch.tensor([3]), get_transform("dwt", 8000))  # doctest: +SKIP
        tensor([1.])
    """
    task = task or TimeFrequencyTask()
    scores = task.cell_scores(transform, saliency, length, centre=centre)
    return relevance_rank_accuracy(scores, task.true_cells(torch.as_tensor(label).reshape(-1).cpu()))


for _spec in (
    MetricSpec("relevance_rank_accuracy", "higher", "localisation",
               lambda c: float(relevance_rank_accuracy(c.saliency[None], c.true_mask[None],
                                                       absolute=c.options.absolute)[0]),
               "Share of the K truly relevant cells among the K most salient (synthetic tasks).",
               requires=("true_mask",), label="relevance-rank accuracy"),
    MetricSpec("task_cell_accuracy", "higher", "localisation",
               lambda c: c.cell_scorer(c.saliency.abs() if c.options.absolute else c.saliency),
               "Share of the present key cells among the most salient of a task's own cells (time–frequency "
               "task: 2 of 16 slot × band cells; random ranking 0.125).",
               requires=("cell_scorer",), label="task-cell accuracy"),
):
    register_metric(_spec)
