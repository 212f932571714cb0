"""Plotly figures for the pages. Input: NumPy arrays already on the display grid (no maths here).

All time-based figures share the x range [0, duration] s so they line up; heatmaps use Hz on y (or the
row labels of wavelet levels), and a log frequency axis on request.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

FONT = dict(size=15)
HEIGHT = 300
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
#: Background spectrogram range (dB below its peak).
DB_RANGE = 70.0
CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def _layout(fig: go.Figure, *, height: int = HEIGHT, title: str | None = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=70, r=20, t=40 if title else 10, b=45), font=FONT,
                      title=dict(text=title, x=0.01, font=dict(size=16)) if title else None,
                      legend=dict(orientation="h", y=1.12, x=0))
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


def _wave_trace(wave: np.ndarray, duration: float, points: int = 4000):
    """The wave above a map as (t, y) line(s): the samples, or for long clips a min/max envelope
    (earmark.downsample.envelope), so a 10 s clip at 16 kHz draws 4,000 points instead of 160,000."""
    if len(wave) <= points:
        return [(np.arange(len(wave)) * duration / max(len(wave), 1), wave)]
    import torch
    from earmark.downsample import envelope

    pos, low, high = envelope(torch.as_tensor(np.asarray(wave, dtype=np.float32)), points)
    t = pos.numpy() * duration / len(wave)
    return [(t, high.numpy()), (t, low.numpy())]


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


def _y(freqs: np.ndarray, row_labels, log_freq: bool):
    if row_labels:
        return list(row_labels), dict(type="category", title_text="Wavelet level (low → high band)")
    if log_freq:
        safe = np.where(freqs > 0, freqs, freqs[freqs > 0].min() / 2 if (freqs > 0).any() else 1.0)
        return safe, dict(type="log", title_text="Frequency (Hz, log)")
    return freqs, dict(type="linear", title_text="Frequency (Hz)")


def colour_limit(img: np.ndarray, clip_percentile: float | None) -> float:
    """Colour-scale limit: the largest magnitude, or a high percentile so a few peaks don't wash out the rest."""
    mags = np.abs(img[np.isfinite(img)])
    if not mags.size:
        return 1.0
    lim = float(np.percentile(mags, clip_percentile)) if clip_percentile else float(mags.max())
    return lim if lim > 0 else (float(mags.max()) or 1.0)


def is_signed(img: np.ndarray) -> bool:
    return bool(img.size and np.nanmin(img) < 0)


def saliency_map(d, *, what: str = "saliency", log_freq: bool = False, layout: str = "Overlay",
                 normalise: bool = False, zmax: float | None = None, clip_percentile: float | None = 99.5,
                 title: str | None = None, height: int = 380, wave: np.ndarray | None = None) -> go.Figure:
    """Saliency (or uncertainty) on the display grid, over or beside the power spectrogram.

    Args:
        d: a :class:`dashboard.services.Display`.
        what: ``"saliency"`` or ``"uncertainty"``.
        layout: ``"Overlay"`` (map over a grey spectrogram) or ``"Side by side"``.
        normalise: divide by the map's colour limit (shared colour scale −1…1 / 0…1 across slots).
        zmax: fixed colour limit (after normalising); default from ``clip_percentile``.
        clip_percentile: colour limit at this percentile of |map| (``None``: the maximum).
        wave: (L,) the model's input; drawn above the map on the same time axis (overlay layout).
    """
    img = np.asarray(getattr(d, what), dtype=np.float64)
    if normalise:  # divide by the colour limit: every normalised map shares the scale (−)1…1
        img = img / colour_limit(img, clip_percentile)
        zmax = 1.0
    if img.shape[1] == 1 or img.shape[0] == 1:
        return _profile(d, img, what=what, log_freq=log_freq, title=title, height=height)
    signed = what == "saliency" and is_signed(img)
    overlay = layout != "Side by side"
    lim = zmax if zmax is not None else colour_limit(img, clip_percentile)
    if what == "saliency" and signed:
        cmap, zmin, zmid = (OVERLAY_SIGNED if overlay else SALIENCY_SIGNED), -lim, 0.0
    elif what == "saliency":
        cmap, zmin, zmid = (OVERLAY_POSITIVE if overlay else SALIENCY_POSITIVE), 0.0, None
    else:
        cmap, zmin, zmid = (OVERLAY_UNCERTAINTY if overlay else UNCERTAINTY), 0.0, None
    y, yaxis = _y(d.freqs, d.row_labels, log_freq)
    power_db = 10 * np.log10(np.asarray(d.power, dtype=np.float64) + 1e-12)
    top_db = float(np.nanmax(power_db)) if power_db.size else 0.0
    label = "Saliency" if what == "saliency" else "Uncertainty"
    bar = dict(title=dict(text=label + (" (norm.)" if normalise else ""), side="right"), thickness=14)
    hover = "t=%{x:.3f} s<br>f=%{y}<br>" + label + "=%{z:.3g}<extra></extra>"
    sal = go.Heatmap(z=img, x=d.times, y=y, colorscale=cmap, zmin=zmin, zmax=lim, zmid=zmid, colorbar=bar,
                     name=label, hovertemplate=hover)
    power = go.Heatmap(z=power_db, x=d.times, y=y, colorscale="Greys", zmin=top_db - DB_RANGE, zmax=top_db,
                       showscale=False, hovertemplate="t=%{x:.3f} s<br>f=%{y}<br>%{z:.1f} dB<extra></extra>")
    if not overlay:
        fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                            subplot_titles=("Power (dB)", label))
        fig.add_trace(power, 1, 1)
        fig.add_trace(sal, 1, 2)
        for c in (1, 2):
            fig.update_xaxes(title_text="Time (s)", range=[0, d.duration], row=1, col=c)
        fig.update_yaxes(row=1, col=1, **yaxis)
        fig.update_yaxes(type=yaxis["type"], row=1, col=2)
    elif wave is not None:  # the waveform above the map on one shared time axis
        power.update(opacity=0.55, hoverinfo="skip", hovertemplate=None)
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.22, 0.78], vertical_spacing=0.03)
        for t, y in _wave_trace(wave, d.duration):
            fig.add_trace(go.Scatter(x=t, y=y, mode="lines", line=dict(width=1, color="#1f4e79"), showlegend=False,
                                     hoverinfo="skip", fill="tonexty" if len(fig.data) else None), 1, 1)
        sal.update(colorbar=dict(bar, y=0.39, len=0.78))
        fig.add_trace(power, 2, 1)
        fig.add_trace(sal, 2, 1)
        fig.update_xaxes(range=[0, d.duration])
        fig.update_xaxes(title_text="Time (s)", row=2, col=1)
        fig.update_yaxes(title_text="Wave", showticklabels=False, row=1, col=1)
        fig.update_yaxes(row=2, col=1, **yaxis)
        height = int(height * 1.25)
    else:
        power.update(opacity=0.55, hoverinfo="skip", hovertemplate=None)
        fig = go.Figure([power, sal])
        fig.update_xaxes(title_text="Time (s)", range=[0, d.duration])
        fig.update_yaxes(**yaxis)
    return _layout(fig, height=height, title=title)


def _profile(d, img: np.ndarray, *, what: str, log_freq: bool, title: str | None, height: int) -> go.Figure:
    """A map with one row (time domain) or one column (Fourier) drawn as a line over its axis."""
    label = "Saliency" if what == "saliency" else "Uncertainty"
    if img.shape[0] == 1:  # over time
        x, v = d.times, img[0]
        xaxis = dict(title_text="Time (s)", range=[0, d.duration])
    else:  # over frequency
        x, v = d.freqs, img[:, 0]
        xaxis = dict(title_text="Frequency (Hz" + (", log)" if log_freq else ")"), type="log" if log_freq else "linear")
    fig = go.Figure(go.Scatter(x=x, y=v, mode="lines", line=dict(width=1.2, color="#c0392b"), name=label,
                               fill="tozeroy"))
    fig.update_xaxes(**xaxis)
    fig.update_yaxes(title_text=label)
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


def line(y: np.ndarray, *, x: np.ndarray | None = None, xlabel: str, ylabel: str, title: str | None = None,
         name: str | None = None) -> go.Figure:
    x = np.arange(len(y)) if x is None else x
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers" if len(y) < 40 else "lines", name=name))
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text=ylabel)
    return _layout(fig, height=260, title=title)


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
