"""Models in the Earmark contract, registered by name and loaded once per device.

Bundled: ``audionet-digits`` (the seeds' 1D CNN), ``melcnn-digits`` (log-mel CNN with a 128-d embedding),
and the synthetic ground-truth task models ``synth-freq`` and ``synth-tf`` (trained on demand, cached).
Any PyTorch classifier joins with :func:`from_module`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import torch

from ..device import pick_device
from ..params import Registry
from .base import EarmarkModel, ModelCard, ModuleModel, from_module, load_weights, save_weights


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``build(device)`` returns a ready :class:`EarmarkModel` in eval mode."""

    name: str
    title: str
    build: Callable[[torch.device], EarmarkModel]
    kind: str = "bundled"  # "bundled" or "synthetic"


MODELS = Registry("model")
_CACHE: dict[tuple[str, str], EarmarkModel] = {}
_LOCK = threading.Lock()


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.register(spec.name, spec)


def load_model(name: str, device: str | torch.device | None = None) -> EarmarkModel:
    """Load a registered model once per (name, device); thread-safe.

    Raises:
        ConfigError: unknown name.  ModelError: weights missing or broken.
    """
    spec = MODELS.get(name)
    dev = pick_device(device)
    key = (name, str(dev))
    with _LOCK:
        if key not in _CACHE:
            model = spec.build(dev).to(dev).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            _CACHE[key] = model
        return _CACHE[key]


def warm_up(model: EarmarkModel) -> EarmarkModel:
    """Measure the model's best chunk sizes here (:func:`earmark.probe.chunk_size`, cached) and make one
    batched forward and backward pass at that size, so that the first explanation a person asks for does
    not also pay for the measurement and the kernels' one-off set-up (~1 s for AudioNet here)."""
    from ..probe import chunk_size

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    length = int(model.card.num_samples)
    chunk_size(model, device, length, backward=False)
    x = torch.zeros(chunk_size(model, device, length, backward=True), length, device=device, requires_grad=True)
    with torch.enable_grad():
        torch.autograd.grad(model(x).sum(), x)   # gradient to the input only, as the explainers take it
    return model


def _register_bundled() -> None:
    import importlib

    for name in ("audionet", "melcnn", "synthetic"):  # each module registers its models
        importlib.import_module(f".{name}", __name__)


_register_bundled()

__all__ = [
    "EarmarkModel", "ModelCard", "ModelSpec", "ModuleModel", "MODELS", "from_module", "load_model",
    "load_weights", "register_model", "save_weights", "warm_up",
]
