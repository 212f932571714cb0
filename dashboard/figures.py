"""Plotly figures for the pages. Input: NumPy arrays already on the display grid (no maths here).

All time-based figures share the x range [0, duration] s so they line up; heatmaps use Hz on y (or the
row labels of wavelet levels), and a log frequency axis on request. Colours follow the rules of
:mod:`earmark.display` (the same as the exported PNGs). :func:`use_style` switches the session's figures
to presentation mode (larger type and ticks, colour-blind-safe palettes).
"""

from __future__ import annotations

import contextvars
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

try:  # plotly imports pandas lazily, on a session's first figure; two sessions drawing their first figure at
    import pandas  # noqa: F401  once then met a half-initialised module. Imported here, once, with the module.
except ImportError:  # plotly works without it
    pass

from earmark.display import ColourScale, shown_live, silent_cells

FONT = dict(size=15)
HEIGHT = 300
#: Per-session style (each Streamlit session runs its script in its own thread and context).
_STYLE: contextvars.ContextVar[str] = contextvars.ContextVar("earmark_figure_style", default="default")
SALIENCY_SIGNED = "RdBu_r"
SALIENCY_POSITIVE = "Inferno"
UNCERTAINTY = "Viridis"
#: Overlay scales: transparent where the map is ~0, so the spectrogram shows through.
OVERLAY_SIGNED = [[0.0, "rgba(5,48,160,1)"], [0.3, "rgba(60,120,220,0.8)"], [0.5, "rgba(255,255,255,0)"],
                  [0.7, "rgba(230,60,40,0.8)"], [1.0, "rgba(150,0,20,1)"]]
OVERLAY_POSITIVE = [[0.0, "rgba(255,230,0,0)"], [0.15, "rgba(255,200,0,0.35)"], [0.5, "rgba(240,90,20,0.85)"],
                    [1.0, "rgba(150,0,20,1)"]]
OVERLAY_UNCERTAINTY = [[0.0, "rgba(0,150,140,0)"], [0.2, "rgba(0,170,160,0.35)"], [0.6, "rgba(40,90,200,0.85)"],
                       [1.0, "rgba(70,0,120,1)"]]
#: Colour-blind-safe versions (blue–orange diverging, cividis-like sequential; ColorBrewer PuOr).
CVD = {
    "signed": "PuOr_r", "positive": "Cividis", "uncertainty": "Viridis",
    "overlay_signed": [[0.0, "rgba(45,0,75,1)"], [0.3, "rgba(128,115,172,0.8)"], [0.5, "rgba(255,255,255,0)"],
                       [0.7, "rgba(224,130,20,0.8)"], [1.0, "rgba(127,59,8,1)"]],
    "overlay_positive": [[0.0, "rgba(0,34,78,0)"], [0.15, "rgba(0,34,78,0.35)"],
                         [0.5, "rgba(124,123,120,0.85)"], [1.0, "rgba(253,231,55,1)"]],
    "overlay_uncertainty": OVERLAY_UNCERTAINTY,
}
DEFAULT = {"signed": SALIENCY_SIGNED, "positive": SALIENCY_POSITIVE, "uncertainty": UNCERTAINTY,
           "overlay_signed": OVERLAY_SIGNED, "overlay_positive": OVERLAY_POSITIVE,
           "overlay_uncertainty": OVERLAY_UNCERTAINTY}
#: Background spectrogram range (dB below its peak).
DB_RANGE = 70.0
CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def use_style(style: str) -> None:
    """``"default"`` or ``"presentation"`` for the figures this session draws from now on."""
    _STYLE.set(style)


def presenting() -> bool:
    return _STYLE.get() == "presentation"


def palette(name: str):
    return (CVD if presenting() else DEFAULT)[name]


def _layout(fig: go.Figure, *, height: int = HEIGHT, title: str | None = None) -> go.Figure:
    big = presenting()
    font = dict(size=19) if big else FONT
    fig.update_layout(height=height, margin=dict(l=70, r=20, t=40 if title else 10, b=45), font=font,
                      title=dict(text=title, x=0.01, font=dict(size=20 if big else 16)) if title else None,
                      legend=dict(orientation="h", y=1.12, x=0))
    if big:
        fig.update_xaxes(tickfont=dict(size=17), ticklen=7, tickwidth=2)
        fig.update_yaxes(tickfont=dict(size=17), ticklen=7, tickwidth=2)
    return fig


def waveform(wave: np.ndarray, sample_rate: int, *, window: tuple[float, float] | None = None,
             title: str | None = None, duration: float | None = None) -> go.Figure:
    """Waveform against seconds; ``window`` shades the part the model hears (start, end) in s."""
    n = len(wave)
    step = max(1, n // 4000)  # draw at most ~4k points: min/max envelope keeps peaks visible
    if step > 1:
        m = n // step
        blocks = wave[: m * step].reshape(m, step)
        t = (np.arange(m) * step + step / 2) / sample_rate
        fig = go.Figure([
            go.Scatter(x=t, y=blocks.max(1), mode="lines", line=dict(width=1, color="#1f4e79"), showlegend=False,
                       hoverinfo="skip"),
            go.Scatter(x=t, y=blocks.min(1), mode="lines", line=dict(width=1, color="#1f4e79"), fill="tonexty",
                       fillcolor="rgba(31,78,121,0.6)", showlegend=False, hoverinfo="skip"),
        ])
    else:
        t = np.arange(n) / sample_rate
        fig = go.Figure(go.Scatter(x=t, y=wave, mode="lines", line=dict(width=1, color="#1f4e79"),
                                   showlegend=False))
    if window is not None:
        fig.add_vrect(x0=window[0], x1=window[1], fillcolor="#f2a900", opacity=0.25, line_width=0,
                      annotation_text="model input", annotation_position="top left")
    fig.update_xaxes(title_text="Time (s)", range=[0, duration or n / sample_rate])
    fig.update_yaxes(title_text="Amplitude")
    return _layout(fig, height=200, title=title)


def _wave_trace(wave: np.ndarray, duration: float, points: int = 4000, time_range=None):
    """The wave above a map as (t, y) line(s) over the range shown: the samples, or for long clips a min/max
    envelope (earmark.zoom.wave_window), so a 10 s clip at 16 kHz draws 4,000 points instead of 160,000 and a
    zoomed strip shows the detail of its range."""
    from earmark.zoom import wave_window

    return wave_window(wave, duration, time_range, points=points)


def probabilities(probs: np.ndarray, labels: Sequence[str], *, target: int | None = None,
                  title: str | None = None, height: int = 220) -> go.Figure:
    """Bar chart of class probabilities; the predicted class and the explained target are marked."""
    pred = int(np.argmax(probs))
    colors = ["#c0392b" if i == pred else ("#f2a900" if i == target else "#7f8c8d") for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=[str(l) for l in labels], y=probs, marker_color=colors,
                           text=[f"{p:.0%}" if p >= 0.05 else "" for p in probs], textposition="outside",
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.15], title_text="Probability", tickformat=".0%")
    fig.update_xaxes(type="category", title_text="Class")
    return _layout(fig, height=height, title=title)


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Ticks of a log frequency axis at 1, 2 and 5 per decade within [low, high], written in full
    ("50", "200", "1k", "2k") — not Plotly's bare minor-tick digits ("2, 1000, 5, 2, 100")."""
    vals = []
    for e in range(int(np.floor(np.log10(max(low, 1e-3)))), int(np.ceil(np.log10(max(high, 1e-3)))) + 1):
        vals += [m * 10.0 ** e for m in (1, 2, 5) if low <= m * 10.0 ** e <= high]
    def name(v: float) -> str:
        return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"
    return vals, [name(v) for v in vals]


def _y(freqs: np.ndarray, row_labels, log_freq: bool):
    if row_labels:
        return list(row_labels), dict(type="category", title_text="Wavelet level (low → high band)")
    if log_freq:
        safe = np.where(freqs > 0, freqs, freqs[freqs > 0].min() / 2 if (freqs > 0).any() else 1.0)
        vals, text = log_ticks(float(safe.min()), float(safe.max()))
        return safe, dict(type="log", title_text="Frequency (Hz, log)", tickvals=vals, ticktext=text)
    return freqs, dict(type="linear", title_text="Frequency (Hz)")


def map_yrefs(layout: str = "Overlay", wave: bool = True) -> tuple[str, ...]:
    """The y axes of :func:`saliency_map`'s figure that carry the map (a box dragged elsewhere — on the
    waveform strip above an overlay — is an amplitude range, not a frequency range)."""
    if layout == "Side by side":
        return ("y", "y2")
    return ("y2",) if wave else ("y",)


def saliency_map(d, scale: ColourScale, *, what: str = "saliency", log_freq: bool = False, layout: str = "Overlay",
                 normalise: bool = False, dim_silent: bool = False, title: str | None = None, height: int = 380,
                 wave: np.ndarray | None = None, clip_span: tuple[float, float] | None = None,
                 region: dict | None = None, y_title: bool = True) -> go.Figure:
    """Saliency (or uncertainty) on the display grid, over or beside the power spectrogram.

    Args:
        d: an :class:`earmark.display.DisplayGrid`.
        scale: the map's :class:`~earmark.display.ColourScale` (:func:`earmark.display.colour_scale`).
        what: ``"saliency"`` or ``"uncertainty"``.
        layout: ``"Overlay"`` (map over a grey spectrogram) or ``"Side by side"``.
        normalise: divide the shown values by the colour limit (Compare: one scale −1…1 / 0…1 for all).
        dim_silent: grey out cells 60 dB under the clip's peak.
        wave: (L,) the model's input; drawn above the map on the same time axis.
        clip_span: (start, end) s of the window where the clip's own audio is (shaded on the waveform).
        region: ``{"x": (t0, t1), "y": (f0, f1)}`` a chosen box, outlined.
        y_title: write the frequency axis title (off for a map drawn beside another on the same axis).
    """
    img = scale.shown(shown_live(getattr(d, what), getattr(d, "live", None)), normalise=normalise)
    zmax = 1.0 if normalise else scale.zmax
    zmin = (-1.0 if scale.diverging else 0.0) if normalise else scale.zmin
    label = scale.label + (" (norm.)" if normalise else "")
    if d.profile is not None:
        return _profile(d, img, label=label, log_freq=log_freq, title=title, height=height, zmin=zmin, zmax=zmax)
    overlay = layout != "Side by side"
    if what == "uncertainty":
        cmap = palette("overlay_uncertainty" if overlay else "uncertainty")
    else:
        kind = "signed" if scale.diverging else "positive"
        cmap = palette(f"overlay_{kind}" if overlay else kind)
    y, yaxis = _y(d.freqs, d.row_labels, log_freq)
    if not y_title:
        yaxis = dict(yaxis, title_text=None)
    power_db = d.power_db
    top_db = float(np.nanmax(power_db)) if power_db.size else 0.0
    if dim_silent:
        img = np.where(silent_cells(power_db), np.nan, img)
    bar = dict(title=dict(text=label, side="bottom"), thickness=9, orientation="h", yanchor="top",
               x=0.5, xanchor="center", len=1.0, ypad=0, tickfont=dict(size=12))
    hover = "t=%{x:.3f} s<br>f=%{y}<br>" + label + "=%{z:.3g}<extra></extra>"
    if scale.ticks is not None and what == "saliency":
        bar.update(tickvals=list(scale.ticks[0]), ticktext=list(scale.ticks[1]))
    sal = go.Heatmap(z=img, x=d.times, y=y, colorscale=cmap, zmin=zmin, zmax=zmax, colorbar=bar, name=label,
                     hovertemplate=hover)
    power = go.Heatmap(z=power_db, x=d.times, y=y, colorscale="Greys", zmin=top_db - DB_RANGE, zmax=top_db,
                       showscale=False, hovertemplate="t=%{x:.3f} s<br>f=%{y}<br>%{z:.1f} dB<extra></extra>")
    map_row = 1
    if not overlay:
        fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                            subplot_titles=("Power (dB)", label))
        fig.add_trace(power, 1, 1)
        fig.add_trace(sal, 1, 2)
        for c in (1, 2):
            fig.update_xaxes(title_text="Time (s)", range=list(d.x_range), row=1, col=c)
        fig.update_yaxes(row=1, col=1, **yaxis)
        fig.update_yaxes(type=yaxis["type"], row=1, col=2)
    elif wave is not None:  # the waveform above the map on one shared time axis
        power.update(opacity=0.55, hoverinfo="skip", hovertemplate=None)
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.2, 0.8], vertical_spacing=0.03)
        for t, y in _wave_trace(wave, d.duration, time_range=getattr(d, "span", None)):
            fig.add_trace(go.Scatter(x=t, y=y, mode="lines", line=dict(width=1, color="#1f4e79"), showlegend=False,
                                     hoverinfo="skip", fill="tonexty" if len(fig.data) else None), 1, 1)
        if clip_span is not None and (clip_span[0] > 1e-9 or clip_span[1] < d.duration - 1e-9):
            fig.add_vrect(x0=clip_span[0], x1=clip_span[1], fillcolor="#f2a900", opacity=0.25, line_width=0,
                          row=1, col=1)
        fig.add_trace(power, 2, 1)
        fig.add_trace(sal, 2, 1)
        fig.update_xaxes(range=list(d.x_range))
        fig.update_xaxes(ticksuffix=" s", row=2, col=1)
        fig.update_yaxes(showticklabels=False, row=1, col=1)
        fig.update_yaxes(row=2, col=1, **yaxis)
        map_row = 2
    else:
        power.update(opacity=0.55, hoverinfo="skip", hovertemplate=None)
        fig = go.Figure([power, sal])
        fig.update_xaxes(title_text="Time (s)", range=list(d.x_range))
        fig.update_yaxes(**yaxis)
    if region is not None and overlay:
        y0, y1 = region["y"]
        fig.add_shape(type="rect", x0=region["x"][0], x1=region["x"][1], y0=y0, y1=y1,
                      line=dict(color="#111", width=2, dash="dot"), row=map_row, col=1)
    fig.update_layout(dragmode="select")
    fig = _layout(fig, height=height, title=title)
    top = 40 if title else 10
    bar_y, bottom = colourbar_below(height=height, top=top, axis_title=not (overlay and wave is not None))
    fig.update_layout(margin=dict(l=(74 if presenting() else 62) if y_title else 40, r=12, b=bottom))
    fig.update_traces(selector=dict(type="heatmap"), colorbar=dict(y=bar_y, tickfont=dict(size=bar_tick_size())))
    return fig


def bar_tick_size() -> int:
    return 14 if presenting() else 12


def colourbar_below(*, height: int, top: int, axis_title: bool) -> tuple[float, int]:
    """Where a horizontal colour bar goes under a map so that it clears the time axis: ``(y, bottom margin)``.

    Plotly places a colour bar in fractions of the plot area, so a fixed fraction lands on the tick labels
    (and the "Time (s)" title) of a short figure or one with presentation-size type. Here the gap is set in
    pixels from the figure's own type sizes — tick labels, then the axis title if there is one — and turned
    into a fraction of this figure's plot area; the bottom margin then holds the bar, its ticks and title.
    """
    big = presenting()
    tick, title = (17, 19) if big else (FONT["size"], FONT["size"])
    # tick labels sit ~20 px under the plot in Streamlit's theme (measured in Chromium: the bottom of a 15 px
    # label 35 px under the plot area), then the title if any, then air
    gap = 22 + 1.3 * tick + (16 + 1.3 * title if axis_title else 0) + 6
    bar = 9 + 6 + 1.3 * bar_tick_size() + 4 + 1.3 * title + 6                 # bar, its ticks, its title
    bottom = int(np.ceil(gap + bar))
    return -gap / max(height - top - bottom, 1), bottom


def _profile(d, img: np.ndarray, *, label: str, log_freq: bool, title: str | None, height: int,
             zmin: float, zmax: float) -> go.Figure:
    """A map with one row (time domain) or one column (Fourier) drawn as a line over its axis."""
    if d.profile == "time":
        x, v = d.times, img[0]
        xaxis = dict(title_text="Time (s)", range=list(d.x_range))
    else:
        x, v = d.freqs, img[:, 0]
        xaxis = dict(title_text="Frequency (Hz" + (", log)" if log_freq else ")"), type="log" if log_freq else "linear")
    fig = go.Figure(go.Scatter(x=x, y=v, mode="lines", line=dict(width=1.2, color="#c0392b"), name=label,
                               fill="tozeroy"))
    fig.update_xaxes(**xaxis)
    fig.update_yaxes(title_text=label, range=[zmin, zmax * 1.05] if zmax > 0 else None)
    return _layout(fig, height=height, title=title)


def band_importance(d, *, title: str | None = None, log_freq: bool = False) -> go.Figure:
    """Importance per frequency band (or wavelet level): horizontal bars, low band at the bottom."""
    if d.row_labels:
        names = list(d.row_labels)
    else:
        e = d.freq_edges
        names = [f"{e[i]:.0f}–{e[i + 1]:.0f} Hz" for i in range(len(d.bands))]
    v = np.asarray(d.bands, dtype=np.float64)
    if len(v) > 64:  # many bins: draw as a profile instead of bars
        fig = go.Figure(go.Scatter(x=v, y=d.freqs, mode="lines", fill="tozerox", line=dict(color="#c0392b")))
        fig.update_yaxes(title_text="Frequency (Hz)", type="log" if log_freq else "linear")
    else:
        fig = go.Figure(go.Bar(x=v, y=names, orientation="h",
                               marker_color=["#c0392b" if x >= 0 else "#2e86c1" for x in v]))
        fig.update_yaxes(type="category", title_text="Band")
    fig.update_xaxes(title_text="Summed saliency")
    return _layout(fig, height=300, title=title)


def extra_chart(plot, value: np.ndarray, *, row_labels: Sequence[str] | None = None,
                points: tuple[np.ndarray, np.ndarray] | None = None) -> go.Figure:
    """One chart of a method's extras as its :class:`~earmark.explainers.PlotSpec` declares.

    ``line``: (K,) or (K, R) over the index (one line per column); ``xy``: (K, 2) or (K, R, 2) points
    (x, y) joined in order, ``points`` = (x (R,), y (R,)) end points; ``bars``: (K,) with ``row_labels``
    names when the declaration asks for them.
    """
    v = np.asarray(value, dtype=np.float64)
    traces = []
    if plot.kind == "bars":
        v = v.reshape(-1)
        if plot.x_names == "rows" and row_labels and len(row_labels) == len(v):
            names = list(row_labels)
        elif isinstance(plot.x_names, tuple) and len(plot.x_names) >= len(v):
            names = list(plot.x_names[:len(v)])
        else:
            names = [str(i) for i in range(len(v))]
        traces.append(go.Bar(x=names, y=v, marker_color="#c0392b"))
    elif plot.kind == "xy":
        v = v.reshape(v.shape[0], -1, 2)
        for r in range(v.shape[1]):
            traces.append(go.Scatter(x=v[:, r, 0], y=v[:, r, 1], mode="lines", name="path" if v.shape[1] == 1
                                     else f"restart {r + 1}", line=dict(width=2)))
        if points is not None:
            traces.append(go.Scatter(x=np.ravel(points[0]), y=np.ravel(points[1]), mode="markers",
                                     name="final masks", marker=dict(size=10, color="#111")))
    else:
        v = v.reshape(v.shape[0], -1)
        x = np.arange(v.shape[0])
        for r in range(v.shape[1]):
            traces.append(go.Scatter(x=x, y=v[:, r], mode="lines+markers" if len(x) < 40 else "lines",
                                     name=None if v.shape[1] == 1 else f"{r + 1}"))
    fig = go.Figure(traces)
    fig.update_xaxes(title_text=plot.xlabel, type="category" if plot.kind == "bars" else None)
    fig.update_yaxes(title_text=plot.ylabel)
    fig.update_layout(showlegend=plot.kind == "xy" and len(traces) > 1)
    return _layout(fig, height=260, title=plot.title)


def faithfulness(curves: dict, *, reference: dict | None = None, title: str | None = None,
                 height: int = 300) -> go.Figure:
    """Insertion (higher is better) and deletion (lower is better) curves with shaded areas.

    ``reference``: the same curves for the energy map, drawn thin and grey to compare against.
    """
    f = curves["fractions"]
    fig = go.Figure([
        go.Scatter(x=f, y=curves["insertion"], mode="lines+markers", name="insertion (keep top)",
                   line=dict(color="#27ae60", width=3), fill="tozeroy", fillcolor="rgba(39,174,96,0.15)"),
        go.Scatter(x=f, y=curves["deletion"], mode="lines+markers", name="deletion (remove top)",
                   line=dict(color="#c0392b", width=3, dash="dash"), fill="tozeroy",
                   fillcolor="rgba(192,57,43,0.12)"),
    ])
    if reference is not None:
        for kind, dash in (("insertion", "solid"), ("deletion", "dash")):
            fig.add_trace(go.Scatter(x=reference["fractions"], y=reference[kind], mode="lines",
                                     name=f"{kind}, energy reference", line=dict(color="#7f8c8d", width=2, dash=dash)))
    fig.update_xaxes(title_text="Fraction of cells inserted / deleted", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="Target-class probability", range=[0, 1.05])
    fig = _layout(fig, height=height + (60 if reference is not None else 0), title=title)
    if reference is not None:  # four entries: put the legend under the axis, off the curves
        fig.update_layout(legend=dict(orientation="h", y=-0.32, x=0), margin=dict(b=110))
    return fig
