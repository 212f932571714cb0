"""A classifier's outputs: logits → probabilities by its activation (the one softmax-or-sigmoid in Earmark).

A model card says ``activation="softmax"`` (one class per clip) or ``"sigmoid"`` (multi-label: every class is
its own yes/no); :class:`~earmark.models.ModelCard`, the probe, the explainers and the listening workflow all
turn logits into probabilities here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def activation(logits: Tensor, *, multi_label: bool = False) -> Tensor:
    """(..., C) logits → probabilities: softmax over the classes, or a sigmoid per class when multi-label."""
    return logits.sigmoid() if multi_label else logits.softmax(-1)


def log_activation(logits: Tensor, *, multi_label: bool = False) -> Tensor:
    """(..., C) logits → log-probabilities by the same activation as :func:`activation`."""
    return F.logsigmoid(logits) if multi_label else logits.log_softmax(-1)


__all__ = ["activation", "log_activation"]
