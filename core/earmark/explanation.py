"""The result every explainer returns."""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: IG's completeness gap is flagged when |Σ IG − (f(x) − f(x0))| exceeds this share of |f(x) − f(x0)|.
COMPLETENESS_WARN = 0.10

@dataclass(frozen=True)
class Explanation:
    """A saliency map and its uncertainty, in the transform's map space, kept on the device.

    Attributes:
        saliency: (*M) real importance of every map cell (larger = more important for ``target``).
        uncertainty: (*M) non-negative; its meaning is ``uncertainty_meaning``.
        target: the explained class index.
        method: explainer name.  transform: transform name.
        uncertainty_meaning: one sentence saying what ``uncertainty`` measures.
        params: the explainer's hyperparameters as used.  seed: the seed of the generator.
        extras: method-specific tensors (e.g. ``loss_curve``, ``per_scale``, ``sparsity_score``).
        meta: timings, counts of model passes, prediction, transform settings.
    """

    saliency: Tensor
    uncertainty: Tensor
    target: int
    method: str
    transform: str
    uncertainty_meaning: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def cpu(self) -> "Explanation":
        """The same explanation with every tensor detached and on the CPU (for caches shared by sessions)."""
        return dataclasses.replace(
            self, saliency=self.saliency.detach().cpu(), uncertainty=self.uncertainty.detach().cpu(),
            extras={k: v.detach().cpu() if isinstance(v, Tensor) else v for k, v in self.extras.items()})

    def numpy(self) -> dict[str, np.ndarray]:
        """Every tensor as a NumPy array on the CPU (saliency, uncertainty and the extras)."""
        out = {"saliency": _np(self.saliency), "uncertainty": _np(self.uncertainty)}
        out.update({k: _np(v) for k, v in self.extras.items()})
        return out

    def arrays(self, axes=None) -> dict[str, np.ndarray]:
        """:meth:`numpy` plus the display grid's axes when given (``axes_freqs`` (F,) Hz, ``axes_times``
        (T,) s, ``axes_freq_edges`` (F + 1,) Hz, ``axes_row_labels`` (F,) for wavelet levels).

        Args:
            axes: an :class:`earmark.transforms.Axes` (``transform.axes(length)``), or ``None``.
        """
        out = self.numpy()
        if axes is not None:
            out.update(axes_freqs=_np(axes.freqs), axes_times=_np(axes.times), axes_freq_edges=_np(axes.freq_edges))
            if axes.row_labels:
                out["axes_row_labels"] = np.asarray(list(axes.row_labels))
        return out

    def to_npz(self, file: str | Path | io.IOBase, *, axes=None) -> None:
        """Write :meth:`arrays` (maps, extras, axes) as a compressed NPZ to a path or a binary file."""
        np.savez_compressed(file, **self.arrays(axes))

    def npz_bytes(self, *, axes=None) -> bytes:
        """:meth:`to_npz` into memory (downloads)."""
        buf = io.BytesIO()
        self.to_npz(buf, axes=axes)
        return buf.getvalue()

    def completeness(self) -> dict[str, Any] | None:
        """IG's completeness check for the map's (zero) baseline, or ``None`` for methods without one.

        See :func:`completeness`.
        """
        if "completeness_gap" not in self.extras or "output_change" not in self.extras:
            return None
        return completeness(self.extras["completeness_gap"][0], self.extras["output_change"][0])

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no arrays); ``completeness`` and ``warnings`` at the top level."""
        out = {
            "method": self.method, "transform": self.transform, "target": self.target,
            "params": self.params, "seed": self.seed, "uncertainty_meaning": self.uncertainty_meaning,
            "map_shape": list(self.saliency.shape), **self.meta,
        }
        if "final_score" in self.extras and "final_sparsity" in self.extras:      # minimal mask
            size = 1.0 - self.extras["final_sparsity"]
            out["final_mask"] = {"size": float(size.mean()), "score": float(self.extras["final_score"].mean()),
                                 "size_per_restart": size.tolist(),
                                 "score_per_restart": self.extras["final_score"].tolist(),
                                 **({"clean_score": float(self.extras["clean_score"])}
                                    if "clean_score" in self.extras else {})}
        if "stability_top10" in self.extras:       # split-half agreement of a sampling run
            out["stability"] = {"spearman": float(self.extras["stability_spearman"]),
                                "top10_overlap": float(self.extras["stability_top10"])}
        check = self.completeness()
        if check is not None:
            out["completeness"] = check
            out["warnings"] = list(out.get("warnings", [])) + ([check["warning"]] if check["warning"] else [])
        return out

    def to_dict(self, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`summary` with ``provenance`` (clip, model, labels, command... see
        :func:`earmark.command.provenance`) merged in, every value JSON-ready."""
        out = {**self.summary(), **(provenance or {})}
        return json.loads(json.dumps(out, default=_jsonable))

    def to_json(self, provenance: dict[str, Any] | None = None) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(provenance), indent=2)

    def save(self, directory: str | Path, stem: str = "explanation", *, axes=None,
             provenance: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write ``{stem}.npz`` (maps, extras, axes) and ``{stem}.json`` (summary + provenance) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        npz, js = directory / f"{stem}.npz", directory / f"{stem}.json"
        self.to_npz(npz, axes=axes)
        js.write_text(self.to_json(provenance))
        return {"npz": npz, "json": js}


def completeness(gap: Tensor | float, change: Tensor | float, *, threshold: float = COMPLETENESS_WARN
                 ) -> dict[str, Any]:
    """How far an IG map's total is from the output change it should add up to.

    Args:
        gap: ``Σ IG − (f(x) − f(x0))`` in logits.
        change: ``f(x) − f(x0)`` in logits.
        threshold: warn when ``|gap| > threshold · |change|``.

    Returns:
        ``{"gap", "output_change", "relative_gap", "threshold", "ok", "warning"}``; ``relative_gap`` is
        ``|gap| / |change|`` (``None`` when the change is 0 and the gap is not), ``warning`` one sentence
        or ``None``.

    Example:
        >>> completeness(-0.05, 2.0)["ok"], completeness(-2.0, 3.2)["ok"]
        (True, False)
    """
    gap, change = float(gap), float(change)
    if abs(change) > 0:
        relative = abs(gap) / abs(change)
    else:
        relative = 0.0 if gap == 0 else None
    ok = relative is not None and relative <= threshold
    share = f"{relative:.0%} of" if relative is not None else "against"
    warning = None if ok else (
        f"IG's completeness gap is {gap:+.3g} logits, {share} f(x) - f(baseline) = {change:+.3g}: "
        "the map does not add up to the output change (too few path steps, or a model whose output jumps "
        "along the path, e.g. one that normalises the input level); read it with care or raise n_steps."
    )
    return {"gap": gap, "output_change": change, "relative_gap": relative, "threshold": threshold, "ok": ok,
            "warning": warning}


def _np(t: Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, (Tensor, np.ndarray)):
        return _np(obj).tolist()
    if isinstance(obj, torch.device):
        return str(obj)
    return str(obj)
