"""What a figure shows: display grids, one dB conversion, downsampling, and the colour-scale rules.

Used by the static figures (:mod:`earmark.plots`, the CLI's PNG) and by the dashboard, so a map looks the
same on screen, in Compare and in every exported PNG. Everything here is NumPy on the CPU and free of
any plotting library.

Colour rules (:func:`colour_scale`):

* a **signed** map (some cell < 0, e.g. IG) is drawn on a diverging scale symmetric around 0;
* a **positive Monte-Carlo** map (FreqRISE, RELAX: every cell ≈ the mean score, ±a little) is drawn
  *relative to a reference* — its own mean or the mean score of the random masks — on a diverging
  scale symmetric around that reference, and the label says which (``"saliency − mean score (0.652)"``);
* any other positive map and every uncertainty map is drawn from 0 to its limit.

The limit is the largest magnitude, or a high percentile of it (``clip_percentile``) so that a few large
cells do not wash out the rest. Cells whose power lies far below the clip's peak can be dimmed
(:func:`silent_cells`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from . import downsample as ds

#: Added to power before the logarithm (the one ε of every dB conversion).
DB_EPS = 1e-10
#: Cells more than this many dB below the clip's loudest cell count as silent.
SILENT_DB = 60.0
#: The default colour limit: this percentile of |map|.
CLIP_PERCENTILE = 99.5

#: A map counts as signed when its most negative cell is below −SIGN_TOLERANCE × its largest magnitude
#: (round-off such as −2e−7 on a positive FreqRISE map does not make it signed).
SIGN_TOLERANCE = 1e-4

Reference = Literal["zero", "mean", "baseline"]
#: How values become colour: ``"value"`` (linear in the map's value) or ``"rank"`` (each cell's rank among
#: the live cells on its side of the centre: the bar's whole length shows the structure of a heavy-tailed
#: map; the ticks give the values at the quartiles).
Contrast = Literal["value", "rank"]
CONTRASTS: tuple[Contrast, ...] = ("value", "rank")
REFERENCES: tuple[Reference, ...] = ("zero", "mean", "baseline")
REFERENCE_TITLES = {"zero": "zero", "mean": "the map's mean", "baseline": "the mean score of random masks"}


def to_db(power: np.ndarray | Tensor) -> np.ndarray:
    """Power → decibels, ``10·log10(power + DB_EPS)`` (same shape)."""
    p = power.detach().cpu().double().numpy() if isinstance(power, Tensor) else np.asarray(power, np.float64)
    return 10.0 * np.log10(np.maximum(p, 0.0) + DB_EPS)


@dataclass(frozen=True)
class DisplayGrid:
    """One explanation on the transform's display grid (rows = frequency bands, columns = time).

    Attributes:
        saliency, uncertainty: (F, T) maps.  power: (F, T) power of the clip; power_db: the same in dB.
        freqs: (F,) row centres in Hz.  times: (T,) column centres in s.  freq_edges: (F + 1,) in Hz.
        row_labels: wavelet level names per row, or ``None``.
        bands: (F,) summed saliency per row (before any downsampling).
        duration: length of the explained waveform in s (the maps' time axis runs over [0, duration]).
        live: (F, T) bool, the cells masking can change (a coefficient in them is not zero; the zero padding
            of a short clip is not live). Colour limits and centres are computed on live cells only, and
            the figures leave the other cells blank. ``None``: every cell is live.
        span: ``(t0, t1)`` s of a zoomed view (the columns are those of that range, pooled for it alone), or
            ``None`` for the whole time axis. :attr:`x_range` is what the figures draw.
    """

    saliency: np.ndarray
    uncertainty: np.ndarray
    power: np.ndarray
    power_db: np.ndarray
    freqs: np.ndarray
    times: np.ndarray
    freq_edges: np.ndarray
    row_labels: tuple[str, ...] | None
    bands: np.ndarray
    duration: float
    live: np.ndarray | None = None
    span: tuple[float, float] | None = None

    @property
    def x_range(self) -> tuple[float, float]:
        """The time range the figures draw: the zoom's span, else ``(0, duration)``."""
        return self.span if self.span is not None else (0.0, self.duration)

    @property
    def profile(self) -> Literal["time", "frequency"] | None:
        """``"time"`` for a one-row map (time domain), ``"frequency"`` for one column (Fourier), else ``None``."""
        if self.saliency.shape[0] == 1:
            return "time"
        if self.saliency.shape[1] == 1:
            return "frequency"
        return None


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def display_grid(transform, wave: Tensor | np.ndarray, saliency: Tensor, uncertainty: Tensor | None = None, *,
                 max_columns: int | None = ds.MAX_COLUMNS, max_rows: int | None = ds.MAX_ROWS,
                 time_range: tuple[float, float] | None = None) -> DisplayGrid:
    """Saliency, uncertainty and power of ``wave`` on ``transform``'s display grid.

    Grids larger than a screen (a 10 s clip at 16 kHz: 160,000 time cells, 2,501 STFT frames, 80,001
    Fourier bins) are pooled into blocks by :mod:`earmark.downsample` for drawing only: the maps keep the
    value and sign of each block's peak, the uncertainty its maximum, power its mean, band importances
    their sum. The explanation itself is untouched.

    Args:
        transform: the explanation's domain (:class:`earmark.transforms.Transform`).
        wave: (L,) the explained waveform.
        saliency: (*M) map; uncertainty: (*M) or ``None`` (zeros, e.g. while it is not known yet).
        max_columns, max_rows: the most time columns / frequency rows to draw (``None``: all). Labelled
            rows (DWT levels) are never pooled.
        time_range: ``(t0, t1)`` s: zoom in time. Only the columns whose centres lie in the range are kept
            (at least two), *then* pooled to ``max_columns``, so a zoomed part of a long clip is drawn at
            the resolution of the range (pooling per visible range), not cut out of the whole clip's
            pooled image. Band importances stay those of the whole map. Ignored without a time axis.
    """
    x = torch.as_tensor(np.asarray(wave) if not isinstance(wave, Tensor) else wave).detach().cpu().float()
    x = x.reshape(1, -1)
    length = x.shape[-1]
    live = live_cells(transform, x)
    sal = saliency.detach().cpu().float()[None]
    unc = torch.zeros_like(sal) if uncertainty is None else uncertainty.detach().cpu().float()[None]
    ax = transform.axes(length)
    s_img, u_img = transform.to_image(sal, length=length)[0], transform.to_image(unc, length=length)[0]
    live_img = transform.to_image(live.float()[None], length=length)[0]
    power = transform.power_image(x)[0]
    bands, freqs, times, edges = transform.band_sums(sal, length=length)[0], ax.freqs, ax.times, ax.freq_edges
    span = None
    if time_range is not None and s_img.shape[1] > 1 and len(times) == s_img.shape[1]:
        span = (max(0.0, float(time_range[0])), min(length / transform.sample_rate, float(time_range[1])))
        keep = torch.as_tensor(_columns_within(_np(torch.as_tensor(times)), span))
        s_img, u_img, live_img, power = (img[:, keep] for img in (s_img, u_img, live_img, power))
        times = torch.as_tensor(times)[keep]
    rows = 1 if ax.row_labels or max_rows is None else ds.block_factor(s_img.shape[0], max_rows)
    cols = 1 if max_columns is None else ds.block_factor(s_img.shape[1], max_columns)
    if rows > 1 or cols > 1:
        def pool(img, how):
            return ds.pool_axis(ds.pool_axis(img, rows, dim=0, how=how), cols, dim=1, how=how)

        s_img, u_img, power = pool(s_img, "peak"), pool(u_img, "max"), pool(power, "mean")
        live_img = pool(live_img, "max")
        bands = ds.pool_axis(bands, rows, how="sum")
        freqs, times, edges = ds.pool_centres(freqs, rows), ds.pool_centres(times, cols), ds.pool_edges(edges, rows)
    power = _np(power)
    return DisplayGrid(
        saliency=_np(s_img), uncertainty=_np(u_img), power=power, power_db=to_db(power),
        freqs=_np(freqs), times=_np(times), freq_edges=_np(edges),
        row_labels=tuple(ax.row_labels) if ax.row_labels else None,
        bands=_np(bands), duration=length / transform.sample_rate, live=_np(live_img) > 0.5, span=span,
    )


def _columns_within(times: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Indices of the columns whose centres lie in ``span`` (the two nearest when fewer than two do)."""
    idx = np.flatnonzero((times >= span[0]) & (times <= span[1]))
    if idx.size >= 2:
        return idx
    centre = 0.5 * (span[0] + span[1])
    return np.sort(np.argsort(np.abs(times - centre), kind="stable")[:2])


#: A cell is live when its coefficients' power exceeds ``(LIVE_RTOL · max|z|)²`` (float32 round-off of
#: exact zeros is ~1e-7 of the largest coefficient); the same rule as the mask methods' inert cells.
LIVE_RTOL = 1e-6


def live_cells(transform, x: Tensor, *, rtol: float = LIVE_RTOL) -> Tensor:
    """(*M) bool: cells of ``transform``'s map where the (1, L) clip ``x`` has a coefficient that is not zero,
    i.e. where masking with the zero baseline can change the input (the complement of
    :func:`earmark.explainers.masks.inert_cells` for the zero baseline)."""
    z = transform.analyze(x)[0]
    scale = float(z.abs().max()) if z.numel() else 0.0
    if scale <= 0 or not np.isfinite(scale):
        return torch.ones(tuple(transform.map_shape(x.shape[-1])), dtype=torch.bool)
    power = transform.pool((z.abs() ** 2)[None].real)[0]
    return power > (rtol * scale) ** 2


# ---- colour rules --------------------------------------------------------------------------------

def colour_limit(values: np.ndarray, clip_percentile: float | None = CLIP_PERCENTILE) -> float:
    """Largest |value| (or its ``clip_percentile``-th percentile); 1 for an empty or all-zero map."""
    mags = np.abs(np.asarray(values, np.float64))
    mags = mags[np.isfinite(mags)]
    if not mags.size:
        return 1.0
    lim = float(np.percentile(mags, clip_percentile)) if clip_percentile else float(mags.max())
    return lim if lim > 0 else (float(mags.max()) or 1.0)


def is_signed(img: np.ndarray) -> bool:
    """Whether ``img`` has clearly negative cells (see :data:`SIGN_TOLERANCE`)."""
    v = np.asarray(img, np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return False
    return bool(v.min() < -SIGN_TOLERANCE * np.abs(v).max())


def default_reference(img: np.ndarray, spec=None) -> Reference:
    """``spec.colour_reference`` for a non-negative map of a method that declares one, else ``"zero"``."""
    wanted = getattr(spec, "colour_reference", "zero")
    if wanted != "zero" and not is_signed(img):
        return wanted
    return "zero"


def resolve_reference(img: np.ndarray, spec=None, choice: str = "auto", *, baseline: float | None = None) -> Reference:
    """The reference actually used: ``choice`` (``"auto"`` = :func:`default_reference`), except that a
    signed map is always centred on zero and ``"baseline"`` without a baseline falls back to ``"mean"``."""
    if is_signed(img):
        return "zero"
    ref = default_reference(img, spec) if choice == "auto" else choice
    if ref == "baseline" and (baseline is None or not np.isfinite(baseline)):
        return "mean"
    return ref


def baseline_of(explanation, spec) -> float | None:
    """The scalar mean score the spec names (``spec.baseline_extra``) from ``explanation.extras``, or ``None``."""
    key = getattr(spec, "baseline_extra", None)
    if not key or key not in explanation.extras:
        return None
    v = explanation.extras[key]
    return float(v.detach().cpu().double().mean()) if isinstance(v, Tensor) else float(np.mean(v))


@dataclass(frozen=True)
class ColourScale:
    """How a map's values become colours.

    Attributes:
        centre: the value drawn as the scale's middle (0, the map's mean, or the mean score); figures draw
            ``values - centre`` (see :meth:`shown`).
        zmin, zmax: limits of the shown values.  diverging: symmetric around 0 (``zmin = -zmax``).
        reference: ``"zero"``, ``"mean"`` or ``"baseline"``.  label: colour-bar title saying all of this.
    """

    centre: float
    zmin: float
    zmax: float
    diverging: bool
    reference: Reference
    label: str
    contrast: Contrast = "value"
    #: ``contrast="rank"``: the sorted live values above the centre and the sorted magnitudes below it.
    ranks: tuple[np.ndarray, np.ndarray] | None = None
    #: Colour-bar ticks (positions on the shown scale, texts in the map's own units), or ``None``.
    ticks: tuple[tuple[float, ...], tuple[str, ...]] | None = None

    def shown(self, img: np.ndarray, *, normalise: bool = False) -> np.ndarray:
        """The values the figure draws: ``img - centre`` (divided by ``zmax`` when ``normalise``); with
        ``contrast="rank"`` each cell's rank among the live cells on its side of the centre, in [−1, 1]."""
        out = np.asarray(img, np.float64) - self.centre
        if self.contrast == "rank" and self.ranks is not None:
            return _rank_shown(out, *self.ranks)
        return out / self.zmax if normalise else out


def colour_scale(img: np.ndarray, *, what: Literal["saliency", "uncertainty"] = "saliency",
                 reference: Reference = "zero", baseline: float | None = None,
                 clip_percentile: float | None = CLIP_PERCENTILE, live: np.ndarray | None = None,
                 contrast: Contrast = "value") -> ColourScale:
    """The colour rule for one map (see the module docstring).

    Args:
        img: the map (any shape).
        what: ``"uncertainty"`` is always drawn from 0.
        reference: for saliency, the value in the middle of the scale: ``"zero"``, ``"mean"`` (the map's
            mean) or ``"baseline"`` (``baseline``, e.g. FreqRISE's mean score).
        baseline: the value for ``reference="baseline"``.
        clip_percentile: limit at this percentile of |shown values|; ``None`` = their maximum.
        live: bool mask of ``img``'s shape, the cells masking can change (:attr:`DisplayGrid.live`): the
            centre and the limits are computed on them only, so inert zero padding does not spend the
            colour scale. ``None`` or no live cell: every cell.
        contrast: ``"value"`` (linear) or ``"rank"`` (see :data:`Contrast`; uncertainty is always linear).

    Raises:
        ValueError: ``reference="baseline"`` without a finite ``baseline``, or an unknown reference.
    """
    img = np.asarray(img, np.float64)
    some_inert = live is not None and np.shape(live) == img.shape and bool(np.any(live)) and not bool(np.all(live))
    if some_inert:
        img = img[np.asarray(live, bool)]
    name = "Saliency" if what == "saliency" else "Uncertainty"
    if what == "uncertainty":
        lim = colour_limit(img, clip_percentile)
        return ColourScale(0.0, 0.0, lim, False, "zero", name)
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(REFERENCES)}; got {reference!r}")
    if reference == "mean":
        finite = img[np.isfinite(img)]
        centre = float(finite.mean()) if finite.size else 0.0
        label = f"{name} − mean ({centre:.3g})"
    elif reference == "baseline":
        if baseline is None or not np.isfinite(baseline):
            raise ValueError("reference='baseline' needs the method's mean score (baseline=...)")
        centre = float(baseline)
        label = f"{name} − mean score ({centre:.3g})"
    else:
        centre, label = 0.0, name
    shown = img - centre
    diverging = reference != "zero" or is_signed(shown)
    lim = colour_limit(shown, clip_percentile)
    if some_inert:
        label += " · live cells"
    if contrast == "rank":
        return _rank_scale(shown[np.isfinite(shown)], centre, diverging, reference, label)
    return ColourScale(centre, -lim if diverging else 0.0, lim, diverging, reference, label)


def _rank_scale(shown: np.ndarray, centre: float, diverging: bool, reference: Reference, label: str) -> ColourScale:
    """The rank contrast: sorted values per side of the centre, ticks at the quartiles of each side."""
    above = np.sort(shown[shown > 0]) if diverging else np.sort(shown[shown >= 0])
    below = np.sort(-shown[shown < 0]) if diverging else np.zeros(0)
    pos, text = [0.0], ["0" if reference == "zero" else f"{centre:.3g}"]
    for side, sign in ((above, 1.0), (below, -1.0)):
        for q in (0.5, 1.0):
            if side.size:
                pos.append(sign * q)
                text.append(f"{sign * side[min(side.size - 1, int(q * side.size) - 1)]:+.2g}")
    order = np.argsort(pos)
    return ColourScale(centre, -1.0 if diverging else 0.0, 1.0, diverging, reference, label + " · by rank", "rank",
                       (above, below), (tuple(float(pos[i]) for i in order), tuple(text[i] for i in order)))


def _rank_shown(v: np.ndarray, above: np.ndarray, below: np.ndarray) -> np.ndarray:
    """Cells' ranks on their side of the centre: (0, 1] above, [−1, 0) below, 0 at it; NaN stays NaN."""
    out = np.zeros_like(v)
    if above.size:
        pos = v > 0 if below.size or np.any(v < 0) else v >= 0
        out[pos] = np.searchsorted(above, v[pos], side="right") / above.size
    if below.size:
        neg = v < 0
        out[neg] = -np.searchsorted(below, -v[neg], side="right") / below.size
    out[np.isnan(v)] = np.nan
    return np.clip(out, -1.0, 1.0)


def live_values(grid: DisplayGrid, what: str = "saliency") -> np.ndarray:
    """The ``what`` map's values on the grid's live cells (all cells when none is marked)."""
    img = np.asarray(getattr(grid, what), np.float64)
    if grid.live is None or grid.live.shape != img.shape or not grid.live.any():
        return img
    return img[grid.live]


def shown_live(img: np.ndarray, live: np.ndarray | None) -> np.ndarray:
    """``img`` with the cells that are not live set to NaN (drawn blank); unchanged when all are live."""
    img = np.asarray(img, np.float64)
    if live is None or np.shape(live) != img.shape or bool(np.all(live)):
        return img
    return np.where(np.asarray(live, bool), img, np.nan)


def silent_cells(power_db: np.ndarray, *, below_db: float = SILENT_DB) -> np.ndarray:
    """Boolean (F, T): cells more than ``below_db`` dB under the loudest cell (shown dimmed on request)."""
    p = np.asarray(power_db, np.float64)
    if not p.size:
        return np.zeros(p.shape, bool)
    return p < float(np.nanmax(p)) - below_db


def region_image(grid: DisplayGrid | None = None, *, freqs: np.ndarray | None = None,
                 times: np.ndarray | None = None, time_range: tuple[float, float],
                 freq_range: tuple[float, float] | None = None,
                 rows: tuple[int, int] | None = None) -> np.ndarray:
    """A 0/1 (F, T) image that keeps one time–frequency box of the display grid.

    Args:
        grid: the display grid (or give ``freqs`` (F,) and ``times`` (T,) directly).
        time_range: (start, end) in s; columns whose centre lies inside are kept.
        freq_range: (low, high) in Hz; rows whose centre lies inside are kept.
        rows: (first, last) row indices instead of ``freq_range`` (wavelet levels).
    """
    f = grid.freqs if grid is not None else np.asarray(freqs)
    t = grid.times if grid is not None else np.asarray(times)
    t0, t1 = sorted(map(float, time_range))
    cols = (t >= t0) & (t <= t1)
    if rows is not None:
        r0, r1 = sorted(map(int, rows))
        keep_rows = (np.arange(len(f)) >= r0) & (np.arange(len(f)) <= r1)
    elif freq_range is not None:
        f0, f1 = sorted(map(float, freq_range))
        keep_rows = (f >= f0) & (f <= f1)
    else:
        keep_rows = np.ones(len(f), bool)
    return (keep_rows[:, None] & cols[None, :]).astype(np.float32)


def clip_span(clip_seconds: float, window_seconds: float, *, offset: float | None = None,
              policy: str = "center") -> tuple[float, float, float]:
    """Where the clip sits in the model's window, as :func:`earmark.audio.prepare` places it.

    Returns:
        ``(start, end, clip_start)``: the clip's audio covers ``[start, end]`` s of the window, and the
        window's first sample is ``clip_start`` s into the clip (0 when the clip was padded).
    """
    if offset is not None:
        return 0.0, min(window_seconds, clip_seconds - offset), float(offset)
    if clip_seconds >= window_seconds:
        start = {"center": (clip_seconds - window_seconds) / 2, "start": 0.0,
                 "end": clip_seconds - window_seconds}[policy]
        return 0.0, window_seconds, start
    missing = window_seconds - clip_seconds
    left = {"center": missing / 2, "start": 0.0, "end": missing}[policy]
    return left, left + clip_seconds, 0.0
