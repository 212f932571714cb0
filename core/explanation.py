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

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no arrays)."""
        return {
            "method": self.method, "transform": self.transform, "target": self.target,
            "params": self.params, "seed": self.seed, "uncertainty_meaning": self.uncertainty_meaning,
            "map_shape": list(self.saliency.shape), **self.meta,
        }

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
