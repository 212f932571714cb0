"""Pick the compute device once (cuda, mps, cpu); ``EARMARK_DEVICE`` or an argument forces it."""

from __future__ import annotations

import os

import torch

from .errors import ConfigError

_KNOWN = ("cuda", "mps", "cpu")


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Args:
        prefer: ``"cuda"``, ``"mps"``, ``"cpu"``, a ``torch.device``, or ``None`` / ``"auto"`` to use
            ``$EARMARK_DEVICE`` if set, else the best available one.

    Raises:
        ConfigError: the device asked for is unknown or not available here.
    """
    if isinstance(prefer, torch.device):
        return prefer
    choice = (prefer or os.environ.get("EARMARK_DEVICE") or "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = choice.split(":")[0]
    if kind not in _KNOWN:
        raise ConfigError(f"Unknown device '{choice}'. Use one of: auto, {', '.join(_KNOWN)}.")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("A CUDA device was asked for but none is available; use --device cpu.")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("An MPS device was asked for but none is available; use --device cpu.")
    return torch.device(choice)


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (0 when ``None``)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(0 if seed is None else int(seed))
    return gen


def model_device(model) -> torch.device:
    """Where ``model`` computes: its ``device`` (an :class:`~earmark.models.EarmarkModel`), else its first
    parameter's device; the CPU for a model without parameters."""
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
