"""Time domain: the identity transform; the image is one row of L samples."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Axes, Transform


class TimeTransform(Transform):
    """Identity. Coefficients (B, L); image (B, 1, L)."""

    name = "time"
    title = "Time (waveform samples)"

    def analyze(self, x: Tensor) -> Tensor:
        return x

    def synthesize(self, z: Tensor, length: int) -> Tensor:
        return z[..., :length]

    def map_shape(self, length: int) -> tuple[int, ...]:
        return (length,)

    def to_image(self, v: Tensor, *, length: int) -> Tensor:
        return v.unsqueeze(-2)

    def from_image(self, img: Tensor, *, length: int) -> Tensor:
        return img.mean(-2)

    def axes(self, length: int) -> Axes:
        nyq = self.sample_rate / 2
        return Axes(
            freqs=torch.tensor([nyq / 2], dtype=torch.float64),
            times=torch.arange(length, dtype=torch.float64) / self.sample_rate,
            freq_edges=torch.tensor([0.0, nyq], dtype=torch.float64),
            row_labels=("all frequencies",),
        )

    def power_image(self, x: Tensor) -> Tensor:
        return (x**2).unsqueeze(-2)
