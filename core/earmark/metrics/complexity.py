"""Complexity: how spread out a map is.

**Entropy** of the normalised magnitude ``p = |s| / Σ|s|``: ``H = −Σ p log p`` (natural log). A map on a
single cell scores 0; a uniform map over n cells scores ``log n``. Lower = a more concentrated map.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .spec import MetricSpec, register_metric


def entropy(saliency: Tensor) -> float:
    """Entropy (nats) of ``|saliency| / Σ|saliency|``.

    Args:
        saliency: (*M) map (any sign; complex values use their magnitude).

    Returns:
        ``H`` in [0, log n]; NaN for an all-zero map (no distribution to measure).

    Example:
        >>> round(entropy(torch.ones(4)), 6) == round(float(torch.log(torch.tensor(4.0))), 6)
        True
    """
    mag = saliency.detach().abs().flatten().double()
    total = mag.sum()
    if not float(total) > 0:
        return float("nan")
    p = mag / total
    return float(-(torch.special.xlogy(p, p)).sum())


register_metric(MetricSpec("complexity", "lower", "complexity", lambda c: entropy(c.saliency),
                           "Entropy (nats) of the normalised |map|; 0 = one cell, log n = uniform."))
