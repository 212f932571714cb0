"""Checks shared by every public entry point (API, CLI, app): target, seed, waveform, rate, output folder.

Each check returns the cleaned value or raises a :class:`~earmark.errors.ConfigError` whose message is
one sentence for a person: what was wrong and what to give instead.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError
from .finite import check_amplitude

#: Seeds accepted everywhere (torch.Generator.manual_seed takes more, but a signed 64-bit value is what
#: every place that stores or prints a seed can hold).
SEED_LIMIT = 2**63


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _whole(value: Any) -> int | None:
    """``value`` as an int if it is an integer (Python, NumPy or a 0-d integer tensor), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and not value.is_complex() and value.dtype != torch.bool:
        return int(value.item())
    if isinstance(value, numbers.Integral):
        return int(value)
    return None


def check_target(target: Any, num_classes: int | None = None) -> int | None:
    """A class index (``None`` = the predicted class); whole numbers only, in ``[0, num_classes)``."""
    if target is None:
        return None
    index = _whole(target)
    if index is None:
        raise ConfigError(f"The target must be a class index (a whole number such as 3); got {_show(target)}.")
    if num_classes is not None and not 0 <= index < num_classes:
        raise ConfigError(f"Target class {index} does not exist; the model has {num_classes} classes "
                          f"(0 to {num_classes - 1}).")
    return index


def check_seed(seed: Any) -> int | None:
    """A seed for the random generator: a whole number with 0 ≤ seed < 2**63 (``None`` = 0)."""
    if seed is None:
        return None
    value = _whole(seed)
    if value is None or not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"The seed must be a whole number from 0 to 2**63 - 1; got {_show(seed)}.")
    return value


def check_rate(rate: Any, what: str = "sample rate") -> int:
    """``rate`` as a positive whole number of Hz (integral floats such as 16000.0 are accepted)."""
    if isinstance(rate, bool) or not isinstance(rate, (numbers.Real, np.number)):
        raise ConfigError(f"The {what} must be a positive whole number of Hz; got {_show(rate)}.")
    as_float = float(rate)
    if not math.isfinite(as_float) or as_float != int(as_float) or as_float <= 0:
        raise ConfigError(f"The {what} must be a positive whole number of Hz; got {_show(rate)}.")
    return int(as_float)


def check_count(value: Any, what: str, *, low: int = 1) -> int:
    """A whole number ≥ ``low`` (a number of clips, samples, steps...)."""
    n = _whole(value)
    if n is None or n < low:
        raise ConfigError(f"{what} must be a whole number of at least {low}; got {_show(value)}.")
    return n


def check_wave(x: Any, model=None, transform=None) -> Tensor:
    """One waveform (L,) or (1, L) of finite real samples that fits ``model`` and ``transform``.

    Checks the shape, the values, the length against ``model.card.num_samples`` and the transform's rate
    against the model's, so a wrong input fails here with a sentence, not deep inside a layer.

    Returns:
        (L,) float32 tensor (on ``x``'s device).
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError):
            raise ConfigError(f"The waveform must be a tensor or array of samples; got {type(x).__name__}.") from None
    if x.is_complex() or x.dtype == torch.bool:
        raise ConfigError(f"The waveform must hold real samples; got dtype {x.dtype}.")
    if x.dim() == 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 1:
        raise ConfigError(f"explain takes one waveform of shape (L,) or (1, L); got shape {tuple(x.shape)}. "
                          "Mix to mono and explain one clip at a time.")
    x = x.to(torch.float32)
    card = getattr(model, "card", None)
    if card is not None:
        rate, length = int(card.sample_rate), int(card.num_samples)
        longest = getattr(card, "max_samples", None)
        if getattr(card, "variable_length", False):
            if longest is not None and x.shape[0] > int(longest):
                raise ConfigError(
                    f"The waveform has {x.shape[0]} samples; the model '{card.name}' takes at most {int(longest)} "
                    f"({int(longest) / rate:g} s at {rate} Hz). Crop it with earmark.audio.prepare(...)."
                )
        elif x.shape[0] != length:
            raise ConfigError(
                f"The waveform has {x.shape[0]} samples; the model '{card.name}' takes {length} "
                f"({length / rate:g} s at {rate} Hz). Fit the clip first with "
                "earmark.audio.prepare(clip, sample_rate=..., num_samples=...)."
            )
        if transform is not None and int(transform.sample_rate) != rate:
            raise ConfigError(
                f"The transform is set for {transform.sample_rate} Hz but the model runs at {rate} Hz. "
                f"Build it with get_transform('{transform.name}', {rate}, ...)."
            )
    elif x.shape[0] == 0:
        raise ConfigError("The waveform is empty (0 samples).")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError("The waveform contains NaN or infinite samples; it cannot be explained.")
    check_amplitude(x, "The waveform", ConfigError)
    return x


def check_out_dir(path: Any, flag: str = "--out") -> Path:
    """Make sure the output folder ``path`` can be created and written to, before any work starts.

    The check leaves nothing behind: folders it had to create for the trial write are removed again, so a
    command that fails later (a model that does not load, a bad clip) has made no folder. The writers
    create the folder when they write.

    Raises:
        ConfigError: ``path`` is a file, lies under a file, or cannot be created or written to.
    """
    out = Path(os.fspath(path))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} '{out}' is a file, not a folder. Give a folder name (it is created if missing).")
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        parent = next((p for p in out.parents if p.exists() and not p.is_dir()), out.parent)
        raise ConfigError(f"{flag} '{out}' lies under '{parent}', which is a file. Give a folder path.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot create the folder {flag} '{out}' ({exc.strerror or exc}). "
                          "Choose a folder you can write to.") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"Cannot write into {flag} '{out}' ({exc.strerror or exc}). "
                          "Choose a folder you can write to.") from None
    finally:
        for folder in missing:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    return out
