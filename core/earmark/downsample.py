"""Smaller grids for drawing: a 10 s clip at 16 kHz has 160,000 time-domain cells and a 129 × 2,501 STFT
map, far more than a screen has pixels (and than a browser draws quickly). These functions pool an image
into blocks for display only; the maps themselves, the metrics and the listening path never see them.

Pooling rules (per block of ``factor`` cells along an axis, the last block possibly shorter):

* ``"peak"`` — the value of largest magnitude, sign kept: a one-cell spike of a saliency map stays
  visible at its height and colour (a mean would dilute it by the block size);
* ``"mean"`` — the average, for power (the spectrogram behind the map);
* ``"sum"`` — the total, for quantities that add (importance per band);
* ``"max"`` — the largest value, for uncertainty.

Example:
    >>> import torch
    >>> img = torch.zeros(1, 10_000); img[0, 1234] = -5.0
    >>> small = pool_axis(img, 100, dim=-1, how="peak")
    >>> small.shape, float(small.min())
    (torch.Size([1, 100]), -5.0)
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from .errors import ConfigError

Pooling = Literal["peak", "mean", "sum", "max"]
#: Display limits: columns (time) and rows (frequency) of a drawn heatmap or profile.
MAX_COLUMNS = 1200
MAX_ROWS = 600


def block_factor(n: int, limit: int) -> int:
    """Smallest block size that brings ``n`` cells to at most ``limit`` blocks (1: leave as is)."""
    if limit < 1:
        raise ConfigError(f"A display limit must be at least 1 cell; got {limit}.")
    return max(1, math.ceil(int(n) / int(limit)))


def pool_axis(v: Tensor, factor: int, *, dim: int = -1, how: Pooling = "mean") -> Tensor:
    """Pool ``v`` along ``dim`` in blocks of ``factor`` cells.

    Args:
        v: (..., N, ...) real tensor.
        factor: block size ≥ 1; the last block holds ``N mod factor`` cells when that is not 0.
        dim: the axis to pool.
        how: ``"peak"``, ``"mean"``, ``"sum"`` or ``"max"`` (module docstring).

    Returns:
        (..., ceil(N / factor), ...) tensor; ``v`` itself when ``factor == 1``.

    Raises:
        ConfigError: an unknown rule or a block size below 1.
    """
    if how not in ("peak", "mean", "sum", "max"):
        raise ConfigError(f"Unknown pooling '{how}'; use peak, mean, sum or max.")
    if factor < 1:
        raise ConfigError(f"The block size must be at least 1; got {factor}.")
    if factor == 1:
        return v
    v = v.movedim(dim, -1)
    n = v.shape[-1]
    blocks = math.ceil(n / factor)
    pad = blocks * factor - n
    valid = torch.ones(n, dtype=torch.bool, device=v.device)
    if pad:
        v = torch.nn.functional.pad(v, (0, pad))
        valid = torch.nn.functional.pad(valid, (0, pad))
    v = v.reshape(*v.shape[:-1], blocks, factor)
    valid = valid.reshape(blocks, factor)
    if how == "sum":
        out = v.sum(-1)  # padding is 0
    elif how == "mean":
        out = v.sum(-1) / valid.sum(-1).to(v.dtype)
    elif how == "max":
        out = v.masked_fill(~valid, -math.inf).amax(-1)
    else:  # peak: the value of largest magnitude in each block
        score = torch.nan_to_num(v.abs(), nan=-1.0).masked_fill(~valid, -2.0)
        out = torch.gather(v, -1, score.argmax(-1, keepdim=True)).squeeze(-1)
    return out.movedim(-1, dim)


def pool_centres(centres: Tensor, factor: int) -> Tensor:
    """(N,) cell centres (seconds, Hz) → (ceil(N / factor),) centres of the pooled blocks (their mean)."""
    return pool_axis(centres.to(torch.float64), factor, dim=-1, how="mean")


def pool_edges(edges: Tensor, factor: int) -> Tensor:
    """(N + 1,) cell edges → (ceil(N / factor) + 1,) edges of the pooled blocks."""
    if factor == 1:
        return edges
    n = edges.shape[-1] - 1
    idx = torch.arange(0, n, factor, device=edges.device)
    return torch.cat([edges[idx], edges[-1:]])


def envelope(wave: Tensor, max_points: int) -> tuple[Tensor, Tensor, Tensor]:
    """Min/max envelope of a long waveform for drawing: (L,) → (positions, low, high), each (≤ max_points,).

    ``positions`` are block centres in samples. When ``L <= max_points`` the wave is returned as both
    ``low`` and ``high`` with integer positions.
    """
    factor = block_factor(wave.shape[-1], max_points)
    pos = torch.arange(wave.shape[-1], dtype=torch.float64)
    if factor == 1:
        return pos, wave, wave
    low = -pool_axis(-wave, factor, how="max")
    high = pool_axis(wave, factor, how="max")
    return pool_centres(pos, factor), low, high
