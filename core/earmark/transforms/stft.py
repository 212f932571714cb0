"""STFT domain: ``torch.stft`` / ``torch.istft`` with a centred window; image = the coefficients."""

from __future__ import annotations

import functools
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
        window = self._window(z)
        if self.n_fft % self.hop:
            return torch.istft(z, self.n_fft, self.hop, window=window, center=True, length=length)
        scale = _inverse_envelope(self.n_fft, self.hop, self.window, z.shape[-1], window.dtype, str(window.device))
        return overlap_add(z, self.n_fft, self.hop, window, length, inverse_envelope=scale)

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


@functools.lru_cache(maxsize=32)
def _inverse_envelope(n_fft: int, hop: int, window: str, frames: int, dtype: torch.dtype, device: str) -> Tensor:
    """``1 / Σ_k w²(n − k·hop)`` over the overlap-added frames (read-only; shared by every call)."""
    w = WINDOWS[window](n_fft, dtype=dtype, device=device)
    return 1.0 / _envelope(w.view(n_fft // hop, hop), frames).clamp_min(1e-11)


def _envelope(taps: Tensor, frames: int) -> Tensor:
    """(frames + r − 1) · hop summed squared window of ``frames`` frames at a hop; ``taps`` = window (r, hop)."""
    r, hop = taps.shape
    envelope = torch.zeros((frames + r - 1, hop), dtype=taps.dtype, device=taps.device)
    for k in range(r):
        envelope[k:k + frames] += taps[k] * taps[k]
    return envelope.view(-1)


def overlap_add(z: Tensor, n_fft: int, hop: int, window: Tensor, length: int, *,
                inverse_envelope: Tensor | None = None) -> Tensor:
    """``torch.istft(z, n_fft, hop, window, center=True, length=length)`` for ``hop`` dividing ``n_fft``.

    The same least-squares inverse (windowed overlap-add divided by the summed squared window), with the
    overlap-add done as ``n_fft / hop`` shifted adds of whole frames instead of a general fold: a third of
    torch.istft's time for one 10 s clip (the inverse is part of every FreqRISE mask's cost). Differentiable.

    Args:
        z: (..., n_fft//2 + 1, T) complex coefficients.
        window: (n_fft,) the analysis window.
        length: samples of the result.
        inverse_envelope: ``1 / Σ w²`` for these frames (:func:`_inverse_envelope`); computed if ``None``.

    Returns:
        (..., length) real waveforms.
    """
    lead, frames = z.shape[:-2], z.shape[-1]
    z = z.reshape(-1, z.shape[-2], frames)
    r = n_fft // hop
    parts = torch.fft.irfft(z.transpose(1, 2), n=n_fft, dim=-1).view(z.shape[0], frames, r, hop)
    taps = window.view(r, hop)
    out = torch.zeros((z.shape[0], frames + r - 1, hop), dtype=parts.dtype, device=parts.device)
    for k in range(r):
        out[:, k:k + frames].addcmul_(parts[:, :, k], taps[k])
    if inverse_envelope is None:
        inverse_envelope = 1.0 / _envelope(taps, frames).clamp_min(1e-11)
    start = n_fft // 2
    stop = min(start + length, out.shape[1] * hop)
    wave = out.view(z.shape[0], -1)[:, start:stop] * inverse_envelope[start:stop]
    if stop - start < length:                       # asked for more than the frames cover: zeros, as istft
        wave = torch.nn.functional.pad(wave, (0, length - (stop - start)))
    return wave.reshape(*lead, length)
