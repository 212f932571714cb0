"""Transforms registered by name: ``time``, ``fourier``, ``stft``, ``mel``, ``dwt``."""

from __future__ import annotations

from typing import Any

from ..params import Registry, resolve
from ..validate import check_rate
from .base import Axes, Transform
from .dwt import DWTTransform
from .fourier import FourierTransform
from .mel import MelTransform
from .stft import STFTTransform
from .time import TimeTransform

TRANSFORMS = Registry("transform")
for _cls in (TimeTransform, FourierTransform, STFTTransform, MelTransform, DWTTransform):
    TRANSFORMS.register(_cls.name, _cls)


def get_transform(name: str, sample_rate: int, **params: Any) -> Transform:
    """Build a transform by name with validated parameters.

    Example:
        >>> t = get_transform("stft", 8000, n_fft=256, hop=64)
        >>> import torch; x = torch.randn(2, 8000)
        >>> float((t.synthesize(t.analyze(x), 8000) - x).abs().max()) < 1e-5
        True
    """
    cls = TRANSFORMS.get(name)
    sample_rate = check_rate(sample_rate, f"sample rate of the '{name}' transform")
    return cls(sample_rate, **resolve(cls.params, params, owner=f"Transform '{name}'"))


__all__ = ["Axes", "Transform", "TRANSFORMS", "get_transform", "DWTTransform", "FourierTransform",
           "MelTransform", "STFTTransform", "TimeTransform"]
