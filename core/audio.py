"""Clips in, clips out: decode, check, mono, resample, pad/crop.  (Owned by the audio work; extend here.)"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

LengthPolicy = Literal["center", "start", "end"]


def fit_length(wave: Tensor, num_samples: int, *, policy: LengthPolicy = "center") -> Tensor:
    """Zero-pad or crop the last axis to exactly ``num_samples``.

    Args:
        wave: (..., L) waveform.
        num_samples: target length.
        policy: ``"center"`` pads both sides equally / crops the centre (the AudioMNIST protocol);
            ``"start"`` keeps the beginning (pads at the end); ``"end"`` keeps the end (pads at the start).

    Returns:
        (..., num_samples) waveform.
    """
    length = wave.shape[-1]
    if length == num_samples:
        return wave
    if length > num_samples:
        start = {"center": (length - num_samples) // 2, "start": 0, "end": length - num_samples}[policy]
        return wave[..., start:start + num_samples]
    missing = num_samples - length
    left = {"center": missing // 2, "start": 0, "end": missing}[policy]
    return torch.nn.functional.pad(wave, (left, missing - left))
