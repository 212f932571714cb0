"""The scan: the model's windows over a whole recording, batched, into a :class:`Timeline` of its answers."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..audio import AudioSource
from ..device import model_device
from ..errors import ConfigError
from .events import Event
from .stream import BACKGROUND_LABELS, BLOCK_FRAMES, ProgressFn, _open, max_recording_seconds, read_span


@dataclass(frozen=True, eq=False)
class Timeline:
    """The model's answers along a recording.

    Attributes:
        starts, ends: (N,) window start and end in seconds on the recording's time axis (centred windows
            at the two ends reach outside it: they were padded with zeros).
        probs: (N, C) float32 probability of every class per window.
        labels: the C class names.
        rate: the model's sample rate (the recording was resampled to it).
        duration: the recording's length in seconds.
        hop: seconds between consecutive windows.
        multi_label: sigmoid outputs (each class on its own) rather than softmax.
        centred: windows centred on ``k·hop`` (see the module docstring).
        name: the recording's name.
        meta: how it was made (model, windows, whether the scan was stopped early).
        levels: (N,) RMS level in dBFS of the stretch each window speaks for (the central hop of a centred
            window): an overview of the recording without decoding it again.
    """

    starts: np.ndarray
    ends: np.ndarray
    probs: np.ndarray
    labels: tuple[str, ...]
    rate: int
    duration: float
    hop: float
    multi_label: bool = False
    centred: bool = True
    name: str = "recording"
    meta: dict = field(default_factory=dict)
    levels: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    @property
    def window(self) -> float:
        """Window length in seconds."""
        return float(self.ends[0] - self.starts[0]) if len(self) else 0.0

    @property
    def centres(self) -> np.ndarray:
        """(N,) window centres in seconds."""
        return (self.starts + self.ends) / 2

    def track(self, label: str | int) -> np.ndarray:
        """(N,) probability of one class (by name or index) per window."""
        return self.probs[:, self._index(label)]

    def _index(self, label: str | int) -> int:
        if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(self.labels):
            return int(label)
        if str(label) in self.labels:
            return self.labels.index(str(label))
        raise ConfigError(f"'{label}' is not a class of this timeline; classes: {', '.join(self.labels[:12])}"
                          + (" …" if len(self.labels) > 12 else "") + ".")

    def window_at(self, seconds: float) -> int:
        """Index of the window whose centre is nearest ``seconds`` (clamped to the recording).

        Raises:
            ConfigError: a time outside the recording.
        """
        if not (math.isfinite(seconds) and 0 <= seconds <= self.duration):
            raise ConfigError(f"{seconds:g} s lies outside the recording (0 to {self.duration:.2f} s).")
        return int(np.abs(self.centres - seconds).argmin())

    def display(self, start: float = 0.0, stop: float | None = None, *, max_columns: int = 2000
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The windows of ``[start, stop]`` s pooled for drawing into at most ``max_columns`` blocks: each block
        keeps its highest probability per class and its loudest level, so a short event stays visible at any
        zoom. The timeline itself is untouched.

        Returns:
            ``(centres (K,), probs (K, C), levels (K,))``.
        """
        from ..downsample import block_factor, pool_axis, pool_centres

        stop = self.duration if stop is None else stop
        keep = (self.centres >= start) & (self.centres <= stop)
        factor = block_factor(int(keep.sum()), max_columns)
        centres = torch.from_numpy(self.centres[keep])
        probs = torch.from_numpy(self.probs[keep])
        levels = torch.from_numpy(self.levels[keep] if self.levels is not None and len(self.levels) == len(self)
                                  else np.zeros(int(keep.sum()), np.float32))
        return (pool_centres(centres, factor).numpy(), pool_axis(probs, factor, dim=0, how="max").numpy(),
                pool_axis(levels, factor, how="max").numpy())

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) start and end of the stretch each window speaks for: the hop around its centre for centred
        windows, the window itself otherwise; clipped to the recording."""
        if self.centred:
            lo, hi = self.centres - self.hop / 2, self.centres + self.hop / 2
        else:
            lo, hi = self.starts, self.ends
        return np.clip(lo, 0.0, self.duration), np.clip(hi, 0.0, self.duration)

    def events(self, threshold: float = 0.5, *, labels: Sequence[str] | None = None, min_duration: float = 0.0,
               merge_gap: float = 0.0, ignore: Sequence[str] = BACKGROUND_LABELS,
               trim_db: float | None = None) -> list[Event]:
        """Consecutive windows over ``threshold`` merged into events, per class, in time order.

        A softmax model gives each window at most one class (its most probable, if over the threshold); a
        sigmoid (multi-label) model gives each class its own events, which may overlap.

        Args:
            threshold: probability in (0, 1] a window needs.
            labels: only these classes (default: all but ``ignore``).
            min_duration: drop events shorter than this (seconds).
            merge_gap: join events of the same class separated by at most this many seconds.
            ignore: classes that mean "nothing here" (not events unless named in ``labels``).
            trim_db: trim each event to its windows whose level (:attr:`levels`) is within this many dB of the
                event's loudest window, from the first to the last of them (``None``: no trimming). A model's
                answer blurs past a sound's edges by its resolution; the level does not.

        Returns:
            Events sorted by start, then label.

        Raises:
            ConfigError: a threshold outside (0, 1] or an unknown label.
        """
        if not (math.isfinite(threshold) and 0 < threshold <= 1):
            raise ConfigError(f"The threshold is a probability in (0, 1]; got {threshold}.")
        if labels is None:
            wanted = [i for i, l in enumerate(self.labels) if l not in set(ignore)]
        else:
            wanted = [self._index(l) for l in labels]
        if not len(self):
            return []
        above = self.probs >= threshold
        if not self.multi_label:
            top = self.probs.argmax(1)
            above = above & (np.arange(self.probs.shape[1])[None, :] == top[:, None])
        lo, hi = self.spans()
        out: list[Event] = []
        for c in wanted:
            on = np.concatenate([[False], above[:, c], [False]])
            edges = np.flatnonzero(np.diff(on.astype(np.int8)))
            runs = []
            for a, b in zip(edges[::2], edges[1::2]):           # windows a .. b-1
                if trim_db is not None and self.levels is not None and len(self.levels) == len(self):
                    level = self.levels[a:b]
                    loud = np.flatnonzero(level >= level.max() - float(trim_db))
                    a, b = a + int(loud[0]), a + int(loud[-1]) + 1
                score = float(self.probs[a:b, c].max())
                if runs and lo[a] - runs[-1][1] <= merge_gap + 1e-9:
                    runs[-1] = (runs[-1][0], float(hi[b - 1]), max(runs[-1][2], score))
                else:
                    runs.append((float(lo[a]), float(hi[b - 1]), score))
            out += [Event(s, e, self.labels[c], p) for s, e, p in runs if e - s >= min_duration - 1e-9]
        return sorted(out, key=lambda e: (e.start, e.label))

    # ---- writers ---------------------------------------------------------------------------------
    def write_csv(self, path: str | Path) -> Path:
        """``timeline.csv``: ``start,end`` and one probability column per label, one row per window."""
        path = Path(path)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["start", "end", *self.labels])
            for s, e, p in zip(self.starts, self.ends, self.probs):
                w.writerow([f"{s:.4f}", f"{e:.4f}", *(f"{v:.5f}" for v in p)])
        return path

    def plot(self, path: str | Path | None = None, *, events: Sequence[Event] = (), wave: np.ndarray | None = None,
             top: int = 12, title: str | None = None):
        """``timeline.png``: (the waveform,) one probability track per class on one time axis, events as
        bars. Shows the ``top`` classes with the highest peak probability. Returns the figure."""
        from matplotlib.figure import Figure

        keep = [i for i in np.argsort(-self.probs.max(0))[:top]] if len(self) else []
        keep = sorted(keep)
        overview = wave is not None or (self.levels is not None and len(self.levels) == len(self))
        rows = 1 + overview
        fig = Figure(figsize=(12, 2.2 + 0.35 * len(keep) + 1.2 * overview))
        axes = fig.subplots(rows, 1, sharex=True, squeeze=False,
                            gridspec_kw={"height_ratios": [1, max(2, len(keep) * 0.35)][-rows:]})[:, 0]
        if wave is not None:
            t = np.arange(wave.shape[0]) / self.rate
            step = max(1, wave.shape[0] // 20000)
            axes[0].plot(t[::step], wave[::step], lw=0.4, color="0.3")
            axes[0].set_ylabel("wave")
        elif overview:
            axes[0].plot(self.centres, self.levels, lw=0.8, color="0.3")
            axes[0].set_ylabel("level (dBFS)")
        ax = axes[-1]
        c = self.centres
        for row, i in enumerate(keep):
            ax.fill_between(c, row, row + 0.9 * self.probs[:, i], step="mid", alpha=0.8)
        for e in events:
            if e.label in self.labels and self.labels.index(e.label) in keep:
                row = keep.index(self.labels.index(e.label))
                ax.plot([e.start, e.end], [row + 0.95, row + 0.95], color="k", lw=3)
        ax.set_yticks([r + 0.45 for r in range(len(keep))], [self.labels[i] for i in keep])
        ax.set_xlim(0, self.duration)
        ax.set_xlabel("time in the recording (s)")
        fig.suptitle(title or f"{self.name}: class probability per window (hop {self.hop:g} s)")
        fig.tight_layout()
        if path is not None:
            fig.savefig(Path(path), dpi=110)
        return fig


# ---- the scan ------------------------------------------------------------------------------------------------
def default_hop(card) -> float:
    """The hop a model's card recommends for scanning (``metrics["scan_hop_s"]``), else a quarter window."""
    value = (card.metrics or {}).get("scan_hop_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else card.num_samples / card.sample_rate / 4


def window_starts(length: int, window: int, hop: int, *, centred: bool = True) -> np.ndarray:
    """Start samples of the windows over a recording of ``length`` samples (may be negative when centred).

    Centred: one window centred on each ``k·hop < length``. Otherwise: from 0, as many as it takes for the
    last window to reach the end (at least one).
    """
    if centred:
        return np.arange(0, max(length, 1), hop, dtype=np.int64) - window // 2
    count = 1 + max(0, -(-(length - window) // hop))
    return np.arange(count, dtype=np.int64) * hop


def scan(model, source: AudioSource | tuple, *, hop: float | None = None, batch: int = 64,
         centred: bool = True, progress: ProgressFn | None = None, max_seconds: float | None = None,
         block_frames: int = BLOCK_FRAMES, should_stop: Callable[[], bool] | None = None) -> Timeline:
    """Slide ``model`` along a whole recording and keep its class probabilities per window.

    Args:
        model: an :class:`~earmark.models.EarmarkModel` (waveform (B, L) → logits (B, C), with a card).
        source: a path, the file's bytes, an open binary file, or ``(wave, rate)`` with wave (L,) or (channels, L).
        hop: seconds between windows (default: :func:`default_hop`).
        batch: windows per model call.
        centred: windows centred on ``k·hop`` (zero-padded ends), else starting at 0.
        progress: ``progress(fraction, stage)`` as the recording is read.
        max_seconds: the longest recording accepted (default :func:`max_recording_seconds`).
        block_frames: frames decoded per block.
        should_stop: polled between batches; when it returns True the scan ends early with the windows so far
            (``meta["stopped"]`` is then True).

    Returns:
        A :class:`Timeline` with probs (N, C) on the CPU.

    Raises:
        AudioError: an unreadable file or one over the length limit (:class:`~earmark.errors.ClipTooLong`).
        ConfigError: a hop or batch out of range.
    """
    card = model.card
    rate, window = int(card.sample_rate), int(card.num_samples)
    hop_s = default_hop(card) if hop is None else float(hop)
    if not (math.isfinite(hop_s) and 1.0 / rate <= hop_s <= window / rate):
        raise ConfigError(f"The hop is a time in seconds from one sample to one window ({window / rate:g} s); "
                          f"got {hop}.")
    hop_n = max(1, int(round(hop_s * rate)))
    if not (isinstance(batch, (int, np.integer)) and batch >= 1):
        raise ConfigError(f"batch is a whole number of windows of at least 1; got {batch!r}.")
    limit = max_recording_seconds() if max_seconds is None else float(max_seconds)
    stream = _open(source, rate, int(block_frames), limit)
    device = model_device(model)
    expected = max(1, int(round(stream.seconds * rate)))
    pad = window // 2 if centred else 0
    buf = np.zeros(pad, np.float32)          # samples from stream position `offset` on (padded coordinates)
    offset = 0                               # padded position of buf[0]
    next_start = 0                           # padded position of the next window's start
    produced = 0                             # model-rate samples read so far
    probs: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    lo = window // 2 - hop_n // 2 if centred else 0
    hi = lo + hop_n if centred else window
    stopped = False

    def flush(final: bool = False) -> None:
        nonlocal pending
        while pending and (final or sum(p.shape[0] for p in pending) >= batch):
            stack = np.concatenate(pending)
            take, rest = stack[:batch], stack[batch:]
            pending = [rest] if rest.shape[0] else []
            take = np.ascontiguousarray(take)
            with torch.inference_mode():
                logits = model(torch.from_numpy(take).to(device))
                probs.append(card.probabilities(logits.float()).cpu().numpy())
            levels.append(10 * np.log10(np.square(take[:, lo:hi]).mean(1) + 1e-12))
            if not final:
                break

    def cut(limit_start: int) -> None:
        """Windows whose samples are all in ``buf`` and that start before ``limit_start``."""
        nonlocal next_start, buf, offset
        available = offset + buf.shape[0] - window          # last start whose window is complete
        last = min(available, limit_start - 1)
        if last >= next_start:
            count = (last - next_start) // hop_n + 1
            rel = next_start - offset
            view = np.lib.stride_tricks.sliding_window_view(buf[rel:], window)[::hop_n][:count]
            pending.append(view.copy())
            next_start += count * hop_n
        drop = next_start - offset
        if drop > 0:
            buf = buf[drop:]
            offset += drop

    limit_start = 2**62
    for block in stream.blocks:
        buf = np.concatenate([buf, block]) if buf.size else block
        produced += block.shape[0]
        cut(limit_start)
        while sum(p.shape[0] for p in pending) >= batch:
            flush()
            if should_stop is not None and should_stop():
                stopped = True
                break
        if stopped:
            break
        if progress is not None:
            progress(min(0.99, produced / expected), f"{produced / rate:,.0f} s of {stream.seconds:,.0f} s")
    length = produced
    if not stopped:
        starts_all = window_starts(length, window, hop_n, centred=centred) + pad
        end_start = int(starts_all[-1]) + 1
        tail = max(0, end_start - 1 + window - (offset + buf.shape[0]))
        buf = np.concatenate([buf, np.zeros(tail, np.float32)])
        cut(end_start)
    flush(final=True)
    out = np.concatenate(probs) if probs else np.zeros((0, card.num_classes), np.float32)
    n = out.shape[0]
    starts = (np.arange(n) * hop_n - pad) / rate
    if progress is not None:
        progress(1.0, "done")
    return Timeline(starts=starts, ends=starts + window / rate, probs=out.astype(np.float32),
                    labels=tuple(card.labels), rate=rate, duration=length / rate, hop=hop_n / rate,
                    multi_label=bool(card.multi_label), centred=centred, name=stream.name,
                    meta={"model": card.name, "stopped": stopped, "windows": n},
                    levels=np.concatenate(levels).astype(np.float32) if levels else np.zeros(0, np.float32))


def bench_scan(model, source, *, hop: float | None = None, batch: int = 64, repeats: int = 3) -> dict:
    """Scan time against the model-only floor: the same windows, already cut and in memory, through the model
    in the same batches under ``inference_mode``. Scans and floors alternate ``repeats`` times; the fastest
    of each is kept (the machine's other load inflates both).

    Returns:
        ``{"windows", "scan_s", "floor_s", "ratio", "seconds"}`` (``ratio`` = scan / floor).
    """
    import time

    card = model.card
    rate, window = int(card.sample_rate), int(card.num_samples)
    scans, floors = [], []
    timeline = None
    for _ in range(int(repeats)):
        started = time.perf_counter()
        timeline = scan(model, source, hop=hop, batch=batch)
        scans.append(time.perf_counter() - started)
        hop_n = int(round(timeline.hop * rate))
        pad = window // 2
        wave = np.pad(read_span(source, rate, 0, timeline.duration), (pad, window))
        starts = window_starts(int(round(timeline.duration * rate)), window, hop_n) + pad
        windows = torch.from_numpy(np.ascontiguousarray(
            np.lib.stride_tricks.sliding_window_view(wave, window)[starts]))
        device = model_device(model)
        started = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, windows.shape[0], batch):
                card.probabilities(model(windows[i:i + batch].to(device)).float()).cpu()
        floors.append(time.perf_counter() - started)
        del windows, wave
    return {"windows": len(timeline), "seconds": timeline.duration, "scan_s": min(scans), "floor_s": min(floors),
            "ratio": min(scans) / min(floors), "batch": batch, "hop_s": timeline.hop, "repeats": int(repeats)}


class ScanJob:
    """:func:`scan` in a background thread, with progress and cancel (for an app; no Streamlit here).

    Attributes:
        progress: fraction read so far.  stage: a short text.  timeline: the result when done.
        error: the one-sentence message of an :class:`~earmark.errors.EarmarkError`, if the scan failed.
    """

    def __init__(self, model, source, **options):
        import threading

        self.progress, self.stage = 0.0, "starting"
        self.timeline: Timeline | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(model, source, options), daemon=True)
        self._thread.start()

    def _run(self, model, source, options) -> None:
        from ..errors import EarmarkError

        def progress(fraction: float, stage: str) -> None:
            self.progress, self.stage = fraction, stage
        try:
            self.timeline = scan(model, source, progress=progress, should_stop=self._stop.is_set, **options)
        except EarmarkError as exc:
            self.error = str(exc)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        """Ask the scan to stop after the current batch (the windows so far are kept)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> "ScanJob":
        self._thread.join(timeout)
        return self
