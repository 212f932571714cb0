"""Fourier domain: the real FFT of the whole clip (complex, orthonormal); the image is K rows × 1 column."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Axes, Transform, edges_from_centres


class FourierTransform(Transform):
    """``torch.fft.rfft`` / ``irfft`` with ``norm="ortho"``. Coefficients (B, L//2+1) complex."""

    name = "fourier"
    title = "Fourier (rFFT bins)"
    is_complex = True

    def analyze(self, x: Tensor) -> Tensor:
        return torch.fft.rfft(x, norm="ortho")

    def synthesize(self, z: Tensor, length: int) -> Tensor:
        return torch.fft.irfft(z, n=length, norm="ortho")

    def map_shape(self, length: int) -> tuple[int, ...]:
        return (length // 2 + 1,)

    def to_image(self, v: Tensor, *, length: int) -> Tensor:
        return v.unsqueeze(-1)

    def from_image(self, img: Tensor, *, length: int) -> Tensor:
        return img.mean(-1)

    def axes(self, length: int) -> Axes:
        freqs = torch.fft.rfftfreq(length, d=1 / self.sample_rate).to(torch.float64)
        return Axes(
            freqs=freqs,
            times=torch.tensor([length / self.sample_rate / 2], dtype=torch.float64),
            freq_edges=edges_from_centres(freqs),
        )
