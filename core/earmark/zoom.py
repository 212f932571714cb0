"""Time zoom for maps of long clips: the visible time range of a display grid, pooled for that range only.

A 10 s clip at 16 kHz has a 129 × 2,501 STFT map; drawn whole it is pooled 3:1 into 834 columns
(:mod:`earmark.downsample`), so a word of 0.3 s keeps ~40 columns. Zoomed to 2 s, the same word is drawn at
full resolution. The app keeps one full-resolution grid per result (``display_grid(..., max_columns=None)``)
and asks :func:`visible_grid` for the range on screen — the grid ``display_grid(..., time_range=)`` gives, bit
for bit, without recomputing the transform's images: the columns whose centre lies in the range, pooled
only when more than ``max_columns`` of them are left (the same rules as :func:`earmark.display.display_grid`:
saliency keeps each block's peak with its sign, uncertainty its maximum, power its mean, a block is live
when one of its cells is). Colour limits computed on the result then come from the live cells of the
visible range. All NumPy/torch on the CPU, free of any plotting library.

Example:
    >>> visible_range(10.0, (2.0, 4.0))
    (2.0, 4.0)
    >>> visible_range(10.0, (9.5, 12.0))        # moved inside the clip, its width kept
    (7.5, 10.0)
    >>> visible_range(10.0, (5.0, 5.0), min_width=1.0)   # at least 1 s wide
    (4.5, 5.5)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from . import downsample as ds
from .display import DisplayGrid, _columns_within, to_db
from .errors import ConfigError

#: The narrowest visible range, in seconds (the app's slider cannot go below it either).
MIN_WIDTH = 0.05


def visible_range(duration: float, wanted: tuple[float, float] | None = None, *,
                  min_width: float = MIN_WIDTH) -> tuple[float, float]:
    """The time range to show: ``wanted`` clamped to ``[0, duration]`` and at least ``min_width`` wide.

    Args:
        duration: the map's time axis runs over ``[0, duration]`` s.
        wanted: ``(start, end)`` in s, in any order; ``None``: the whole clip. A range that sticks out of
            the clip is moved inside it (its width kept where the clip allows).
        min_width: the narrowest range (a too narrow one widens around its middle).

    Returns:
        ``(start, end)`` with ``0 ≤ start < end ≤ duration``.

    Raises:
        ConfigError: a duration that is not positive, or a range that is not finite.
    """
    duration = float(duration)
    if not duration > 0 or not math.isfinite(duration):
        raise ConfigError(f"A map's duration must be a positive number of seconds; got {duration}.")
    if wanted is None:
        return 0.0, duration
    t0, t1 = sorted(float(v) for v in wanted)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ConfigError(f"A visible time range must be two finite times in seconds; got {wanted}.")
    width = min(duration, max(t1 - t0, min(min_width, duration)))
    mid = (t0 + t1) / 2
    start = min(max(mid - width / 2, 0.0), duration - width)
    return float(start), float(start + width)


def column_span(times: np.ndarray, time_range: tuple[float, float]) -> tuple[int, int]:
    """``(first, stop)`` of the columns whose centre lies in ``time_range`` (a slice, ``stop`` exclusive); the
    two nearest its middle when fewer than two do (as :func:`earmark.display.display_grid` keeps them)."""
    t0, t1 = sorted(map(float, time_range))
    idx = _columns_within(np.asarray(times, np.float64), (t0, t1))
    return int(idx[0]), int(idx[-1]) + 1


def _pool(v: np.ndarray, factor: int, how: ds.Pooling) -> np.ndarray:
    """Pool the columns of a (F, T) array as :func:`earmark.display.display_grid` does (float32 maths)."""
    if factor == 1:
        return v
    out = ds.pool_axis(torch.from_numpy(np.ascontiguousarray(v)).float(), factor, dim=1, how=how)
    return out.double().numpy()


def visible_grid(grid: DisplayGrid, time_range: tuple[float, float] | None = None, *,
                 max_columns: int | None = ds.MAX_COLUMNS) -> DisplayGrid:
    """The part of a full-resolution display grid in ``time_range``, pooled to at most ``max_columns``.

    The same grid as ``display_grid(transform, wave, saliency, uncertainty, time_range=time_range)``, bit for
    bit, without recomputing the transform's images: the app keeps one full grid per result and asks for the
    range on screen.

    Args:
        grid: a grid with every time column (``display_grid(..., max_columns=None)``).
        time_range: ``(start, end)`` s, cut to ``[0, duration]``; ``None``: the whole clip.
        max_columns: pool the kept columns in blocks when more than this many are left (``None``: never).

    Returns:
        A :class:`~earmark.display.DisplayGrid` with the kept (pooled) columns and ``span`` set (``None`` for
        the whole clip); the rows, ``bands`` (the whole map's importance per band) and ``duration`` are the
        full grid's. A grid without a time axis (one column: the Fourier profile) comes back unchanged.
    """
    if grid.saliency.shape[1] == 1:
        return grid
    span, cols = None, slice(None)
    if time_range is not None:
        t0, t1 = sorted(map(float, time_range))
        span = (max(0.0, t0), min(grid.duration, t1))
        first, stop = column_span(grid.times, span)
        cols = slice(first, stop)
    n = len(grid.times[cols])
    factor = 1 if max_columns is None else ds.block_factor(n, max_columns)
    live = None
    if grid.live is not None:
        live = _pool(grid.live[:, cols].astype(np.float32), factor, "max") > 0.5
    power = _pool(grid.power[:, cols], factor, "mean")
    times = grid.times[cols] if factor == 1 else ds.pool_centres(torch.from_numpy(grid.times[cols]), factor).numpy()
    return dataclasses.replace(
        grid, saliency=_pool(grid.saliency[:, cols], factor, "peak"),
        uncertainty=_pool(grid.uncertainty[:, cols], factor, "max"),
        power=power, power_db=grid.power_db[:, cols] if factor == 1 else to_db(power),
        times=np.asarray(times, np.float64), live=live, span=span)


def with_map(grid: DisplayGrid, transform, saliency: torch.Tensor, uncertainty: torch.Tensor | None = None, *,
             length: int, max_rows: int | None = ds.MAX_ROWS) -> DisplayGrid:
    """``grid`` (a display grid of the same clip and transform, every time column) with another map on it.

    Only the map's image is computed: the power, the live cells and the axes — the costly part of
    :func:`earmark.display.display_grid` on a 10 s clip, and the same for every estimate of a running job —
    come from ``grid``. Rows are pooled as ``display_grid`` pools them, so the result equals
    ``display_grid(transform, wave, saliency, uncertainty, max_columns=None)`` bit for bit.

    Args:
        grid: ``display_grid(transform, wave, <any map>, max_columns=None)``.
        saliency, uncertainty: (*M) maps of the ``length``-sample clip (uncertainty ``None``: zeros).
        max_rows: as given to ``display_grid`` for ``grid``.
    """
    sal = saliency.detach().cpu().float()[None]
    unc = torch.zeros_like(sal) if uncertainty is None else uncertainty.detach().cpu().float()[None]
    s_img, u_img = transform.to_image(sal, length=length)[0], transform.to_image(unc, length=length)[0]
    bands = transform.band_sums(sal, length=length)[0]
    rows = 1 if grid.row_labels or max_rows is None else ds.block_factor(s_img.shape[0], max_rows)
    if rows > 1:
        s_img, u_img = ds.pool_axis(s_img, rows, dim=0, how="peak"), ds.pool_axis(u_img, rows, dim=0, how="max")
        bands = ds.pool_axis(bands, rows, how="sum")
    return dataclasses.replace(grid, saliency=s_img.double().numpy(), uncertainty=u_img.double().numpy(),
                               bands=bands.detach().double().numpy())


def clip_interval(interval: tuple[float, float], time_range: tuple[float, float]) -> tuple[float, float] | None:
    """The part of ``interval`` (s) inside ``time_range`` (a box chosen on a zoomed map), ``None`` if none."""
    a0, a1 = sorted(map(float, interval))
    r0, r1 = sorted(map(float, time_range))
    t0, t1 = max(a0, r0), min(a1, r1)
    return (t0, t1) if t1 > t0 else None


def wave_window(wave: np.ndarray, duration: float, time_range: tuple[float, float] | None = None, *,
                points: int = 4000) -> list[tuple[np.ndarray, np.ndarray]]:
    """The waveform above a map over the visible range, as ``[(t, y), ...]`` lines in seconds.

    The samples in ``time_range`` when at most ``points`` of them, else their min/max envelope
    (:func:`earmark.downsample.envelope`, two lines: high then low), so a zoomed strip shows the detail
    of the visible part and a long clip draws at most ``points`` points.
    """
    wave = np.asarray(wave, np.float32).reshape(-1)
    n = len(wave)
    if n == 0:
        return [(np.zeros(0), np.zeros(0, np.float32))]
    t0, t1 = visible_range(duration, time_range)
    step = duration / n
    first = max(0, int(math.floor(t0 / step)))
    stop = min(n, int(math.ceil(t1 / step)) + 1)
    part = wave[first:stop]
    if len(part) <= points:
        return [((first + np.arange(len(part))) * step, part)]
    pos, low, high = ds.envelope(torch.from_numpy(np.ascontiguousarray(part)), points)
    t = (first + pos.numpy()) * step
    return [(t, high.numpy()), (t, low.numpy())]


__all__ = ["MIN_WIDTH", "clip_interval", "column_span", "visible_grid", "visible_range", "wave_window", "with_map"]
