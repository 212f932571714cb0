"""The result every explainer returns."""

from __future__ import annotations

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

    def numpy(self) -> dict[str, np.ndarray]:
        """Every tensor as a NumPy array on the CPU (saliency, uncertainty and the extras)."""
        out = {"saliency": _np(self.saliency), "uncertainty": _np(self.uncertainty)}
        out.update({k: _np(v) for k, v in self.extras.items()})
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no arrays)."""
        return {
            "method": self.method, "transform": self.transform, "target": self.target,
            "params": self.params, "seed": self.seed, "uncertainty_meaning": self.uncertainty_meaning,
            "map_shape": list(self.saliency.shape), **self.meta,
        }

    def save(self, directory: str | Path, stem: str = "explanation") -> dict[str, Path]:
        """Write ``{stem}.npz`` (maps) and ``{stem}.json`` (summary) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        npz, js = directory / f"{stem}.npz", directory / f"{stem}.json"
        np.savez_compressed(npz, **self.numpy())
        js.write_text(json.dumps(self.summary(), indent=2, default=_jsonable))
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
