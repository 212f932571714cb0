"""Display: the screen grid of a map (pooled to the screen), colour scales, partial figures, a region heard."""

from __future__ import annotations

from typing import Callable

import numpy as np
import streamlit as st
import torch

from earmark.downsample import MAX_COLUMNS

from . import models
from .common import Settings, to_numpy


class BoundedCache:
    """A small least-recently-used table shared by every session of the server (thread-safe).

    Holds the objects themselves (no pickled copies, unlike ``st.cache_data``): a full-resolution grid of a
    10 s STFT map is 129 × 2,501 cells × five arrays, and a toggle must not copy or rebuild it.
    """

    def __init__(self, size: int):
        import threading
        from collections import OrderedDict
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, build: Callable):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = build()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


#: Full-resolution grids kept (one per recent result or clip background) and screen grids (one per result
#: and visible range).
FULL_GRIDS, SCREEN_GRIDS = 12, 32


@st.cache_resource(show_spinner=False)
def _grid_caches() -> tuple[BoundedCache, BoundedCache]:
    return BoundedCache(FULL_GRIDS), BoundedCache(SCREEN_GRIDS)


def _range_key(time_range) -> tuple | None:
    return None if time_range is None else tuple(round(float(t), 4) for t in time_range)


def _transform(settings: Settings):
    model = models.get_model(settings.model)
    return models.get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))


def background(settings: Settings, wave: np.ndarray):
    """The clip's display grid with every time column and an empty map: power, live cells and axes, the
    same for every explainer and every estimate of a job on this clip, model and transform (cached)."""
    key = ("background", settings.clip_hash, settings.model, settings.transform, settings.tparams, len(wave))
    return _grid_caches()[0].get(key, lambda: display_map(
        settings, wave, torch.zeros(_transform(settings).map_shape(len(wave))), max_columns=None))


def map_grid(settings: Settings, wave: np.ndarray, saliency: torch.Tensor, uncertainty: torch.Tensor | None = None):
    """The full-resolution display grid of a map of this clip: only the map's image is computed
    (:func:`earmark.zoom.with_map` on :func:`background`)."""
    from earmark import zoom

    return zoom.with_map(background(settings, wave), _transform(settings), saliency, uncertainty, length=len(wave))


def full_grid(settings: Settings, wave: np.ndarray, exp):
    """The display grid of a final explanation with every time column (rows still pooled to the screen),
    computed once per result (settings) and kept in a bounded server-wide cache."""
    return _grid_caches()[0].get(settings, lambda: map_grid(settings, wave, exp.saliency, exp.uncertainty))


def display(settings: Settings, wave: np.ndarray, exp, time_range: tuple[float, float] | None = None):
    """The :class:`earmark.display.DisplayGrid` of an explanation on screen: the columns of ``time_range``
    (``None``: the whole clip), pooled to the screen only when they do not fit
    (:func:`earmark.zoom.visible_grid`); cached per (result, range), so a view toggle pools nothing."""
    from earmark import zoom

    if exp.meta.get("partial"):               # an estimate (a stopped run's included): not the result's grid
        return zoom.visible_grid(map_grid(settings, wave, exp.saliency, exp.uncertainty), _range_key(time_range))
    rng = _range_key(time_range)
    return _grid_caches()[1].get((settings, rng), lambda: zoom.visible_grid(full_grid(settings, wave, exp), rng))


def clip_interval(interval, time_range):
    from earmark.zoom import clip_interval as clip
    return clip(interval, time_range)


def display_of(settings: Settings, wave: np.ndarray, exp, time_range: tuple[float, float] | None = None):
    """The display grid of a final or a partial explanation (``meta["partial"]``: not cached here; the
    partial figures are, per estimate and view)."""
    return display(settings, wave, exp, time_range)


class _PartialFigures:
    """The last few partial-estimate figures, shared by every session watching the same job (thread-safe)."""

    def __init__(self, size: int = 32):
        import threading
        self.size, self.items, self.lock = size, [], threading.Lock()

    def get(self, exp, view: tuple, build: Callable):
        with self.lock:
            for e, v, fig in self.items:
                if e is exp and v == view:
                    return fig
        fig = build()
        with self.lock:
            self.items = ([(exp, view, fig)] + self.items)[: self.size]
        return fig


@st.cache_resource(show_spinner=False)
def _partial_figures() -> _PartialFigures:
    return _PartialFigures()


def partial_figure(exp, view: tuple, build: Callable):
    """``build()`` once per partial estimate ``exp`` (the same object for every watcher of a job) and view:
    the poll redraws twice a second, mostly the same estimate."""
    return _partial_figures().get(exp, view, build)


def display_map(settings: Settings, wave: np.ndarray, saliency: torch.Tensor, uncertainty: torch.Tensor | None = None,
                *, time_range: tuple | None = None, max_columns: int | None = MAX_COLUMNS):
    """The display grid for a saliency map (and its uncertainty; zeros while it is not known yet), zoomed to
    ``time_range`` (s) when given; ``max_columns=None`` keeps every time column (for
    :func:`earmark.zoom.visible_grid`)."""
    from earmark.display import display_grid

    return display_grid(_transform(settings), wave, saliency, uncertainty, max_columns=max_columns,
                        time_range=time_range)


def colour_scales(settings: Settings, grid, exp, *, reference: str = "auto", clip: bool = True,
                  contrast: str = "value") -> dict:
    """``{"saliency": ColourScale, "uncertainty": ColourScale}`` by the rules of :mod:`earmark.display`.

    ``reference="auto"`` takes the explainer's declared reference (FreqRISE and RELAX: the map's mean).
    """
    from earmark.display import CLIP_PERCENTILE, baseline_of, colour_scale, live_values, resolve_reference

    spec = models.explainer_specs()[settings.explainer]
    baseline = baseline_of(exp, spec) if exp is not None else None
    ref = resolve_reference(live_values(grid), spec, reference, baseline=baseline)
    pct = CLIP_PERCENTILE if clip else None
    if grid.profile is not None:                 # a line over one axis (time, Fourier) reads by value
        contrast = "value"
    return {"saliency": colour_scale(grid.saliency, reference=ref, baseline=baseline, clip_percentile=pct,
                                     live=grid.live, contrast=contrast),
            "uncertainty": colour_scale(grid.uncertainty, what="uncertainty", clip_percentile=pct, live=grid.live)}


def clip_span(clip_seconds: float, window_seconds: float, offset: float | None) -> tuple[float, float, float]:
    from earmark.display import clip_span as span
    return span(clip_seconds, window_seconds, offset=offset)


@st.cache_data(show_spinner="Rendering the chosen region…", max_entries=64)
def listen_region(settings: Settings, _wave: np.ndarray, box: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The clip rebuilt from one time–frequency box of the display grid, and the model's answer on it.

    ``box`` = ``((t0, t1), (f0, f1) or None, (row0, row1) or None)``.
    """
    from earmark.display import region_image
    from earmark.sonify import keep_region

    model = models.get_model(settings.model)
    transform = models.get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    x = torch.as_tensor(_wave, dtype=torch.float32)
    ax = transform.axes(len(_wave))
    img = region_image(freqs=to_numpy(ax.freqs), times=to_numpy(ax.times), time_range=box[0], freq_range=box[1],
                       rows=box[2])
    wave = to_numpy(keep_region(transform, x, torch.as_tensor(img))).reshape(-1)
    return wave, models.predict(settings.model, f"{settings.key}|region|{box}", wave)
