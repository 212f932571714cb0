"""Finite in, finite out: the one place amplitudes and finished maps are checked.

* :func:`check_amplitude`: a waveform whose peak is above :data:`MAX_AMPLITUDE` (1e4; audio is in [-1, 1])
  is refused with a sentence: squared in a power spectrum it overflows float32 long before it means
  anything. NaN and Inf samples are refused by the decoders and :func:`earmark.validate.check_wave`.
* :func:`check_finite`: an :class:`~earmark.explanation.Explanation` whose saliency or uncertainty holds NaN
  or Inf is an error (:class:`~earmark.errors.NumericalError`), never a result; :func:`earmark.explain`
  calls it on every explanation it returns.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor

from .errors import EarmarkError, MapError

#: The largest absolute sample value accepted (audio lives in [-1, 1]; 1e4 is 80 dB above full scale).
MAX_AMPLITUDE = 1e4

E = TypeVar("E")


def check_amplitude(wave: Tensor, what: str, error: type[EarmarkError]) -> None:
    """Refuse a (finite) waveform whose peak is above :data:`MAX_AMPLITUDE`.

    Raises:
        error: one sentence with the peak and what to do.
    """
    if wave.numel() == 0:
        return
    peak = float(wave.detach().abs().max())
    if peak > MAX_AMPLITUDE:
        raise error(f"{what} peaks at {peak:.3g}, far outside audio's [-1, 1] (the limit is {MAX_AMPLITUDE:g}); "
                    "normalise it (divide by its peak) before explaining it.")


def check_finite(explanation: E) -> E:
    """Return ``explanation`` if its saliency and uncertainty are finite.

    Raises:
        NumericalError: one sentence naming the method, the domain and how many cells are not finite.
    """
    for label in ("saliency", "uncertainty"):
        value = getattr(explanation, label, None)
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise MapError(
                f"The {label} map of {getattr(explanation, 'method', '?')} in the "
                f"{getattr(explanation, 'transform', '?')} domain has {bad:,} of {value.numel():,} cells that are "
                "not finite (NaN or Inf), so it is not reported; check the clip's level and the model's outputs, "
                "or try fewer steps or another domain.")
    return explanation


__all__ = ["MAX_AMPLITUDE", "check_amplitude", "check_finite"]
