"""Localisation against a known ground truth (the synthetic tasks of :mod:`core.tasks`).

**Relevance-rank accuracy** (Arras et al. 2022, used by FreqRISE): with K the number of truly relevant
cells, the share of them among the K most salient cells. 1 = the map puts exactly the true cells on top.
The computation is :func:`core.tasks.relevance_rank_accuracy` (one definition in the project); this
module adapts it to one map and gives an empty truth a NaN instead of an error, so an evaluation over
many clips keeps going.
"""

from __future__ import annotations

from torch import Tensor

from ..errors import ConfigError
from ..tasks import relevance_rank_accuracy as _batched_rra


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
