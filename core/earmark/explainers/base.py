"""What every explainer declares and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Callable, Literal, Mapping

import torch
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


PlotKind = Literal["line", "xy", "bars"]


@dataclass(frozen=True)
class PlotSpec:
    """How an interface draws one of a method's ``extras`` (declared by the method, drawn by any page).

    Attributes:
        key: the extra's name.  title: the chart's title.
        kind: ``"line"``: a (K,) or (K, R) curve over its index (R lines, e.g. one per restart);
            ``"xy"``: a (K, 2) or (K, R, 2) array of (x, y) points joined in order;
            ``"bars"``: one bar per element of a (K,) array.
        xlabel, ylabel: axis titles.
        x_names: ``"rows"`` labels the elements with the transform's display rows (wavelet level
            names); a tuple names them in order (the first ``K``); ``None`` numbers them.
        points: for ``"xy"``: the names of two (R,) extras drawn as end points (x, y), e.g. final masks.
    """

    key: str
    kind: PlotKind
    title: str
    xlabel: str
    ylabel: str
    x_names: Literal["rows"] | tuple[str, ...] | None = None
    points: tuple[str, str] | None = None


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
        plots: charts of the method's extras (:class:`PlotSpec`).
        colour_reference: the value a non-negative map is shown relative to: ``"zero"``, ``"mean"``
            (positive Monte-Carlo maps whose cells all sit near the mean score) or ``"baseline"``.
        baseline_extra: the scalar extra holding the mean score of random masks (``reference="baseline"``).
        auto_values: ``auto_values(transform_name) -> {param: value}``: the values that a negative
            ("auto") setting stands for in that domain, for menus such as "auto (paper: 2)".
        anytime: ``fn`` takes ``on_partial(saliency, done, total, convergence)`` and ``stop``
            (``"budget"`` | ``"auto"``) and publishes its estimate as it goes (sampling: per chunk of masks,
            mask optimisation: per step; see :mod:`earmark.explainers.anytime`).
        contrastive: the method reads the class score only through the probe's scalar readouts, so
            ``explain(..., contrast=B)`` explains "target rather than B" (the difference of the two scores).
        budget: the declared parameters that set the method's cost: a refused job names them, ``earmark
            bench --quick`` cuts the integer ones to a few items.
        passes: ``passes(params) -> int``: the model passes (forward + backward items) of a run with those
            (resolved) parameters — exact for fixed budgets, an upper bound for methods that may stop early;
            ``None`` = the product of the integer ``budget`` parameters (see :meth:`cost`).
        units: ``(parameter, unit)``: the parameter that counts the work a person watches and what it counts
            (``("n_masks", "masks")``), or ``None``.
        model_check: ``model_check(model) -> str | None``: why this method cannot run on that model (a
            sentence's predicate, e.g. Grad-CAM on a model without a convolution over a spectrogram), or
            ``None``; the menus list the method only where it is ``None``.
        app_defaults: ``(parameter, value)`` pairs the app starts at instead of the paper's default (the paper's
            value stays one click away); ``earmark evaluate`` and the CLI keep the papers' values.
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
    plots: tuple[PlotSpec, ...] = ()
    colour_reference: Literal["zero", "mean", "baseline"] = "zero"
    baseline_extra: str | None = None
    auto_values: Callable[[str], dict[str, Any]] | None = None
    anytime: bool = False
    contrastive: bool = False
    budget: tuple[str, ...] = ()
    passes: Callable[[Mapping[str, Any]], int] | None = None
    units: tuple[str, str] | None = None
    app_defaults: tuple[tuple[str, Any], ...] = ()
    model_check: Callable[[Any], str | None] | None = None

    def _filled(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**{p.name: p.default for p in self.params}, **dict(params)}

    def cost(self, params: Mapping[str, Any]) -> int:
        """Model passes (forward + backward items) of a run with ``params`` (missing ones: declared defaults)."""
        p = self._filled(params)
        if self.passes is not None:
            return int(self.passes(p))
        budget = [int(v) for k, v in sorted(p.items()) if k in self.budget and isinstance(v, int)]
        return int(math.prod(budget)) if budget else 1

    def work_units(self, params: Mapping[str, Any]) -> tuple[int, str] | None:
        """``(total, unit)`` of a run's work for a person (``(3000, "masks")``), or ``None``."""
        if self.units is None:
            return None
        name, unit = self.units
        return int(self._filled(params)[name]), unit

    def start_value(self, name: str, default: Any) -> Any:
        """The value the app starts the parameter ``name`` at: :attr:`app_defaults`, else ``default``."""
        return dict(self.app_defaults).get(name, default)

    @property
    def budget_unit(self) -> str:
        """What ``done`` / ``total`` count in ``on_partial``: ``"masks"`` (sampling) or ``"steps"``."""
        return "masks" if self.family == "sampling" else "steps"

    def supports(self, transform_name: str) -> bool:
        return self.domains is None or transform_name in self.domains

    @property
    def needs_gradients(self) -> bool:
        """Gradient methods and mask optimisation back-propagate to the coefficients; sampling methods and
        the reference only run the model forward."""
        return self.family in ("gradient", "optimisation")

    def unavailable(self, card, model=None) -> str | None:
        """Why this explainer cannot run on the model with ``card`` (one sentence), or ``None`` if it can;
        given the ``model`` too, its :attr:`model_check` is asked as well."""
        why = missing_capability(card) if self.needs_gradients else None
        if why is None and model is not None and self.model_check is not None:
            why = self.model_check(model)
        return f"{self.title} {why}" if why else None


def missing_capability(card) -> str | None:
    """What a model with ``card`` lacks for gradient and mask-optimisation methods (a sentence's predicate)."""
    caps = getattr(card, "capabilities", {}) or {}
    if caps.get("gradients", True):
        return None
    fmt = {"onnx": "ONNX"}.get(getattr(card, "format", ""), getattr(card, "format", "this"))
    return (f"needs gradients through the model, and this {fmt} model gives none; use a sampling explainer "
            "(FreqRISE, RELAX) or the energy reference, or load the model as TorchScript, torch.export or a "
            "Hugging Face folder.")



def draw_variance(draws: Tensor, *, correction: int = 1) -> Tensor:
    """Per-cell variance over the leading axis of ``draws`` (n, *M): ``Σ (x − mean)² / (n − correction)``.

    The same value as ``draws.var(0, correction=...)`` to float round-off, in a tenth of its time on this
    project's CPU (torch's reduction over the leading axis of a wide array is strided: 3.4 ms against
    0.23 ms for 25 DWT maps of 16,011 cells). 0 where ``n ≤ correction``.
    """
    n = draws.shape[0]
    if n <= correction:
        return torch.zeros_like(draws[0])
    return (draws - draws.mean(0)).square().sum(0) / (n - correction)


def draw_std(draws: Tensor, *, correction: int = 1) -> Tensor:
    """``sqrt`` of :func:`draw_variance`."""
    return draw_variance(draws, correction=correction).sqrt()
