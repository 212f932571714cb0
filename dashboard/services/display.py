"""Display: the screen grid of a map (pooled to the screen), colour scales, partial figures, a region heard."""

from __future__ import annotations

from typing import Callable

import numpy as np
import streamlit as st
import torch

from . import models
from .common import Settings, to_numpy


@st.cache_data(show_spinner=False, max_entries=64)
def display(settings: Settings, _wave: np.ndarray, _exp, time_range: tuple | None = None):
    """The :class:`earmark.display.DisplayGrid` of an explanation (cached on its settings and the zoom)."""
    return display_map(settings, _wave, _exp.saliency, _exp.uncertainty, time_range=time_range)


def display_of(settings: Settings, wave: np.ndarray, exp, time_range: tuple | None = None):
    """The display grid of a final or a partial explanation (``meta["partial"]``: not cached)."""
    if exp.meta.get("partial"):
        return display_map(settings, wave, exp.saliency, time_range=time_range)
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
                *, time_range: tuple | None = None):
    """The display grid for a saliency map (and its uncertainty; zeros while it is not known yet), zoomed to
    ``time_range`` (s) when given (pooled for that range: :func:`earmark.display.display_grid`)."""
    from earmark.display import display_grid

    model = models.get_model(settings.model)
    transform = models.get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    return display_grid(transform, wave, saliency, uncertainty, time_range=time_range)


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
