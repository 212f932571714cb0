"""What every explainer declares and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from torch import Tensor

from ..params import Param

Family = Literal["gradient", "sampling", "optimisation", "reference"]
#: ``first_look(saliency)``: receives the final saliency map (*M) before the uncertainty is done.
FirstLook = Callable[[Tensor], None]


@dataclass(frozen=True)
class Attribution:
    """What an explainer function computes; :func:`earmark.explainers.explain` wraps it in an Explanation.

    Attributes:
        saliency: (*M) real map.  uncertainty: (*M) non-negative map.
        extras: method-specific tensors (loss curves, per-scale importance, trade-off curves).
        resolved: hyperparameters the method worked out itself, by name (e.g. the learnable mask's
            domain-dependent defaults); they replace the declared values in ``Explanation.params``.
    """

    saliency: Tensor
    uncertainty: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExplainerSpec:
    """A registered explainer.

    Attributes:
        name: registry name (CLI ``--explainer NAME``).
        title: human name for menus.
        fn: ``fn(probe, *, generator, progress, **params) -> Attribution``.
        params: declared hyperparameters with the papers' defaults.
        family: ``gradient`` (backward passes), ``sampling`` (forward passes on masks),
            ``optimisation`` (a mask learned by gradient descent) or ``reference`` (a model-free
            map to compare explainers against).
        uncertainty: one sentence: what the uncertainty map means for this method.
        reference: the paper.
        domains: transforms it supports (``None`` = all).
        default_transform: the domain the paper used, for menus.
        first_look: ``fn`` takes ``first_look(saliency)`` and calls it as soon as the final saliency map
            is known, before the uncertainty is (IG: after the zero-baseline path), so an interface can
            draw the map early.
        anytime: ``fn`` takes ``on_partial(saliency, done, total, convergence)`` and ``stop``
            (``"budget"`` | ``"auto"``) and publishes its estimate as it goes (sampling: per chunk of masks,
            mask optimisation: per step; see :mod:`earmark.explainers.anytime`).
    """

    name: str
    title: str
    fn: Callable[..., Attribution]
    params: tuple[Param, ...]
    family: Family
    uncertainty: str
    reference: str = ""
    domains: tuple[str, ...] | None = None
    default_transform: str | None = None
    first_look: bool = False
    anytime: bool = False

    @property
    def budget_unit(self) -> str:
        """What ``done`` / ``total`` count in ``on_partial``: ``"masks"`` (sampling) or ``"steps"``."""
        return "masks" if self.family == "sampling" else "steps"

    def supports(self, transform_name: str) -> bool:
        return self.domains is None or transform_name in self.domains
