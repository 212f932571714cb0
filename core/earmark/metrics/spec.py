"""The metric registry: :class:`MetricSpec` (name, score direction, category), :class:`MetricOptions`,
:data:`METRICS` and :func:`select_metrics`. Each family module (:mod:`.curves`, :mod:`.fidelity`,
:mod:`.localisation`, :mod:`.complexity`, :mod:`.randomisation`) registers its metrics here when imported;
the per-explanation :class:`~earmark.metrics.base.MetricContext` is in :mod:`.base`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from ..errors import ConfigError
from ..params import Registry

if TYPE_CHECKING:
    from .base import MetricContext

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


__all__ = ["Category", "Direction", "METRICS", "MetricOptions", "MetricSpec", "percent", "register_metric",
           "select_metrics"]
