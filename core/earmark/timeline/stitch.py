"""The explained timeline: maps of consecutive windows stitched by overlap-add into one map over the recording."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..audio import AudioSource
from ..device import model_device
from ..errors import ConfigError
from .scan import window_starts
from .stream import ProgressFn, _duration, read_span


# ---- explained timeline --------------------------------------------------------------------------------------
CHEAP_METHODS = ("saliency", "ig", "energy", "smoothgrad")


@dataclass(frozen=True, eq=False)
class StitchedMap:
    """One map over a whole stretch of recording: ``saliency`` (L,) per sample at ``rate`` from ``start`` s,
    ``coverage`` (L,) the summed window weights behind each sample (0 where no window reached)."""

    saliency: np.ndarray
    coverage: np.ndarray
    rate: int
    start: float
    method: str
    target: int

    @property
    def times(self) -> np.ndarray:
        return self.start + np.arange(self.saliency.shape[0]) / self.rate

    def display(self, *, max_columns: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """``(times, values)`` pooled for drawing into at most ``max_columns`` points; each block keeps its value
        of largest magnitude (with its sign)."""
        from ..downsample import block_factor, pool_axis, pool_centres

        factor = block_factor(self.saliency.shape[0], max_columns)
        return (pool_centres(torch.from_numpy(self.times), factor).numpy(),
                pool_axis(torch.from_numpy(self.saliency), factor, how="peak").numpy())


def overlap_add(maps: np.ndarray, starts: np.ndarray, length: int, *, taper: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Stitch per-window maps into one map by weighted overlap-add.

    ``out[t] = Σ_k h[t − s_k] · m_k[t − s_k] / Σ_k h[t − s_k]`` (0 where no window reaches ``t``).

    Args:
        maps: (K, W) maps of K windows.  starts: (K,) their first samples (may be negative).
        length: samples of the stitched map.  taper: (W,) window weights ``h`` (default: a Hann window
            raised so that every sample of a window counts).

    Returns:
        ``(map (length,), weight (length,))``.
    """
    k, w = maps.shape
    h = (0.1 + 0.9 * np.hanning(w + 2)[1:-1]) if taper is None else np.asarray(taper, np.float64)
    num = np.zeros(length + 2 * w, np.float64)
    den = np.zeros(length + 2 * w, np.float64)
    idx = (np.asarray(starts, np.int64)[:, None] + w + np.arange(w)[None, :]).ravel()
    inside = (idx >= w) & (idx < length + w)
    np.add.at(num, idx[inside], (maps * h[None, :]).ravel()[inside])
    np.add.at(den, idx[inside], np.broadcast_to(h, (k, w)).ravel()[inside])
    num, den = num[w:length + w], den[w:length + w]
    return np.where(den > 0, num / np.maximum(den, 1e-300), 0.0), den


def explain_timeline(model, source: AudioSource | tuple, *, method: str = "saliency", target: int | str | None = None,
                     start: float = 0.0, stop: float | None = None, hop: float | None = None, seed: int = 0,
                     progress: ProgressFn | None = None, **params) -> StitchedMap:
    """Explain every window of a stretch of recording with a cheap method and stitch the maps into one.

    Each window (centred on ``k·hop``, as :func:`scan`) is explained in the time domain for ``target``;
    consecutive maps are joined by :func:`overlap_add`, so each sample's value is the taper-weighted mean of
    the maps of the windows that contain it. For a model that is linear in the waveform the stitched IG or
    gradient×input map is exactly the per-window maps' weighted mean (tested).

    Args:
        model: the model.  source: the recording (as :func:`scan`).
        method: one of :data:`CHEAP_METHODS`.
        target: class index or label (default: the most probable class over the stretch).
        start, stop: the stretch in seconds (default: the whole recording).
        hop: seconds between windows (default: half a window).
        seed: seeds the stochastic methods (SmoothGrad), one generator for the whole run.
        **params: the method's hyperparameters.

    Raises:
        ConfigError: a method that is not cheap, an unknown target, a bad stretch.
    """
    from ..explainers import explain
    from ..transforms import get_transform

    if method not in CHEAP_METHODS:
        raise ConfigError(f"An explained timeline uses a cheap method ({', '.join(CHEAP_METHODS)}); "
                          f"'{method}' would take too long per window. Explain one moment with it instead.")
    card = model.card
    rate, window = int(card.sample_rate), int(card.num_samples)
    hop_s = window / rate / 2 if hop is None else float(hop)
    hop_n = max(1, int(round(hop_s * rate)))
    if stop is None:
        stop = _duration(source, rate)
    if not (0 <= start < stop):
        raise ConfigError(f"The stretch ({start:g} s, {stop:g} s) is not a time range inside the recording.")
    a = int(round(start * rate))
    length = int(round(stop * rate)) - a
    wave = read_span(source, rate, (a - window) / rate, (a + length + window) / rate)   # a window of context
    starts = window_starts(length, window, hop_n, centred=True)                         # relative to `a`
    windows = np.stack([wave[s + window:s + 2 * window] for s in starts])
    x = torch.from_numpy(windows).to(model_device(model))
    if target is None:
        with torch.inference_mode():
            target = int(card.probabilities(model(x)).mean(0).argmax())
    elif not isinstance(target, (int, np.integer)):
        if str(target) not in card.labels:
            raise ConfigError(f"'{target}' is not a class of {card.name}.")
        target = card.labels.index(str(target))
    transform = get_transform("time", rate)
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    maps = []
    for i, w in enumerate(x):
        maps.append(explain(model, w, transform, int(target), method=method, generator=gen, **params)
                    .saliency.detach().cpu().numpy())
        if progress is not None:
            progress((i + 1) / len(x), f"window {i + 1}/{len(x)}")
    stitched, weight = overlap_add(np.stack(maps), starts, length)
    return StitchedMap(stitched.astype(np.float32), weight.astype(np.float32), rate, a / rate, method, int(target))
