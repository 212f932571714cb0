"""Metrics that describe themselves: name, score direction, category — registered in :data:`METRICS`.

Every metric is computed in the explanation's own domain from a :class:`MetricContext` (the clip's
:class:`~earmark.probe.Probe`, the saliency map, a seed, options, and — where a metric needs them — the true
mask of a synthetic task or a way to recompute the map). Metrics that share work (the deletion and
insertion curves, the single-point scores) compute it once per context.

The registry lives in :mod:`.spec`, the per-explanation context in :mod:`.base`; each family module registers its metrics when imported, in the order
below (which is the order of the default evaluation's columns).

Example:
    >>> ctx = MetricContext(probe, explanation.saliency, seed=0)        # doctest: +SKIP
    >>> compute_metrics(["deletion_auc", "faithfulness", "complexity"], ctx)   # doctest: +SKIP
    {'deletion_auc': 0.21, 'faithfulness': 0.47, 'complexity': 5.9}
"""

from __future__ import annotations

from . import curves, fidelity, localisation, complexity, randomisation  # noqa: I001 (registration order)
from .base import MetricContext, compute_metrics
from .spec import METRICS, MetricOptions, MetricSpec, register_metric, select_metrics

__all__ = ["METRICS", "MetricContext", "MetricOptions", "MetricSpec", "compute_metrics", "register_metric",
           "select_metrics", "complexity", "curves", "fidelity", "localisation", "randomisation"]
