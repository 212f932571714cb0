"""The transform contract shared by every domain.

A transform analyses a waveform into coefficients ``z = W(x)`` (complex allowed) and synthesises it back,
differentiably, so every explainer can perturb or differentiate in any domain.

Three spaces, all batched on the leading axis:

* **coefficient space** ``S``: what :meth:`Transform.analyze` returns, e.g. STFT bins (F, T), complex.
* **map space** ``M``: where saliency maps and masks live. Equal to ``S`` for every domain except ``mel``,
  whose maps live on mel bands (n_mels, T); :meth:`lift` spreads a map-space mask onto coefficients and
  :meth:`pool` sums coefficient attributions into map cells (so totals are preserved).
* **image space** (F, T): a rows × columns display grid with frequency (Hz) per row and time (s) per
  column; :meth:`to_image` / :meth:`from_image` convert maps to and from it. Random smooth masks are
  drawn on this grid.

A transform holds settings only, never state about the clips it has seen: whatever depends on the clip
takes its ``length`` in samples explicitly (as torchaudio's inverses do), so one object can be shared by
threads and used for clips of different lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ..params import Param
from ..validate import check_rate


@dataclass(frozen=True)
class Axes:
    """Physical axes of the image grid.

    Attributes:
        freqs: (F,) centre frequency of each image row in Hz (increasing).
        times: (T,) centre time of each image column in seconds.
        freq_edges: (F + 1,) band edges in Hz, for bar charts and log scales.
        row_labels: a label per row (e.g. DWT level names), or ``None`` when rows are plain frequencies.
    """

    freqs: Tensor
    times: Tensor
    freq_edges: Tensor
    row_labels: tuple[str, ...] | None = None


class Transform:
    """Base class; subclasses set ``name``, ``title``, ``params`` and implement the maths.

    Args:
        sample_rate: sampling rate of the waveforms, in Hz.
        **params: the subclass's declared parameters (already validated by :func:`get_transform`).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    is_complex: ClassVar[bool] = False

    def __init__(self, sample_rate: int, **params):
        self.sample_rate = check_rate(sample_rate, f"sample rate of the '{getattr(self, 'name', type(self).__name__)}' transform")
        self.settings = dict(params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}(sample_rate={self.sample_rate}{', ' if args else ''}{args})"

    # ---- coefficients ------------------------------------------------------------------------
    def analyze(self, x: Tensor) -> Tensor:
        """(B, L) real waveform → (B, *S) coefficients; differentiable."""
        raise NotImplementedError

    def synthesize(self, z: Tensor, length: int) -> Tensor:
        """(B, *S) coefficients → (B, length) real waveform; differentiable, exact inverse of analyze."""
        raise NotImplementedError

    # ---- map space ---------------------------------------------------------------------------
    def lift(self, m: Tensor) -> Tensor:
        """(B, *M) real map-space mask → (B, *S) real coefficient multiplier. Identity by default."""
        return m

    def pool(self, a: Tensor) -> Tensor:
        """(B, *S) real coefficient attribution → (B, *M), preserving sums. Identity by default."""
        return a

    def map_shape(self, length: int) -> tuple[int, ...]:
        """Shape ``M`` of one map for a waveform of ``length`` samples."""
        return tuple(self.pool(self.analyze(torch.zeros(1, length)).real).shape[1:])

    # ---- image space -------------------------------------------------------------------------
    def to_image(self, v: Tensor, *, length: int) -> Tensor:
        """(B, *M) real map of a ``length``-sample clip → (B, F, T) display grid."""
        raise NotImplementedError

    def from_image(self, img: Tensor, *, length: int) -> Tensor:
        """(B, F, T) grid (e.g. a mask) of a ``length``-sample clip → (B, *M) map; a left inverse of
        :meth:`to_image`."""
        raise NotImplementedError

    def image_shape(self, length: int) -> tuple[int, int]:
        """``(F, T)`` of the display grid of a ``length``-sample clip."""
        return tuple(self.to_image(torch.zeros((1, *self.map_shape(length))), length=length).shape[1:])

    def axes(self, length: int) -> Axes:
        """Frequency (Hz) per image row and time (s) per image column for a ``length``-sample clip."""
        raise NotImplementedError

    def band_sums(self, v: Tensor, *, length: int) -> Tensor:
        """(B, *M) map of a ``length``-sample clip → (B, F) importance per image row (frequency band or
        wavelet level)."""
        return self.to_image(v, length=length).sum(-1)

    def power_map(self, z: Tensor) -> Tensor:
        """(B, *S) coefficients → (B, *M) power per map cell, ``pool(|z|²)`` (mel bands add their bins)."""
        return self.pool(z.abs() ** 2)

    # ---- display -----------------------------------------------------------------------------
    def power_image(self, x: Tensor) -> Tensor:
        """(B, L) waveform → (B, F, T) power in the image grid, for the background spectrogram."""
        return self.to_image(self.power_map(self.analyze(x)), length=x.shape[-1])


def frame_times(num_frames: int, hop: int, sample_rate: int) -> Tensor:
    """Centre times in seconds of ``num_frames`` centred frames with hop ``hop``."""
    return torch.arange(num_frames, dtype=torch.float64) * hop / sample_rate


def edges_from_centres(centres: Tensor) -> Tensor:
    """(F,) increasing centres → (F + 1,) edges halfway between them, clipped at 0."""
    c = centres.to(torch.float64)
    if c.numel() == 1:
        return torch.stack([c[0] * 0, c[0] * 2])
    mid = (c[1:] + c[:-1]) / 2
    first = (c[0] - (mid[0] - c[0])).clamp(min=0)
    last = c[-1] + (c[-1] - mid[-1])
    return torch.cat([first[None], mid, last[None]])
