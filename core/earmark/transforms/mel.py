"""Mel domain: STFT coefficients whose maps and masks live on mel bands.

Synthesis keeps the original phase: a mel-band mask is spread onto the STFT bins through the
(column-normalised) mel filterbank and multiplies the complex STFT, so a mel-domain explanation is
listenable without Griffin-Lim.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor

from ..params import Param
from .base import Axes, edges_from_centres, frame_times
from .stft import STFT_PARAMS, STFTTransform, Window


def band_assignment(n_freqs: int, n_mels: int, sample_rate: int) -> Tensor:
    """(n_mels, n_freqs) non-negative matrix whose columns sum to 1.

    Column f says how STFT bin f is shared among mel bands (the triangular mel filterbank, normalised
    per bin); bins that no triangle covers (DC, Nyquist) go wholly to the nearest band.
    """
    fb = torchaudio.functional.melscale_fbanks(
        n_freqs, 0.0, sample_rate / 2, n_mels, sample_rate, norm=None, mel_scale="htk"
    ).T.to(torch.float64)  # (n_mels, n_freqs)
    total = fb.sum(0)
    empty = total <= 1e-12
    if empty.any():
        nearest = torch.where(torch.arange(n_freqs) < n_freqs // 2, 0, n_mels - 1)
        fb[nearest[empty], torch.nonzero(empty).squeeze(-1)] = 1.0
        total = fb.sum(0)
    return fb / total


def mel_centres(n_mels: int, sample_rate: int) -> tuple[Tensor, Tensor]:
    """Centre frequencies (n_mels,) and edges (n_mels + 1,) in Hz of HTK mel bands over [0, sr/2]."""
    top = 2595.0 * torch.log10(torch.tensor(1.0 + sample_rate / 2 / 700.0, dtype=torch.float64))
    pts = torch.linspace(0.0, float(top), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (pts / 2595.0) - 1.0)
    centres = hz[1:-1]
    return centres, edges_from_centres(centres)


class MelTransform(STFTTransform):
    """STFT coefficients (B, F, T) complex; maps (B, n_mels, T) real.

    Args:
        sample_rate: Hz.  n_fft, hop, window: as :class:`STFTTransform`.  n_mels: number of mel bands.
    """

    name = "mel"
    title = "Mel bands (STFT phase kept)"
    params = STFT_PARAMS + (Param("n_mels", 40, "number of mel bands", low=8, high=128, step=1),)

    def __init__(self, sample_rate: int, n_fft: int = 256, hop: int = 64, window: Window = "hann", n_mels: int = 40):
        super().__init__(sample_rate, n_fft=n_fft, hop=hop, window=window)
        self.settings["n_mels"] = self.n_mels = int(n_mels)
        self._assign: dict[tuple, Tensor] = {}

    def _a(self, ref: Tensor) -> Tensor:
        dtype = ref.real.dtype if ref.is_complex() else ref.dtype
        key = (ref.device, dtype)
        if key not in self._assign:
            a = band_assignment(self.n_fft // 2 + 1, self.n_mels, self.sample_rate)
            self._assign[key] = a.to(device=ref.device, dtype=dtype)
        return self._assign[key]

    def lift(self, m: Tensor) -> Tensor:
        # (B, n_mels, T) → (B, F, T): each bin is a convex combination of the bands that cover it.
        return torch.einsum("mf,bmt->bft", self._a(m), m)

    def pool(self, a: Tensor) -> Tensor:
        # (B, F, T) → (B, n_mels, T): each bin's value is shared among its bands; totals are kept.
        return torch.einsum("mf,bft->bmt", self._a(a), a)

    def map_shape(self, length: int) -> tuple[int, ...]:
        return (self.n_mels, length // self.hop + 1)

    def axes(self, length: int) -> Axes:
        centres, edges = mel_centres(self.n_mels, self.sample_rate)
        return Axes(freqs=centres, times=frame_times(length // self.hop + 1, self.hop, self.sample_rate),
                    freq_edges=edges)
