"""Wavelet domain: multilevel DWT (ptwt), all levels concatenated in one tensor with a recorded layout.

Image rows are levels from the approximation (lowest band) up to the finest detail; every level is
stretched over the same time columns (coarse coefficients repeated), and :meth:`from_image` averages
the repeats back, so ``from_image(to_image(v, length=L), length=L) == v``.

The transform holds settings only: the layout of a clip (coefficients per level) is a pure function of
(wavelet, level, mode, length), cached per key (:func:`dwt_layout`), and every method that needs it takes
the clip ``length`` explicitly — one object is safe to share between threads and clip lengths.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, get_args

import ptwt
import pywt
import torch
from torch import Tensor

from ..errors import ConfigError
from ..params import Param
from .base import Axes, Transform

WAVELETS = ("sym2", "sym4", "sym8", "db1", "db2", "db4", "coif1", "coif2", "haar", "bior2.2")


#: ptwt's boundary modes; every one reconstructs exactly and gives the same layout.
BoundaryMode = Literal["reflect", "zero", "constant", "periodic", "symmetric"]
MODES: tuple[str, ...] = get_args(BoundaryMode)


@lru_cache(maxsize=64)
def dwt_layout(wavelet: str, level: int, mode: BoundaryMode, length: int) -> tuple[int, ...]:
    """Number of coefficients per level, approximation first, for a ``length``-sample clip.

    Raises:
        ConfigError: ``level`` deeper than a ``length``-sample clip allows.
    """
    max_level = pywt.dwt_max_level(length, pywt.Wavelet(wavelet).dec_len)
    if level > max(max_level, 1):
        raise ConfigError(
            f"A {length}-sample clip allows at most {max_level} levels of '{wavelet}'; "
            f"got {level}. Lower the level."
        )
    coeffs = ptwt.wavedec(torch.zeros(1, length, dtype=torch.float64), wavelet, mode=mode, level=level)
    return tuple(c.shape[-1] for c in coeffs)


@lru_cache(maxsize=64)
def image_index(sizes: tuple[int, ...]) -> Tensor:
    """(levels+1, T) index of the coefficient shown in each image cell (T = longest level), for a layout."""
    width = max(sizes)
    offsets = torch.cumsum(torch.tensor((0,) + sizes[:-1]), 0)
    cols = torch.arange(width)
    rows = [off + (cols * n) // width for off, n in zip(offsets.tolist(), sizes)]
    return torch.stack(rows)


class DWTTransform(Transform):
    """Discrete wavelet transform. Coefficients (B, N) real, N = total number over levels.

    Args:
        sample_rate: Hz.  wavelet: PyWavelets name (sym2 default).  level: decomposition depth.
        mode: boundary mode of ptwt (``reflect`` by default; every mode reconstructs exactly).
    """

    name = "dwt"
    title = "Wavelet (DWT levels)"
    params = (
        Param("wavelet", "sym2", "mother wavelet", choices=WAVELETS),
        Param("level", 5, "decomposition levels (each halves the band)", low=1, high=10, step=1),
        Param("mode", "reflect", "boundary mode: how the clip is extended at its ends", choices=MODES),
    )

    def __init__(self, sample_rate: int, wavelet: str = "sym2", level: int = 5, mode: BoundaryMode = "reflect"):
        super().__init__(sample_rate, wavelet=wavelet, level=level, mode=mode)
        if wavelet not in pywt.wavelist(kind="discrete"):
            raise ConfigError(f"Unknown wavelet '{wavelet}'. Try one of: {', '.join(WAVELETS)}.")
        if mode not in MODES:
            raise ConfigError(f"Unknown DWT boundary mode '{mode}'. Use one of: {', '.join(MODES)}.")
        self.wavelet, self.level, self.mode = wavelet, int(level), mode

    def layout(self, length: int) -> tuple[int, ...]:
        """Number of coefficients per level, approximation first, for a ``length``-sample clip."""
        return dwt_layout(self.wavelet, self.level, self.mode, int(length))

    def analyze(self, x: Tensor) -> Tensor:
        self.layout(x.shape[-1])  # validates the level against the length
        coeffs = ptwt.wavedec(x, self.wavelet, mode=self.mode, level=self.level)
        return torch.cat(coeffs, dim=-1)

    def split(self, z: Tensor, length: int) -> list[Tensor]:
        """(B, N) → per-level list, approximation first."""
        return list(torch.split(z, list(self.layout(length)), dim=-1))

    def synthesize(self, z: Tensor, length: int) -> Tensor:
        x = ptwt.waverec(self.split(z, length), self.wavelet)
        return x[..., :length]

    def map_shape(self, length: int) -> tuple[int, ...]:
        return (sum(self.layout(length)),)

    def _index(self, n: int, length: int, device: torch.device) -> Tensor:
        sizes = self.layout(length)
        if n != sum(sizes):
            raise ConfigError(f"A {length}-sample clip has {sum(sizes)} {self.wavelet} coefficients at level "
                              f"{self.level}, but the map has {n}; pass the length of the clip it belongs to.")
        return image_index(sizes).to(device)

    def to_image(self, v: Tensor, *, length: int) -> Tensor:
        return v[..., self._index(v.shape[-1], length, v.device)]

    def from_image(self, img: Tensor, *, length: int) -> Tensor:
        n_total = sum(self.layout(length))
        idx = self._index(n_total, length, img.device)
        if tuple(img.shape[-2:]) != tuple(idx.shape):
            raise ConfigError(f"A {length}-sample clip's DWT image is {tuple(idx.shape)}, got {tuple(img.shape[-2:])}.")
        idx = idx.flatten()
        flat = img.flatten(-2)
        out = torch.zeros(*img.shape[:-2], n_total, dtype=img.dtype, device=img.device)
        out = out.index_add(-1, idx, flat)
        counts = torch.bincount(idx, minlength=n_total).to(img.dtype)
        return out / counts

    def band_sums(self, v: Tensor, *, length: int) -> Tensor:
        return torch.stack([part.sum(-1) for part in self.split(v, length)], dim=-1)

    def axes(self, length: int) -> Axes:
        nyq = self.sample_rate / 2
        edges = [0.0] + [nyq / 2 ** (self.level - k) for k in range(self.level + 1)]
        edges_t = torch.tensor(edges, dtype=torch.float64)
        width = max(self.layout(length))
        labels = (f"A{self.level}",) + tuple(f"D{self.level - k}" for k in range(self.level))
        return Axes(
            freqs=(edges_t[1:] + edges_t[:-1]) / 2,
            times=(torch.arange(width, dtype=torch.float64) + 0.5) * length / width / self.sample_rate,
            freq_edges=edges_t,
            row_labels=labels,
        )

    def power_image(self, x: Tensor) -> Tensor:
        return self.to_image(self.analyze(x) ** 2, length=x.shape[-1])
