"""What every part of the services shares: the settings of one explanation and small conversions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

ProgressFn = Callable[[float, str], None]


def to_numpy(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().float().cpu().numpy()
    return np.asarray(v)


def as_items(params: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-independent key for a parameter dict."""
    return tuple(sorted((params or {}).items()))


@dataclass(frozen=True)
class Settings:
    """Everything that determines an explanation (the cache key)."""

    clip_hash: str
    clip_name: str
    model: str
    transform: str
    tparams: tuple
    explainer: str
    eparams: tuple
    target: int | None
    seed: int
    contrast: int | None = None     # a second class B: explain "target rather than B" (None = off)

    @property
    def key(self) -> tuple:
        return (self.clip_hash, self.model, self.transform, self.tparams, self.explainer, self.eparams,
                self.target, self.seed, self.contrast)


__all__ = ["ProgressFn", "Settings", "as_items", "to_numpy"]
