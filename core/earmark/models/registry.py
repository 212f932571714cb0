"""The model registry: a name → :class:`ModelSpec` table that the bundled models and the synthetic task models
add themselves to when their module is imported (:mod:`earmark.models` imports them all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..params import Registry
from .base import EarmarkModel


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``build(device)`` returns a ready :class:`EarmarkModel` in eval mode."""

    name: str
    title: str
    build: Callable[[torch.device], EarmarkModel]
    kind: str = "bundled"  # "bundled" or "synthetic"


MODELS = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.register(spec.name, spec)


__all__ = ["MODELS", "ModelSpec", "register_model"]
