"""The segment strip: one box per segment above the waveform, coloured by score, labelled score ± error."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import _layout, _wave_trace


def segment_strip(wave: np.ndarray, sample_rate: int, rows: list[dict], *, selected: int | None = None,
                  title: str | None = None) -> go.Figure:
    """A strip of segments (colour = score on a diverging scale centred at 0; text = label, score ± stderr;
    a marker per segment to click) above the waveform on the same time axis."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.04)
    top = max([abs(r["score"]) for r in rows] + [1e-12])
    scale = "RdBu_r"
    for i, r in enumerate(rows):
        fig.add_shape(type="rect", x0=r["start"], x1=r["end"], y0=0, y1=1, row=1, col=1,
                      line=dict(width=3 if i == selected else 1, color="black" if i == selected else "grey"),
                      fillcolor=_colour(r["score"] / top), opacity=0.9)
    mids = [(r["start"] + r["end"]) / 2 for r in rows]
    fig.add_trace(go.Scatter(
        x=mids, y=[0.5] * len(rows), mode="markers+text", customdata=list(range(len(rows))),
        text=[f"{r['label']}<br>{r['score']:+.3f}±{r['stderr']:.3f}" for r in rows], textposition="middle center",
        marker=dict(size=18, color=[r["score"] for r in rows], colorscale=scale, cmin=-top, cmax=top, opacity=0.01,
                    colorbar=dict(title="score", len=0.35, y=0.85)),
        hovertemplate="%{text}<extra>click to hear</extra>", showlegend=False), row=1, col=1)
    for x, y in _wave_trace(wave, len(wave) / sample_rate):
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(width=1, color="#444"), hoverinfo="skip",
                                 showlegend=False), row=2, col=1)
    fig.update_yaxes(visible=False, range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    return _layout(fig, height=320, title=title)


def _colour(v: float) -> str:
    """[-1, 1] → a blue (negative) – white – red (positive) colour."""
    v = float(np.clip(v, -1, 1))
    a = int(255 * (1 - abs(v)))
    return f"rgb(255,{a},{a})" if v >= 0 else f"rgb({a},{a},255)"
