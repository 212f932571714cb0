"""The band × time grid a class profile is read on, and the statistics over clips.

A map's display image (F rows × T columns, :meth:`earmark.transforms.Transform.to_image`) is summed into
``n_bands`` frequency bands × ``n_times`` time bins: the domain's own rows when they are few (mel bands,
wavelet levels), otherwise mel-spaced (or octave) bands, so a fine STFT grid of 129 rows reads as 16 bands
a person can name. Sums preserve totals, so a clip's relevance and energy shares per band add up to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError

BandScale = Literal["auto", "rows", "mel", "octave"]
#: a domain with at most this many image rows is profiled on its own rows under ``bands="auto"``.
MAX_ROWS = 24


@dataclass(frozen=True)
class Grid:
    """Where each image row and column of a ``length``-sample clip goes.

    Attributes:
        band_edges: (nb + 1,) band edges in Hz.  time_edges: (nt + 1,) bin edges in seconds.
        rows: (F,) band index of each image row.  cols: (T,) time-bin index of each image column.
        band_names: a label per band.  duration: the clip's length in seconds.
    """

    band_edges: Tensor
    time_edges: Tensor
    rows: Tensor
    cols: Tensor
    band_names: tuple[str, ...]
    duration: float

    @property
    def n_bands(self) -> int:
        return int(self.band_edges.numel() - 1)

    @property
    def n_times(self) -> int:
        return int(self.time_edges.numel() - 1)

    def reduce(self, image: Tensor) -> Tensor:
        """(B, F, T) image → (B, n_bands, n_times) sums over the rows and columns of each cell."""
        img = image.detach().to("cpu", torch.float64)
        rb = torch.nn.functional.one_hot(self.rows, self.n_bands).to(torch.float64)   # (F, nb)
        ct = torch.nn.functional.one_hot(self.cols, self.n_times).to(torch.float64)   # (T, nt)
        return torch.einsum("bft,fn,tm->bnm", img, rb, ct)

    def band_hz(self, b: int) -> list[float]:
        return [round(float(self.band_edges[b]), 1), round(float(self.band_edges[b + 1]), 1)]

    def span_s(self, start: int, stop: int) -> list[float]:
        """[start, end] seconds of time bins ``start`` … ``stop - 1``."""
        return [round(float(self.time_edges[start]), 4), round(float(self.time_edges[stop]), 4)]


def _hz_to_mel(f: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: Tensor) -> Tensor:
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def _label(lo: float, hi: float) -> str:
    def khz(v: float) -> str:
        return f"{v / 1000:.3g}k" if v >= 1000 else f"{v:.0f}"

    return f"{khz(lo)}–{khz(hi)} Hz"


def make_grid(transform, length: int, *, bands: BandScale = "auto", n_bands: int = 16,
              n_times: int = 32) -> Grid:
    """The profile grid of ``transform`` for ``length``-sample clips.

    Args:
        transform: the domain.  length: samples per clip.
        bands: ``"rows"`` (the image rows), ``"mel"`` / ``"octave"`` (bands on that scale from 0 Hz to
            Nyquist), ``"auto"`` (rows when there are at most :data:`MAX_ROWS`, else mel).
        n_bands: number of mel bands (ignored for rows and octaves).
        n_times: at most this many time bins (fewer when the image has fewer columns).

    Raises:
        ConfigError: an unknown scale or a count below 1.
    """
    if bands not in ("auto", "rows", "mel", "octave"):
        raise ConfigError(f"bands is auto, rows, mel or octave, not '{bands}'.")
    if n_bands < 1 or n_times < 1:
        raise ConfigError("n_bands and n_times must be at least 1.")
    axes = transform.axes(length)
    freqs = axes.freqs.to(torch.float64).reshape(-1)
    times = axes.times.to(torch.float64).reshape(-1)
    duration = length / transform.sample_rate
    nyquist = transform.sample_rate / 2
    scale = ("rows" if freqs.numel() <= MAX_ROWS else "mel") if bands == "auto" else bands
    if scale == "rows":
        edges = axes.freq_edges.to(torch.float64).reshape(-1)
        rows = torch.arange(freqs.numel())
        names = tuple(axes.row_labels) if axes.row_labels else tuple(
            _label(float(edges[i]), float(edges[i + 1])) for i in range(freqs.numel()))
    else:
        if scale == "mel":
            edges = _mel_to_hz(torch.linspace(0.0, float(_hz_to_mel(torch.tensor(nyquist))), n_bands + 1,
                                              dtype=torch.float64))
            edges[0], edges[-1] = 0.0, nyquist
        else:
            k = max(1, int(math.floor(math.log2(nyquist / 50.0))))
            edges = torch.tensor([0.0] + [nyquist / 2 ** i for i in range(k, -1, -1)], dtype=torch.float64)
        rows = torch.bucketize(freqs, edges[1:-1], right=True)
        used = torch.unique(rows)                      # drop bands no row falls into (fine grids keep all)
        keep = torch.cat([edges[used], edges[used[-1] + 1:used[-1] + 2]])
        remap = torch.full((edges.numel() - 1,), -1, dtype=torch.long)
        remap[used] = torch.arange(used.numel())
        rows, edges = remap[rows], keep
        names = tuple(_label(float(edges[i]), float(edges[i + 1])) for i in range(edges.numel() - 1))
    if times.numel() <= n_times:
        cols = torch.arange(times.numel())
        if times.numel() > 1:
            mid = (times[1:] + times[:-1]) / 2
            tedges = torch.cat([torch.zeros(1, dtype=torch.float64), mid, torch.tensor([duration], dtype=torch.float64)])
        else:
            tedges = torch.tensor([0.0, duration], dtype=torch.float64)
    else:
        tedges = torch.linspace(0.0, duration, n_times + 1, dtype=torch.float64)
        cols = torch.bucketize(times.clamp(0.0, duration), tedges[1:-1], right=True)
    return Grid(edges, tedges, rows.long(), cols.long(), names, float(duration))


# ---- statistics over clips ------------------------------------------------------------------------

def mean_ci(x: Tensor, *, generator: torch.Generator, n_boot: int = 1000, level: float = 0.95
            ) -> tuple[Tensor, Tensor, Tensor]:
    """Mean over clips and a percentile-bootstrap interval.

    Args:
        x: (n, ...) one row per clip.  generator: the resampling draws.
        n_boot: resamples (drawn at once, as one (n_boot, n) index tensor).  level: interval coverage.

    Returns:
        ``(mean, low, high)``, each (...); with one clip the interval is the value itself.
    """
    x = x.to(torch.float64)
    mean = x.mean(0)
    n = x.shape[0]
    if n < 2:
        return mean, mean.clone(), mean.clone()
    idx = torch.randint(0, n, (n_boot, n), generator=generator)
    boots = x[idx].mean(1)                                           # (n_boot, ...)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(boots, q, dim=0)
    return mean, low, high


def spearman(a: Tensor, b: Tensor) -> float:
    """Rank correlation of two vectors (average ranks for ties); NaN when either is constant."""
    def ranks(v: Tensor) -> Tensor:
        v = v.to(torch.float64).reshape(-1)
        order = torch.argsort(v, stable=True)
        r = torch.empty_like(v)
        r[order] = torch.arange(v.numel(), dtype=torch.float64)
        for value in torch.unique(v):                   # average ranks of ties
            tie = v == value
            if int(tie.sum()) > 1:
                r[tie] = r[tie].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


__all__ = ["BandScale", "Grid", "MAX_ROWS", "make_grid", "mean_ci", "spearman"]
