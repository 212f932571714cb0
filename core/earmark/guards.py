"""Guards that never let a broken map through.

* :func:`check_map`: every explanation's saliency and uncertainty must be finite (else :class:`MapError`),
  and a saliency that is zero everywhere is labelled (``meta["map_check"] = "all-zero"`` and a warning):
  the model's score for the class did not respond to anything the method changed.
* :func:`check_listenable`: listening refuses a map it cannot trust (non-finite or all zero).
* :func:`class_sensitivity`: how much a method's maps for two classes correlate; above
  :data:`INSENSITIVE` the map answers "what does any class need", not the question asked.
* :func:`probe_silence`: the load check's gradient probe on inputs with exact zeros and silence.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from .errors import MapError

#: Maps for two classes correlating above this are flagged as class-insensitive.
INSENSITIVE = 0.99


def _finite(t: Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def check_map(explanation):
    """Check an :class:`~earmark.explanation.Explanation`'s maps; return it, labelled when all zero.

    Raises:
        MapError: saliency or uncertainty holds NaN or inf (names the share of bad cells and the likely cause).
    """
    for name in ("saliency", "uncertainty"):
        t = getattr(explanation, name)
        if not _finite(t):
            share = float((~torch.isfinite(t)).float().mean())
            raise MapError(
                f"The {explanation.method} {name} map is not finite in {share:.0%} of its cells (NaN or inf), so it "
                "is not reported: the model's output or gradient is not finite on some inputs the method made "
                "(e.g. exact silence); try a method that does not take gradients, or another baseline.")
    if bool((explanation.saliency == 0).all()):
        warning = (f"The {explanation.method} saliency map is zero everywhere: the score of class "
                   f"{explanation.target} did not change with anything the method changed (a constant or saturated "
                   "output, or a zero gradient); it shows no evidence, and listening to it is refused.")
        meta = {**explanation.meta, "map_check": "all-zero",
                "warnings": list(explanation.meta.get("warnings", [])) + [warning]}
        return dataclasses.replace(explanation, meta=meta)
    return explanation


def map_problem(saliency: Tensor) -> str | None:
    """Why a map cannot be listened to (``None``: it can)."""
    if not _finite(saliency):
        return "The map holds NaN or inf values, so Earmark will not render audio from it; explain again."
    if bool((saliency == 0).all()):
        return ("The map is zero everywhere (no evidence), so keeping or removing its top cells would be arbitrary; "
                "Earmark will not render audio from it.")
    return None


def check_listenable(saliency: Tensor) -> None:
    """Raise :class:`MapError` for a map listening cannot trust."""
    problem = map_problem(saliency)
    if problem:
        raise MapError(problem)


def correlation(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two maps (1.0 when both are constant and equal, 0.0 when one is constant)."""
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    if den == 0.0:
        return 1.0 if bool(torch.equal(a, b)) else 0.0
    return float((a * b).sum()) / den


def contrast_class(probs: Tensor, target: int) -> int | None:
    """The class to compare ``target`` with: the most probable other class. On a model with many ordered
    classes (more than 12: pitch bins, notes) the target's immediate neighbours are skipped, since their
    maps agree by construction. ``None`` for a one-class model."""
    p = probs.detach().reshape(-1).clone().float()
    if p.numel() < 2:
        return None
    p[target] = -float("inf")
    if p.numel() > 12:
        for j in (target - 1, target + 1):
            if 0 <= j < p.numel():
                p[j] = -float("inf")
    best = int(p.argmax())
    return None if p[best] == -float("inf") else best


def class_sensitivity(map_target: Tensor, map_other: Tensor, other: int) -> dict[str, Any]:
    """The ``class_sensitivity`` entry of an explanation's meta: the correlation of the maps for the target
    and for class ``other``, and a warning when above :data:`INSENSITIVE`."""
    r = correlation(map_target, map_other)
    out: dict[str, Any] = {"contrast_class": int(other), "correlation": r, "insensitive": r > INSENSITIVE}
    if r > INSENSITIVE:
        out["warning"] = (f"The map hardly depends on the class asked: its map for class {other} correlates at "
                          f"{r:.4f} with this one, so it shows what any class needs (e.g. the loud parts), not what "
                          "this class needs; compare with a gradient method or a contrastive readout.")
    return out


def with_sensitivity(explanation, entry: dict[str, Any]):
    """The explanation with ``meta["class_sensitivity"]`` (and its warning) added."""
    meta = {**explanation.meta, "class_sensitivity": {k: v for k, v in entry.items() if k != "warning"}}
    if "warning" in entry:
        meta["warnings"] = list(meta.get("warnings", [])) + [entry["warning"]]
    return dataclasses.replace(explanation, meta=meta)


def probe_silence(model, num_samples: int) -> str | None:
    """Gradients of the model on a clip that is half exact zeros and on full silence.

    Returns:
        ``None`` when they are finite, else a sentence for the card's notes.
    """
    device = model.device
    gen = torch.Generator().manual_seed(1)
    half = 0.1 * torch.randn(1, num_samples, generator=gen)
    half[:, : num_samples // 2] = 0.0
    x = torch.cat([half, torch.zeros(1, num_samples)]).to(device).requires_grad_(True)
    try:
        with torch.enable_grad():
            out = model(x)
            if not out.requires_grad:
                return None
            (g,) = torch.autograd.grad(out[:, 0].sum(), x, allow_unused=True)
    except RuntimeError:
        return None
    if not _finite(out.detach()):
        return ("The model's output is not finite on exact silence; explanations that silence parts of the clip "
                "may be refused.")
    if g is not None and not _finite(g):
        return ("The model's gradient is not finite on exact zeros or silence (NaN/inf), so gradient and "
                "mask-optimisation maps may be refused; Earmark checks every map.")
    return None


__all__ = ["INSENSITIVE", "MapError", "check_listenable", "check_map", "class_sensitivity", "contrast_class",
           "correlation", "map_problem", "probe_silence", "with_sensitivity"]
