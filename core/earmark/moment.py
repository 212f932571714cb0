"""Explain a moment of a long recording in place: the model's window around a time, and its map drawn on the
recording's own time axis with the neighbouring seconds for context.

The window is the one :func:`earmark.timeline.scan` scored for that moment (centred on it, zeros beyond the
recording's ends), so ``earmark explain RECORDING --at T`` explains exactly the window behind the timeline's
value at ``T``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .audio import Clip
from .errors import ConfigError
from .timeline import _duration, read_span


def clip_at(source, card, seconds: float) -> tuple[Clip, float]:
    """The model's window centred on ``seconds`` of a recording, as a clip at the model's rate and length.

    Args:
        source: the recording (a path, bytes, or ``(wave, rate)``).
        card: the model's card (rate and window).
        seconds: the moment, in seconds from the recording's start.

    Returns:
        ``(clip, start)``: the clip (num_samples,) and the window's start in the recording, in seconds (negative
        when the window reaches before the recording's start; zeros fill what lies outside it).

    Raises:
        ConfigError: a moment outside the recording.
    """
    rate, window = int(card.sample_rate), int(card.num_samples)
    duration = _duration(source, rate)
    if not (math.isfinite(seconds) and 0 <= seconds <= duration):
        raise ConfigError(f"--at {seconds:g} s lies outside the recording (0 to {duration:.2f} s).")
    start = (int(round(seconds * rate)) - window // 2) / rate
    wave = read_span(source, rate, start, start + window / rate)
    name = Path(source).stem if isinstance(source, (str, Path)) else "recording"
    note = (f"The model hears {window / rate:g} s of the {duration:.2f} s recording, {max(0.0, start):.2f}–"
            f"{min(duration, start + window / rate):.2f} s (centred on {seconds:g} s).")
    clip = Clip(wave=torch.from_numpy(wave), sample_rate=rate, name=f"{name}@{seconds:g}s", original_rate=rate,
                source_seconds=duration, warnings=(note,))
    return clip, start


def explain_at(model, source, seconds: float, *, method: str = "saliency", transform: str = "stft",
               target: int | None = None, seed: int = 0, **params):
    """Explain the window centred on ``seconds`` of a recording (the app's click on a track or an event).

    Returns:
        ``(explanation, start, transform)``: the :class:`~earmark.explanation.Explanation`, the window's start in
        the recording (s), and the transform used (for :func:`moment_figure`).
    """
    from .explainers import explain
    from .transforms import get_transform

    clip, start = clip_at(source, model.card, seconds)
    domain = get_transform(transform, model.card.sample_rate)
    expl = explain(model, clip.wave, domain, target, method=method, seed=seed, **params)
    return expl, start, domain


def moment_figure(source, card, start: float, transform, explanation, *, context: float = 2.0, title: str = ""):
    """The recording around a window (waveform, ``context`` seconds either side, the window shaded) above the
    window's saliency map at its own place on the same time axis. Returns a Matplotlib figure."""
    from matplotlib.figure import Figure

    from .display import display_grid

    rate, window = int(card.sample_rate), int(card.num_samples)
    end = start + window / rate
    wave = read_span(source, rate, start - context, end + context)
    duration = _duration(source, rate)
    times = start - context + np.arange(wave.shape[0]) / rate
    inside = (times >= 0) & (times <= duration)
    own = read_span(source, rate, start, end)
    grid = display_grid(transform, own, explanation.saliency.detach().cpu(), None)
    fig = Figure(figsize=(12, 4.2))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.6]})
    top.plot(times[inside], wave[inside], lw=0.5, color="0.25")
    top.axvspan(start, end, color="tab:orange", alpha=0.2, label="the model's window")
    top.set_ylabel("wave")
    top.legend(loc="upper right", fontsize=8)
    sal = grid.saliency
    limit = float(np.nanmax(np.abs(sal))) or 1.0
    signed = bool((sal < 0).any())
    lo_f, hi_f = float(grid.freq_edges[0]), float(grid.freq_edges[-1])
    image = bottom.imshow(sal, aspect="auto", origin="lower", extent=(start, end, lo_f, hi_f),
                          cmap="RdBu_r" if signed else "viridis", vmin=-limit if signed else 0, vmax=limit,
                          interpolation="nearest")
    bottom.set_ylabel("Hz" if grid.row_labels is None else "")
    bottom.set_xlabel("time in the recording (s)")
    bottom.set_xlim(start - context, end + context)
    fig.colorbar(image, ax=[top, bottom], shrink=0.6, label=f"{explanation.method} ({transform.name})")
    fig.suptitle(title or f"{card.title}: window {start:.2f}–{end:.2f} s, class "
                          f"{card.labels[explanation.target]}")
    return fig


__all__ = ["clip_at", "explain_at", "moment_figure"]
