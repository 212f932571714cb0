"""Models in the Earmark contract, registered by name and loaded once per device.

Bundled: ``audionet-digits`` (the seeds' 1D CNN), ``melcnn-digits`` (log-mel CNN with a 128-d embedding),
and the synthetic ground-truth task models ``synth-freq`` and ``synth-tf`` (trained on demand, cached).
Any PyTorch classifier joins with :func:`from_module`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import Tensor

from ..device import model_device, pick_device
from ..errors import ModelError
from .base import EarmarkModel, ModelCard, ModuleModel, from_module, load_weights, save_weights
from .loaders import ENTRY_POINT, load_path, looks_like_path
from .registry import MODELS, ModelSpec, register_model


_CACHE: dict[tuple[str, str], EarmarkModel] = {}
_LOCK = threading.Lock()


def load_model(name_or_path: str | Path, device: str | torch.device | None = None, *,
               window: int | None = None, shared: bool = True) -> EarmarkModel:
    """A registered model by name, or a model on disk by path, once per (name or path, device); thread-safe.

    Paths are read by what they hold (see :mod:`earmark.models.loaders`): a Hugging Face folder, a SpeechBrain
    folder, a ``.pt2`` (torch.export), ``.pt`` (TorchScript) or ``.onnx`` file with its card, or an entry point
    ``package.module:function``. Each is validated by one forward pass on a test input.

    The cached module is shared by every caller, so it comes back frozen: eval mode, no parameter gradients,
    and changes that would reach everyone (training mode, gradients, moving, new weights, hooks) raise a
    ModelError. ``shared=False`` or ``model.private_copy()`` gives a module of your own.

    Args:
        name_or_path: a registered name (``earmark list models``), a path, or an entry point.
        device: ``cuda``, ``mps``, ``cpu`` (default: the best available, or ``$EARMARK_DEVICE``).
        window: input samples for a variable-length model (default: its maximum; a window of 10 s where it
            has none); the returned model shares the cached module.
        shared: ``False`` loads a fresh, unfrozen copy that is not cached.

    Raises:
        ConfigError: unknown name.  ModelError: weights missing or broken, a card that does not fit the model.
    """
    dev = pick_device(device)
    text = str(name_or_path)
    is_path = text not in MODELS and looks_like_path(text)
    if is_path and not ENTRY_POINT.match(text):
        try:
            text = str(Path(text).expanduser().resolve())
        except (OSError, RuntimeError):
            raise ModelError(f"The model path {text} is a symbolic-link loop; point it at a model file or "
                             "folder.") from None
    if not shared:
        model = load_path(text, dev) if is_path else MODELS.get(text).build(dev).to(dev).eval()
        return _windowed(model, window)
    key = (text, str(dev))
    with _LOCK:
        if key not in _CACHE:
            model = load_path(text, dev) if is_path else MODELS.get(text).build(dev).to(dev)
            _CACHE[key] = model.freeze()
        model = _CACHE[key]
    return _windowed(model, window)


def _windowed(model: EarmarkModel, window: int | None) -> EarmarkModel:
    if window is None or int(window) == model.card.num_samples:
        return model
    return Windowed(model, model.card.with_window(int(window)))


class Windowed(EarmarkModel):
    """The same (shared) model with another input window on its card: a variable-length model used at a
    window the user picked. Forward and ``embed`` are the inner model's."""

    def __init__(self, inner: EarmarkModel, card: ModelCard):
        super().__init__()
        self.inner = inner
        self.card = card
        self._frozen = inner.frozen

    def forward(self, wave: Tensor) -> Tensor:
        return self.inner(wave)

    def embed(self, wave: Tensor) -> Tensor:
        return self.inner.embed(wave)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:   # the inner model's own helpers (e.g. ``features`` of a Hugging Face model)
            inner = self.__dict__.get("_modules", {}).get("inner")
            if inner is None:
                raise
            return getattr(inner, name)


def clear_cache() -> None:
    """Forget every loaded model (tests; a server that wants to reread a folder)."""
    with _LOCK:
        _CACHE.clear()


def warm_up(model: EarmarkModel) -> EarmarkModel:
    """Make one batched forward and backward pass at the chunk sizes the explainers will use
    (:func:`earmark.probe.chunk_size`), so that the first explanation a person asks for does not also pay
    for the kernels' one-off set-up (~1 s for AudioNet here). It also
    builds one optimiser: the first ``torch.optim`` optimiser of a process imports ``torch._dynamo``
    (1.3 s here), which the mask methods' first step would otherwise pay for."""
    from ..probe import chunk_size

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    device = model_device(model)
    length = int(model.card.num_samples)
    if not getattr(model.card, "gradients", True):   # forward only (ONNX): no backward to warm up
        with torch.no_grad():
            model(torch.zeros(chunk_size(model, device, length, backward=False), length, device=device))
        return model
    chunk_size(model, device, length, backward=False)
    x = torch.zeros(chunk_size(model, device, length, backward=True), length, device=device, requires_grad=True)
    with torch.enable_grad():
        torch.autograd.grad(model(x).sum(), x)   # gradient to the input only, as the explainers take it
    return model


# Registration by import: each bundled model's module registers it; the synthetic task models are registered
# by their trainer (earmark.training.synthetic), which builds them on demand.
from . import audionet  # noqa: E402,F401,I001 (registration order = menu order)
from . import melcnn  # noqa: E402,F401
from . import ast_digits  # noqa: E402,F401
from . import scandigits  # noqa: E402,F401
from . import present  # noqa: E402,F401
from . import planted  # noqa: E402,F401
from ..training import synthetic as _synthetic  # noqa: E402,F401

__all__ = [
    "EarmarkModel", "ModelCard", "ModelSpec", "ModuleModel", "MODELS", "Windowed", "clear_cache", "from_module",
    "load_model",
    "load_weights", "register_model", "save_weights", "warm_up",
]
