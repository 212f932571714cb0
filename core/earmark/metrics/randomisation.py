"""Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

Layers are re-initialised one after another from the output down, on a deep copy of the model; after each
step the map is recomputed and compared with the original map by Spearman rank correlation. A method
that explains the *model* shows correlations that fall quickly; one that mostly reflects the input (an
edge detector) stays high. Step 0 is the intact model (correlation 1 by definition).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .spec import MetricSpec, register_metric


@dataclass(frozen=True)
class Randomisation:
    """Result of the cascade.

    Attributes:
        layers: names of the layers re-initialised, in order (top first).
        correlations: (len(layers) + 1,) Spearman correlation with the original map after each step;
            entry 0 is the intact model.
    """

    layers: tuple[str, ...]
    correlations: Tensor

    @property
    def final(self) -> float:
        """Correlation once every layer in the cascade is random (lower = more model-sensitive)."""
        return float(self.correlations[-1])


def parameter_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning parameters directly, in registration order (input side first)."""
    return [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


@torch.no_grad()
def reinitialise_(module: nn.Module, *, generator: torch.Generator) -> None:
    """Redraw a module's own parameters from PyTorch's default init, ``U(−1/√fan_in, 1/√fan_in)``.

    The fan-in comes from the module's first parameter with two or more axes (its weight); a module with
    only vectors (e.g. a norm layer) draws from ``U(−1, 1)``. ``generator`` makes it reproducible.
    """
    own = list(module.parameters(recurse=False))
    weight = next((p for p in own if p.ndim >= 2), None)
    bound = 1.0 / math.sqrt(weight[0].numel()) if weight is not None else 1.0
    for p in own:
        fresh = (torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        p.copy_(fresh.to(p))


def average_ranks(v: Tensor) -> Tensor:
    """(n,) → (n,) 1-based ranks, tied values sharing their average rank (as Spearman needs)."""
    _, inverse, counts = torch.unique(v.double(), sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two maps of the same shape (ties get average ranks); NaN if constant."""
    ra, rb = average_ranks(a.detach().flatten().cpu()), average_ranks(b.detach().flatten().cpu())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = ra.norm() * rb.norm()
    return float((ra * rb).sum() / denom) if float(denom) > 0 else float("nan")


def cascading_randomisation(model: nn.Module, explain_fn: Callable[[nn.Module], Tensor], original: Tensor, *,
                            generator: torch.Generator, absolute: bool = True,
                            max_layers: int | None = None) -> Randomisation:
    """Re-initialise layers from the top down on a copy of ``model`` and track the map's rank correlation.

    Args:
        model: the explained model (left untouched: a deep copy is randomised).
        explain_fn: ``explain_fn(model) -> (*M)`` map of the same clip, domain, method and seed.
        original: (*M) the map of the intact model.
        generator: CPU generator for the new weights.
        absolute: compare ``|map|`` (Adebayo et al.'s main setting); ``False`` compares signed maps.
        max_layers: stop after this many layers (``None``: all).

    Returns:
        :class:`Randomisation`.
    """
    copy_ = copy.deepcopy(model).eval()
    layers = parameter_layers(copy_)[::-1]
    if not layers:
        raise ConfigError("The model has no parameters to randomise; the randomisation check needs a trained network.")
    if max_layers is not None:
        layers = layers[:max(1, int(max_layers))]
    prep = (lambda t: t.abs()) if absolute else (lambda t: t)
    reference = prep(original)
    corrs = [spearman(reference, reference)]
    for _, layer in layers:
        reinitialise_(layer, generator=generator)
        corrs.append(spearman(reference, prep(explain_fn(copy_))))
    return Randomisation(tuple(name for name, _ in layers), torch.tensor(corrs, dtype=torch.float64))


register_metric(MetricSpec(
    "randomisation", "lower", "randomisation", lambda c: c.randomisation().final,
    "Spearman correlation with the map of the fully randomised model (cascading, top down).",
    requires=("reexplain",), default=False))
