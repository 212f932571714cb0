"""Recordings, not windows: slide a model along a whole recording, keep its answers over time, find events.

``scan(model, source)`` decodes the recording **block by block** (libsndfile blocks, resampled to the
model's rate by a streaming resampler), cuts it into the model's windows one hop apart, runs them through
the model in batches under ``torch.inference_mode`` and keeps, per window, the probability of every class
(softmax or sigmoid, per the model's card). Memory stays bounded by a block, a window and a batch, whatever
the length; the longest recording accepted is ``$EARMARK_MAX_RECORDING_S`` seconds (default 4 hours).

By default windows are **centred**: window ``k`` is centred on ``k · hop`` seconds (zeros pad the
recording's two ends), so the track of a class at time ``t`` is the model's answer for the window around
``t``, and an event spans the moments whose windows answered it (each window owns the hop around its
centre). ``centred=False`` starts the first window at 0 and an event then spans its windows from the first
one's start to the last one's end.

A :class:`Timeline` gives events (:meth:`Timeline.events`: windows over a threshold merged per class; for
softmax models one class per window, the most probable) and writes ``timeline.csv``, ``events.csv``
(``start,end,label,score``), a Raven selection table, an Audacity label track and ``timeline.png``.
:func:`explain_timeline` stitches the maps of consecutive windows (cheap explainers, time domain) by
overlap-add into one map over the whole recording.

Example:
    >>> tl = scan(model, "call.wav", hop=0.1)                         # doctest: +SKIP
    >>> [(e.start, e.end, e.label) for e in tl.events(0.5)][:2]       # doctest: +SKIP
    [(1.05, 1.45, '5'), (2.5, 2.8, '8')]
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import soundfile as sf
import soxr
import torch

from .audio import AudioSource, MAX_CHANNELS, check_header
from .errors import AudioError, ClipTooLong, ConfigError

ProgressFn = Callable[[float, str], None]

#: Longest recording accepted by :func:`scan`, in seconds (``$EARMARK_MAX_RECORDING_S`` overrides it).
DEFAULT_MAX_RECORDING_S = 4 * 3600.0
#: Frames decoded per block.
BLOCK_FRAMES = 1 << 16
#: Labels that mean "nothing here" and make no events unless asked for.
BACKGROUND_LABELS = ("background",)


def max_recording_seconds() -> float:
    """The server's cap on a recording's length: ``$EARMARK_MAX_RECORDING_S`` or 4 hours.

    Raises:
        ConfigError: the variable is set but not a positive number.
    """
    text = os.environ.get("EARMARK_MAX_RECORDING_S")
    if not text:
        return DEFAULT_MAX_RECORDING_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"EARMARK_MAX_RECORDING_S must be a positive number of seconds; got {text!r}.")
    return value


@dataclass(frozen=True)
class Event:
    """A stretch of the recording where the model answers ``label``: ``start``/``end`` in seconds,
    ``score`` the highest probability of ``label`` among its windows."""

    start: float
    end: float
    label: str
    score: float

    @property
    def duration(self) -> float:
        return self.end - self.start


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
        from .downsample import block_factor, pool_axis, pool_centres

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


def format_events(events: Sequence[Event], fmt: str = "csv", *, low_hz: float = 0.0, high_hz: float | None = None) -> str:
    """The events as text: ``"csv"`` (``start,end,label,score``), ``"raven"`` (a Raven selection table) or
    ``"audacity"`` (an Audacity label track).

    Raises:
        ConfigError: an unknown format.
    """
    if fmt == "csv":
        buffer = io.StringIO()
        w = csv.writer(buffer, lineterminator="\n")
        w.writerow(["start", "end", "label", "score"])
        for e in events:
            w.writerow([f"{e.start:.3f}", f"{e.end:.3f}", e.label, f"{e.score:.4f}"])
        return buffer.getvalue()
    if fmt == "raven":
        high = "" if high_hz is None else f"{high_hz:.1f}"
        lines = ["Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tLabel\tScore"]
        lines += [f"{i}\tSpectrogram 1\t1\t{e.start:.4f}\t{e.end:.4f}\t{low_hz:.1f}\t{high}\t{e.label}\t{e.score:.4f}"
                  for i, e in enumerate(events, 1)]
        return "\n".join(lines) + "\n"
    if fmt == "audacity":
        return "".join(f"{e.start:.6f}\t{e.end:.6f}\t{e.label} ({e.score:.2f})\n" for e in events)
    raise ConfigError(f"Unknown events format '{fmt}'; use csv, raven or audacity.")


def write_events(path: str | Path, events: Sequence[Event]) -> Path:
    """``events.csv`` with exactly the columns ``start,end,label,score`` (seconds, 3 decimals)."""
    path = Path(path)
    path.write_text(format_events(events, "csv"))
    return path


def read_events(path: str | Path) -> list[Event]:
    """Read ``events.csv`` (``start,end,label,score``).

    Raises:
        ConfigError: the columns are not ``start,end,label,score``.
    """
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["start", "end", "label", "score"]:
            raise ConfigError(f"{Path(path).name} is not an events table: its columns are {reader.fieldnames}, "
                              "not start,end,label,score.")
        return [Event(float(r["start"]), float(r["end"]), r["label"], float(r["score"])) for r in reader]


def write_raven(path: str | Path, events: Sequence[Event], *, low_hz: float = 0.0, high_hz: float | None = None) -> Path:
    """A Raven selection table (tab-separated; ``Begin Time (s)``, ``End Time (s)``, band, label, score)."""
    path = Path(path)
    path.write_text(format_events(events, "raven", low_hz=low_hz, high_hz=high_hz))
    return path


def write_audacity(path: str | Path, events: Sequence[Event]) -> Path:
    """An Audacity label track: ``start<TAB>end<TAB>label (score)`` per line."""
    path = Path(path)
    path.write_text(format_events(events, "audacity"))
    return path


def iou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Intersection over union of two time spans (0 when they do not meet)."""
    inter = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = max(a_end, b_end) - min(a_start, b_start)
    return inter / union if union > 0 else 0.0


def match_events(events: Sequence[Event], truth: Sequence, *, min_iou: float = 0.5) -> dict:
    """Score events against known words (anything with ``start``, ``end``, ``label``).

    Each true word is matched to the event of highest IoU; it is *found* when that IoU is at least ``min_iou``
    and *named* when it is found by an event of its own label. An event that overlaps no word is a false event.

    Returns:
        ``{"words", "found", "named", "found_share", "named_share", "events", "false_events", "mean_iou"}``
        (shares of all words).
    """
    found = named = 0
    ious = []
    for w in truth:
        scores = [iou(e.start, e.end, w.start, w.end) for e in events]
        best = int(np.argmax(scores)) if scores else -1
        value = scores[best] if scores else 0.0
        ious.append(value)
        if value >= min_iou:
            found += 1
            named += int(str(events[best].label) == str(w.label))
    false = sum(all(iou(e.start, e.end, w.start, w.end) == 0 for w in truth) for e in events)
    n = max(1, len(truth))
    return {"words": len(truth), "found": found, "named": named, "found_share": found / n, "named_share": named / n,
            "events": len(events), "false_events": int(false), "mean_iou": float(np.mean(ious)) if ious else 0.0}


# ---- streamed decoding -----------------------------------------------------------------------------------
@dataclass
class _Stream:
    """A decoded recording, block by block, at the model's rate."""

    blocks: Iterator[np.ndarray]
    seconds: float           # length of the recording (from the header)
    name: str


def _open(source, rate: int, block: int, max_seconds: float) -> _Stream:
    if isinstance(source, tuple) and len(source) == 2 and not isinstance(source[0], (str, os.PathLike)):
        wave, in_rate = source
        wave = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
        if wave.ndim == 2:
            wave = wave.mean(axis=0 if wave.shape[0] <= MAX_CHANNELS and wave.shape[0] < wave.shape[1] else 1)
        if wave.ndim != 1 or wave.shape[0] == 0:
            raise AudioError("A recording given as (wave, rate) needs a non-empty 1-D (or channels × samples) wave.")
        in_rate = int(in_rate)
        check_header("recording", in_rate, 1, 0)
        _check_length(wave.shape[0] / in_rate, max_seconds, "The recording")

        def gen():
            for i in range(0, wave.shape[0], block):
                yield np.asarray(wave[i:i + block], np.float32)
        return _Stream(_resampled(gen(), in_rate, rate), wave.shape[0] / in_rate, "recording")
    name = "recording"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No audio file at '{path}'. Check the path.")
        name, handle = path.stem, str(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        handle = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        handle, name = source, Path(str(getattr(source, "name", "") or "upload")).stem or "upload"
        if hasattr(source, "seek"):
            source.seek(0)
    else:
        raise AudioError(f"Cannot read a recording from a {type(source).__name__}; give a path, bytes, "
                         "an open binary file or (wave, rate).")
    try:
        f = sf.SoundFile(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        detail = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
        raise AudioError(f"Could not decode '{name}' as a recording ({detail}). Long recordings are read as "
                         "WAV, FLAC, OGG or MP3: convert the file to FLAC or WAV and try again.") from None
    in_rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
    try:
        check_header(name, in_rate, channels, 0)
        _check_length(frames / in_rate, max_seconds, f"'{name}'")
    except AudioError:
        f.close()
        raise
    if frames <= 0:
        f.close()
        raise AudioError(f"'{name}' decodes to no samples: the file holds a header but no audio.")

    def gen():
        with f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    return
                mono = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
                if not np.isfinite(mono).all():
                    raise AudioError(f"'{name}' contains NaN or infinite samples; re-export it as 16-bit WAV.")
                yield np.ascontiguousarray(mono)
    return _Stream(_resampled(gen(), in_rate, rate), frames / in_rate, name)


def _check_length(seconds: float, max_seconds: float, what: str) -> None:
    if seconds > max_seconds:
        raise ClipTooLong(f"{what} is {seconds / 60:,.1f} minutes long; this server scans at most "
                          f"{max_seconds / 60:,.1f} minutes (EARMARK_MAX_RECORDING_S). Split the recording "
                          "and scan the parts.")


def _resampled(blocks: Iterator[np.ndarray], in_rate: int, out_rate: int) -> Iterator[np.ndarray]:
    """The blocks at ``out_rate`` through one streaming soxr resampler (no edge effects between blocks)."""
    if in_rate == out_rate:
        yield from blocks
        return
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
    for b in blocks:
        y = stream.resample_chunk(b, last=False)
        if y.size:
            yield y
    y = stream.resample_chunk(np.zeros(0, np.float32), last=True)
    if y.size:
        yield y


# ---- the scan ------------------------------------------------------------------------------------------------
def _device(model) -> torch.device:
    """Where the model computes (:attr:`EarmarkModel.device`; the CPU for a plain module without tensors)."""
    device = getattr(model, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")


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
    device = _device(model)
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
        device = _device(model)
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
        from .errors import EarmarkError

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


# ---- explained timeline --------------------------------------------------------------------------------------
CHEAP_METHODS = ("saliency", "ig", "energy", "smoothgrad")


def read_span(source: AudioSource | tuple, rate: int, start: float, stop: float, *,
              max_seconds: float | None = None) -> np.ndarray:
    """Samples of ``[start, stop)`` seconds of a recording at ``rate``, zero outside it (streamed: only the
    blocks up to ``stop`` are decoded, and only the span is kept)."""
    limit = max_recording_seconds() if max_seconds is None else float(max_seconds)
    stream = _open(source, rate, BLOCK_FRAMES, limit)
    a, b = int(round(start * rate)), int(round(stop * rate))
    out = np.zeros(b - a, np.float32)
    pos = 0
    for block in stream.blocks:
        lo, hi = max(a, pos), min(b, pos + block.shape[0])
        if hi > lo:
            out[lo - a:hi - a] = block[lo - pos:hi - pos]
        pos += block.shape[0]
        if pos >= b:
            break
    return out


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
        from .downsample import block_factor, pool_axis, pool_centres

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
    from .explainers import explain
    from .transforms import get_transform

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
    x = torch.from_numpy(windows).to(_device(model))
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


def _duration(source, rate: int) -> float:
    stream = _open(source, rate, BLOCK_FRAMES, max_recording_seconds())
    stream.blocks.close()
    return stream.seconds


__all__ = ["BACKGROUND_LABELS", "ScanJob", "bench_scan", "default_hop", "CHEAP_METHODS", "Event", "StitchedMap", "Timeline", "explain_timeline",
           "format_events", "iou", "match_events", "max_recording_seconds", "overlap_add", "read_events", "read_span", "scan", "window_starts",
           "write_audacity", "write_events", "write_raven"]
