"""Wavelet domain: multilevel DWT (ptwt), all levels concatenated in one tensor with a recorded layout.

Image rows are levels from the approximation (lowest band) up to the finest detail; every level is
stretched over the same time columns (coarse coefficients repeated), and :meth:`from_image` averages
the repeats back, so ``from_image(to_image(v)) == v``.
"""

from __future__ import annotations

from functools import lru_cache

import ptwt
import pywt
import torch
from torch import Tensor

from ..errors import ConfigError
from ..params import Param
from .base import Axes, Transform

WAVELETS = ("sym2", "sym4", "sym8", "db1", "db2", "db4", "coif1", "coif2", "haar", "bior2.2")


class DWTTransform(Transform):
    """Discrete wavelet transform. Coefficients (B, N) real, N = total number over levels.

    Args:
        sample_rate: Hz.  wavelet: PyWavelets name (sym2 default).  level: decomposition depth.
        mode: boundary mode of ptwt (``reflect`` by default; any padding mode reconstructs exactly).
    """

    name = "dwt"
    title = "Wavelet (DWT levels)"
    params = (
        Param("wavelet", "sym2", "mother wavelet", choices=WAVELETS),
        Param("level", 5, "decomposition levels (each halves the band)", low=1, high=10, step=1),
    )

    def __init__(self, sample_rate: int, wavelet: str = "sym2", level: int = 5, mode: str = "reflect"):
        super().__init__(sample_rate, wavelet=wavelet, level=level)
        if wavelet not in pywt.wavelist(kind="discrete"):
            raise ConfigError(f"Unknown wavelet '{wavelet}'. Try one of: {', '.join(WAVELETS)}.")
        self.wavelet, self.level, self.mode = wavelet, int(level), mode
        self._seen: dict[int, int] = {}  # total coefficient count → clip length, from analyze()

    @lru_cache(maxsize=16)
    def layout(self, length: int) -> tuple[int, ...]:
        """Number of coefficients per level, approximation first, for a ``length``-sample clip."""
        max_level = pywt.dwt_max_level(length, pywt.Wavelet(self.wavelet).dec_len)
        if self.level > max(max_level, 1):
            raise ConfigError(
                f"A {length}-sample clip allows at most {max_level} levels of '{self.wavelet}'; "
                f"got {self.level}. Lower the level."
            )
        coeffs = ptwt.wavedec(torch.zeros(1, length, dtype=torch.float64), self.wavelet,
                              mode=self.mode, level=self.level)
        return tuple(c.shape[-1] for c in coeffs)

    def analyze(self, x: Tensor) -> Tensor:
        sizes = self.layout(x.shape[-1])  # validates the level against the length
        self._seen[sum(sizes)] = x.shape[-1]
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

    def _length_of(self, n: int) -> int:
        if n in self._seen:
            return self._seen[n]
        for length in _candidate_lengths(n, slack=self.level * pywt.Wavelet(self.wavelet).dec_len + 2):
            try:
                if sum(self.layout(length)) == n:
                    return length
            except ConfigError:
                continue
        raise ValueError(f"no clip length gives {n} {self.wavelet} coefficients at level {self.level}")

    @lru_cache(maxsize=16)
    def _image_index(self, length: int) -> Tensor:
        """(levels+1, T) index of the coefficient shown in each image cell (T = longest level)."""
        sizes = self.layout(length)
        width = max(sizes)
        offsets = torch.cumsum(torch.tensor((0,) + sizes[:-1]), 0)
        cols = torch.arange(width)
        rows = [off + (cols * n) // width for off, n in zip(offsets.tolist(), sizes)]
        return torch.stack(rows)

    def to_image(self, v: Tensor) -> Tensor:
        idx = self._image_index(self._length_of(v.shape[-1])).to(v.device)
        return v[..., idx]

    def from_image(self, img: Tensor) -> Tensor:
        # The image doesn't know the clip length; the number of rows × width pins the layout.
        n_total = self._total_from_image(img.shape[-2], img.shape[-1])
        idx = self._image_index(self._length_of(n_total)).to(img.device).flatten()
        flat = img.flatten(-2)
        out = torch.zeros(*img.shape[:-2], n_total, dtype=img.dtype, device=img.device)
        out = out.index_add(-1, idx, flat)
        counts = torch.bincount(idx, minlength=n_total).to(img.dtype)
        return out / counts

    def _total_from_image(self, rows: int, width: int) -> int:
        if rows != self.level + 1:
            raise ValueError(f"a {self.level}-level DWT image has {self.level + 1} rows, got {rows}")
        pad = pywt.Wavelet(self.wavelet).dec_len
        for length in range(max(2 * width - pad - 2, 1), 2 * width + 3):
            try:
                sizes = self.layout(length)
            except ConfigError:
                continue
            if max(sizes) == width:
                return sum(sizes)
        raise ValueError(f"no clip length gives a DWT image {width} columns wide")

    def band_sums(self, v: Tensor) -> Tensor:
        length = self._length_of(v.shape[-1])
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
        return self.to_image(self.analyze(x) ** 2)

    # lru_cache on methods keys on self; transforms are small, long-lived settings objects.
    __hash__ = object.__hash__


def _candidate_lengths(n: int, *, slack: int):
    """Clip lengths whose total coefficient count could be ``n`` (N = L plus at most ``slack`` of padding)."""
    yield from range(n, max(n - slack, 1) - 1, -1)
