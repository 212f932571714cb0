"""Static figures (matplotlib, headless) for the CLI and for PNG export. No Streamlit here.

The figure follows the colour rules of :mod:`earmark.display` (the same as the dashboard's): signed maps
symmetric around 0, positive Monte-Carlo maps relative to their reference, the colour limit clipped at a
percentile. A map with one column (Fourier) or one row (time) is drawn as a profile over its axis instead
of an image stretched over the other one.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .display import (CLIP_PERCENTILE, Contrast, DisplayGrid, Reference, baseline_of, colour_scale,  # noqa: E402
                      display_grid, live_values, resolve_reference, shown_live, silent_cells)
from .explanation import Explanation  # noqa: E402
from .transforms import Transform  # noqa: E402

#: Colour maps: signed (diverging), positive, uncertainty. ``cvd``: safe for colour-vision deficiencies.
PALETTES = {
    "default": ("RdBu_r", "magma", "viridis"),
    "cvd": ("PuOr_r", "cividis", "viridis"),
}


def map_scale(grid: DisplayGrid, explanation: Explanation, *, spec=None, reference: str | None = None,
              clip_percentile: float | None = CLIP_PERCENTILE, contrast: Contrast = "value"):
    """The :class:`~earmark.display.ColourScale` of the saliency map (reference from ``spec`` by default)."""
    baseline = baseline_of(explanation, spec)
    ref = resolve_reference(live_values(grid), spec, reference or "auto", baseline=baseline)
    return colour_scale(grid.saliency, reference=ref, baseline=baseline, clip_percentile=clip_percentile,
                        live=grid.live, contrast=contrast)


def explanation_figure(transform: Transform, wave: torch.Tensor, explanation: Explanation, *,
                       title: str = "", log_freq: bool = False, spec=None, reference: Reference | None = None,
                       clip_percentile: float | None = CLIP_PERCENTILE, dim_silent: bool = False,
                       palette: str = "default", contrast: Contrast = "value") -> plt.Figure:
    """Three aligned panels: power, saliency and uncertainty, with s and Hz axes.

    Args:
        transform: the explanation's domain.
        wave: (L,) the explained waveform.
        explanation: its saliency and uncertainty (map space).
        log_freq: log-scaled frequency axis (rows with a positive lower edge).
        spec: the explainer's :class:`~earmark.explainers.ExplainerSpec` (its colour reference).
        reference: override the saliency's colour reference (``"zero"``, ``"mean"``, ``"baseline"``).
        clip_percentile: colour limit at this percentile of |map| (``None``: the maximum).
        dim_silent: grey out cells far below the clip's peak power (:func:`earmark.display.silent_cells`).
        palette: ``"default"`` or ``"cvd"`` (colour-blind-safe).
        contrast: ``"value"`` (linear colours) or ``"rank"`` (:data:`earmark.display.Contrast`).
    """
    grid = display_grid(transform, wave, explanation.saliency, explanation.uncertainty)
    sal_scale = map_scale(grid, explanation, spec=spec, reference=reference, clip_percentile=clip_percentile,
                          contrast=contrast if grid.profile is None else "value")
    unc_scale = colour_scale(grid.uncertainty, what="uncertainty", clip_percentile=clip_percentile, live=grid.live)
    signed_cmap, positive_cmap, unc_cmap = PALETTES[palette]
    panels = [
        ("Power (dB)", grid.power_db, None, "magma" if palette == "default" else "cividis"),
        (f"{sal_scale.label} — {explanation.method}", sal_scale.shown(shown_live(grid.saliency, grid.live)),
         sal_scale, signed_cmap if sal_scale.diverging else positive_cmap),
        ("Uncertainty", shown_live(grid.uncertainty, grid.live), unc_scale, unc_cmap),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True,
                             sharey=grid.profile is None)
    if grid.profile is not None:
        _profiles(axes, grid, panels, log_freq=log_freq)
    else:
        _images(fig, axes, grid, panels, log_freq=log_freq, dim_silent=dim_silent)
    if title:
        fig.suptitle(title)
    return fig


def _time_edges(grid: DisplayGrid) -> np.ndarray:
    t = grid.times
    if t.size > 1:
        mid = (t[1:] + t[:-1]) / 2
        return np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return np.array([0.0, grid.duration])


def _images(fig, axes, grid: DisplayGrid, panels, *, log_freq: bool, dim_silent: bool) -> None:
    t_edges, edges = _time_edges(grid), grid.freq_edges
    silent = silent_cells(grid.power_db) if dim_silent else None
    for ax, (name, img, scale, cmap) in zip(axes, panels):
        kwargs = {"vmin": scale.zmin, "vmax": scale.zmax} if scale is not None else {}
        if scale is None:
            top = float(np.nanmax(img)) if img.size else 0.0
            kwargs = {"vmin": top - 70.0, "vmax": top}
        mesh = ax.pcolormesh(t_edges, edges, img, cmap=cmap, shading="flat", **kwargs)
        if silent is not None and scale is not None and silent.any():
            ax.pcolormesh(t_edges, edges, np.ma.masked_where(~silent, np.ones_like(img)), cmap="Greys",
                          vmin=0, vmax=1.4, alpha=0.75, shading="flat")
        bar = fig.colorbar(mesh, ax=ax, shrink=0.85)
        if scale is not None and scale.ticks is not None:
            bar.set_ticks(scale.ticks[0], labels=scale.ticks[1])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("Time (s)")
        if log_freq and edges[1] > 0:
            ax.set_yscale("symlog", linthresh=max(edges[1], 1.0))
    axes[0].set_ylabel("Frequency (Hz)" if not grid.row_labels else "Wavelet level")
    if grid.row_labels:
        centres = (edges[1:] + edges[:-1]) / 2
        axes[0].set_yticks(centres, grid.row_labels)


def _profiles(axes, grid: DisplayGrid, panels, *, log_freq: bool) -> None:
    """One-row (time) or one-column (Fourier) maps as lines over their only axis."""
    over_time = grid.profile == "time"
    x = grid.times if over_time else grid.freqs
    for ax, (name, img, scale, _cmap) in zip(axes, panels):
        v = img[0] if over_time else img[:, 0]
        ax.plot(x, v, lw=0.9, color="#1f4e79" if scale is None else "#c0392b")
        if scale is not None:
            ax.fill_between(x, 0, v, alpha=0.25, color="#c0392b")
            ax.set_ylim(scale.zmin if scale.diverging else min(0.0, float(np.nanmin(v))), scale.zmax * 1.05)
            if scale.diverging:
                ax.axhline(0.0, color="k", lw=0.6)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("Time (s)" if over_time else "Frequency (Hz)")
        if not over_time and log_freq:
            ax.set_xscale("symlog", linthresh=max(float(grid.freq_edges[1]), 1.0))
        ax.set_ylabel("dB" if scale is None else "value")


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 120) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
