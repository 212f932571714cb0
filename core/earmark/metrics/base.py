"""The per-explanation :class:`MetricContext` and :func:`compute_metrics`; the registry (:class:`MetricSpec`,
:data:`METRICS`) is in :mod:`.spec`, and each family module registers its own metrics there (:mod:`.curves`,
:mod:`.fidelity`, :mod:`.localisation`, :mod:`.complexity`, :mod:`.randomisation`).

Every metric is computed in the explanation's own domain from a :class:`MetricContext` (the clip's
:class:`~earmark.probe.Probe`, the saliency map, a seed, options, and — where a metric needs them — the true
mask of a synthetic task or a way to recompute the map). Metrics that share work (the deletion and
insertion curves, the single-point scores) compute it once per context.

Example:
    >>> ctx = MetricContext(probe, explanation.saliency, seed=0)        # doctest: +SKIP
    >>> compute_metrics(["deletion_auc", "faithfulness", "complexity"], ctx)   # doctest: +SKIP
    {'deletion_auc': 0.21, 'faithfulness': 0.47, 'complexity': 5.9}
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from ..device import make_generator
from . import curves, fidelity, randomisation
from .spec import (METRICS, Category, Direction, MetricOptions, MetricSpec, percent, register_metric,
                   select_metrics)


@dataclass
class MetricContext:
    """Everything a metric may need about one explanation; caches work shared between metrics.

    Attributes:
        probe: the clip, model and domain of the explanation (its target is the explained class).
        saliency: (*M) the map.
        seed: seeds every random draw (each metric gets its own stream, so results do not depend on
            which other metrics run).
        options: :class:`MetricOptions`.
        true_mask: (*M) ground truth of a synthetic task, or ``None``.
        reexplain: ``reexplain(model) -> (*M)`` recomputes the map on another model, or ``None``.
        cell_scorer: ``score(saliency) -> accuracy`` on a task's own cells (the time–frequency task's
            16 slot × band cells), or ``None``.
    """

    probe: Any
    saliency: Tensor
    seed: int = 0
    options: MetricOptions = field(default_factory=MetricOptions)
    true_mask: Tensor | None = None
    reexplain: Callable[[torch.nn.Module], Tensor] | None = None
    cell_scorer: Callable[[Tensor], float] | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def generator(self, stream: str, device: torch.device | str | None = None) -> torch.Generator:
        """A generator seeded from ``seed`` and the stream's name."""
        return make_generator(self.seed * 1_000_003 + zlib.crc32(stream.encode()) % 1_000_003,
                              device if device is not None else self.probe.device)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    # shared computations ------------------------------------------------------------------------
    def curves(self) -> curves.Curves:
        o = self.options
        return self.cached("curves", lambda: curves.curves(
            self.probe, self.saliency, fractions=curves.fraction_grid(o.steps), absolute=o.absolute))

    def single_point(self) -> curves.SinglePoint:
        o = self.options
        return self.cached("single_point", lambda: curves.single_point(
            self.probe, self.saliency, fraction=o.fraction, num_random=o.num_random,
            generator=self.generator("random rankings"), absolute=o.absolute))

    def fidelity(self) -> tuple[float, float]:
        o = self.options
        return self.cached("fidelity", lambda: fidelity.ff_and_fid_in(
            self.probe, self.saliency, fraction=o.fraction, absolute=o.absolute))

    def randomisation(self) -> randomisation.Randomisation:
        o = self.options
        return self.cached("randomisation", lambda: randomisation.cascading_randomisation(
            self.probe.model, self.reexplain, self.saliency, generator=self.generator("randomisation", "cpu"),
            max_layers=o.randomisation_layers))


def compute_metrics(names: list[str], context: MetricContext) -> dict[str, float]:
    """Compute the named metrics; those whose requirements the context lacks are left out."""
    out = {}
    for name in names:
        spec: MetricSpec = METRICS.get(name)
        if any(getattr(context, req) is None for req in spec.requires):
            continue
        out[name] = float(spec.fn(context))
    return out


__all__ = ["Category", "Direction", "METRICS", "MetricContext", "MetricOptions", "MetricSpec", "compute_metrics",
           "percent", "register_metric", "select_metrics"]
