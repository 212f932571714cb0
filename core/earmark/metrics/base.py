"""The metric framework: :class:`MetricSpec` (name, score direction, category), :data:`METRICS`, the
per-explanation :class:`MetricContext` and :func:`compute_metrics`. Each family module registers its own
metrics (:mod:`.curves`, :mod:`.fidelity`, :mod:`.localisation`, :mod:`.complexity`, :mod:`.randomisation`).

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
from typing import TYPE_CHECKING, Any, Callable, Literal

import torch
from torch import Tensor

from ..device import make_generator
from ..errors import ConfigError
from ..params import Registry

if TYPE_CHECKING:
    from . import curves, randomisation

Direction = Literal["higher", "lower"]
Category = Literal["faithfulness", "fidelity", "localisation", "complexity", "randomisation"]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric.

    Attributes:
        name: registry name (CSV column, ``--metrics`` entry).
        direction: ``"higher"`` or ``"lower"`` is better.
        category: family, as in Quantus.
        fn: ``fn(context) -> float``.
        help: one line for a person; ``{fraction}`` stands for :attr:`MetricOptions.fraction` (see
            :meth:`describe`).
        requires: context fields that must be set (``"true_mask"``, ``"reexplain"``); the metric is
            skipped where they are missing.
        default: part of the default evaluation (the randomisation check is opt-in: it recomputes the
            map once per layer).
        label: short human name for tables and menus (``{fraction}`` as in ``help``); default ``name``.
    """

    name: str
    direction: Direction
    category: Category
    fn: Callable[["MetricContext"], float]
    help: str
    requires: tuple[str, ...] = ()
    default: bool = True
    label: str = ""

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` when lower is."""
        return "↑" if self.direction == "higher" else "↓"

    def describe(self, options: MetricOptions | None = None) -> str:
        """:attr:`help` with the options' values filled in (e.g. "the top 10 % of cells")."""
        return self.help.format(fraction=percent((options or MetricOptions()).fraction))

    def title(self, options: MetricOptions | None = None) -> str:
        """``label`` with the options' values and the score direction, e.g. ``"I (keep 10 %) ↑"``."""
        label = (self.label or self.name).format(fraction=percent((options or MetricOptions()).fraction))
        return f"{label} {self.arrow}"


def percent(fraction: float) -> str:
    """``0.1`` → ``"10 %"``."""
    return f"{fraction * 100:g} %"


@dataclass(frozen=True)
class MetricOptions:
    """Settings shared by the metrics (the seeds' values by default).

    Attributes:
        steps: curve steps between 0 % and 100 % (21 points for 20 steps).
        fraction: share of cells kept / removed by I, D, RI, RD, FF and Fid-In.
        num_random: random rankings averaged for RI and RD.
        mu_subsets: random subsets for μ-fidelity.  mu_fraction: share of cells in each subset.
        absolute: rank cells by ``|saliency|`` instead of the signed value.
        randomisation_layers: layers re-initialised by the cascade (``None``: all).
    """

    steps: int = 20
    fraction: float = 0.1
    num_random: int = 5
    mu_subsets: int = 128
    mu_fraction: float = 0.2
    absolute: bool = False
    randomisation_layers: int | None = None


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
        from . import curves

        o = self.options
        return self.cached("curves", lambda: curves.curves(
            self.probe, self.saliency, fractions=curves.fraction_grid(o.steps), absolute=o.absolute))

    def single_point(self) -> curves.SinglePoint:
        from . import curves

        o = self.options
        return self.cached("single_point", lambda: curves.single_point(
            self.probe, self.saliency, fraction=o.fraction, num_random=o.num_random,
            generator=self.generator("random rankings"), absolute=o.absolute))

    def fidelity(self) -> tuple[float, float]:
        from . import fidelity

        o = self.options
        return self.cached("fidelity", lambda: fidelity.ff_and_fid_in(
            self.probe, self.saliency, fraction=o.fraction, absolute=o.absolute))

    def randomisation(self) -> randomisation.Randomisation:
        from . import randomisation

        o = self.options
        return self.cached("randomisation", lambda: randomisation.cascading_randomisation(
            self.probe.model, self.reexplain, self.saliency, generator=self.generator("randomisation", "cpu"),
            max_layers=o.randomisation_layers))


METRICS = Registry("metric")


def register_metric(spec: MetricSpec) -> MetricSpec:
    return METRICS.register(spec.name, spec)


def select_metrics(text: str | None) -> list[str]:
    """Metric names from a comma list of names, categories, ``default`` or ``all``.

    Raises:
        ConfigError: an unknown name.
    """
    if not text or text.strip() == "default":
        return [s.name for s in METRICS if s.default]
    out: list[str] = []
    categories = {s.category for s in METRICS}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item == "all":
            picked = [s.name for s in METRICS]
        elif item == "default":
            picked = [s.name for s in METRICS if s.default]
        elif item in categories:
            picked = [s.name for s in METRICS if s.category == item]
        elif item in METRICS:
            picked = [item]
        else:
            raise ConfigError(
                f"Unknown metric '{item}'. Choose names ({', '.join(METRICS.names())}), "
                f"categories ({', '.join(sorted(categories))}), 'default' or 'all'."
            )
        out += [p for p in picked if p not in out]
    return out


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
