"""STFT domain: ``torch.stft`` / ``torch.istft`` with a centred window; image = the coefficients."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ..params import Param
from .base import Axes, Transform, edges_from_centres, frame_times

Window = Literal["hann", "hamming", "blackman"]
WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}

STFT_PARAMS = (
    Param("n_fft", 256, "FFT size in samples (256 = 32 ms at 8 kHz)", choices=(64, 128, 256, 512, 1024, 2048)),
    Param("hop", 64, "hop between frames in samples; at most n_fft/2", low=8, high=1024, step=8),
    Param("window", "hann", "analysis window", choices=tuple(WINDOWS)),
)


class STFTTransform(Transform):
    """Short-time Fourier transform. Coefficients (B, n_fft//2+1, frames) complex.

    Args:
        sample_rate: Hz.
        n_fft: FFT size.  hop: hop size (≤ n_fft/2 so the inverse is exact).  window: window name.
    """

    name = "stft"
    title = "STFT (spectrogram)"
    params = STFT_PARAMS
    is_complex = True

    def __init__(self, sample_rate: int, n_fft: int = 256, hop: int = 64, window: Window = "hann"):
        super().__init__(sample_rate, n_fft=n_fft, hop=hop, window=window)
        if hop > n_fft // 2:
            raise ConfigError(f"STFT hop ({hop}) must be at most n_fft/2 ({n_fft // 2}) for an exact inverse.")
        self.n_fft, self.hop, self.window = int(n_fft), int(hop), window

    def _window(self, ref: Tensor) -> Tensor:
        dtype = ref.real.dtype if ref.is_complex() else ref.dtype
        return WINDOWS[self.window](self.n_fft, dtype=dtype, device=ref.device)

    def analyze(self, x: Tensor) -> Tensor:
        return torch.stft(x, self.n_fft, self.hop, window=self._window(x), center=True, return_complex=True)

    def synthesize(self, z: Tensor, length: int) -> Tensor:
        return torch.istft(z, self.n_fft, self.hop, window=self._window(z), center=True, length=length)

    def map_shape(self, length: int) -> tuple[int, ...]:
        return (self.n_fft // 2 + 1, length // self.hop + 1)

    def to_image(self, v: Tensor, *, length: int) -> Tensor:
        return v

    def from_image(self, img: Tensor, *, length: int) -> Tensor:
        return img

    def axes(self, length: int) -> Axes:
        freqs = torch.fft.rfftfreq(self.n_fft, d=1 / self.sample_rate).to(torch.float64)
        return Axes(
            freqs=freqs,
            times=frame_times(length // self.hop + 1, self.hop, self.sample_rate),
            freq_edges=edges_from_centres(freqs),
        )
