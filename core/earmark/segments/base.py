"""Segments: labelled time spans of a recording, the unit of segment-level explanation.

A :class:`Segments` holds ``n`` spans (start, end in seconds, a label each, optionally a score read from an
event table). A segment is a mask over time: :meth:`Segments.masks` turns the spans into (n, L) sample masks
that the segment explainers combine into coalitions and score through the probe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError


@dataclass(frozen=True, eq=False)
class Segments:
    """``n`` labelled spans of a recording, sorted by start.

    Args:
        start: (n,) start times in seconds, ≥ 0.
        end: (n,) end times in seconds, each > its start.
        labels: n labels (strings; words, digits, call types).
        scores: (n,) optional scores that came with the spans (a scan's event scores), else ``None``.

    Raises:
        ConfigError: lengths differ, times are not finite, a start is negative or an end not after its start.

    Example:
        >>> s = Segments([0.5, 0.0], [1.0, 0.4], ["b", "a"])
        >>> s.labels, s.start.tolist()
        (('a', 'b'), [0.0, 0.5])
    """

    start: np.ndarray
    end: np.ndarray
    labels: tuple[str, ...]
    scores: np.ndarray | None = None

    def __init__(self, start: Sequence[float], end: Sequence[float], labels: Sequence[str] | None = None,
                 scores: Sequence[float] | None = None):
        start_a = np.asarray(start, dtype=np.float64).reshape(-1)
        end_a = np.asarray(end, dtype=np.float64).reshape(-1)
        labels_t = tuple(str(i + 1) for i in range(len(start_a))) if labels is None else tuple(map(str, labels))
        if not (len(start_a) == len(end_a) == len(labels_t)):
            raise ConfigError(f"Segments need as many starts, ends and labels; got {len(start_a)}, {len(end_a)} "
                              f"and {len(labels_t)}.")
        score_a = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if score_a is not None and len(score_a) != len(start_a):
            raise ConfigError(f"Segments got {len(score_a)} scores for {len(start_a)} spans; give one per span.")
        if not (np.isfinite(start_a).all() and np.isfinite(end_a).all()):
            raise ConfigError("Segment times must be finite numbers of seconds.")
        if (start_a < 0).any():
            i = int(np.flatnonzero(start_a < 0)[0])
            raise ConfigError(f"Segment '{labels_t[i]}' starts at {start_a[i]:g} s; times must be ≥ 0.")
        if (end_a <= start_a).any():
            i = int(np.flatnonzero(end_a <= start_a)[0])
            raise ConfigError(f"Segment '{labels_t[i]}' ends ({end_a[i]:g} s) before it starts "
                              f"({start_a[i]:g} s); each end must come after its start.")
        order = np.argsort(start_a, kind="stable")
        object.__setattr__(self, "start", start_a[order])
        object.__setattr__(self, "end", end_a[order])
        object.__setattr__(self, "labels", tuple(labels_t[i] for i in order))
        object.__setattr__(self, "scores", None if score_a is None else score_a[order])

    def __len__(self) -> int:
        return len(self.start)

    def __repr__(self) -> str:
        spans = ", ".join(f"{l!r}@{s:.2f}-{e:.2f}" for l, s, e in zip(self.labels[:4], self.start, self.end))
        return f"Segments({len(self)}: {spans}{', …' if len(self) > 4 else ''})"

    @property
    def duration(self) -> np.ndarray:
        """(n,) lengths in seconds."""
        return self.end - self.start

    def within(self, seconds: float) -> "Segments":
        """The spans cut to ``[0, seconds]``; spans that start at or after ``seconds`` are dropped.

        Raises:
            ConfigError: no span lies inside the recording.
        """
        keep = self.start < seconds
        if not keep.any():
            raise ConfigError(f"No segment starts inside the recording ({seconds:g} s); the first starts at "
                              f"{self.start.min():g} s. Check that the segments belong to this recording.")
        idx = np.flatnonzero(keep)
        return Segments(self.start[idx], np.minimum(self.end[idx], seconds), [self.labels[i] for i in idx],
                        None if self.scores is None else self.scores[idx])

    def sample_bounds(self, rate: int, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """(n,) first and one-past-last sample of each span at ``rate`` Hz, inside ``[0, num_samples]``."""
        a = np.clip(np.round(self.start * rate), 0, num_samples).astype(np.int64)
        b = np.clip(np.round(self.end * rate), 0, num_samples).astype(np.int64)
        return a, np.maximum(b, np.minimum(a + 1, num_samples))

    def masks(self, rate: int, num_samples: int, *, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> Tensor:
        """(n, L) masks: 1 on each span's samples, 0 elsewhere."""
        a, b = self.sample_bounds(rate, num_samples)
        t = torch.arange(num_samples, device=device)
        lo = torch.as_tensor(a, device=device)[:, None]
        hi = torch.as_tensor(b, device=device)[:, None]
        return ((t >= lo) & (t < hi)).to(dtype)

    def rows(self) -> list[dict]:
        """One ``{"start", "end", "label"[, "score"]}`` dict per span, for tables."""
        out = []
        for i in range(len(self)):
            row = {"start": float(self.start[i]), "end": float(self.end[i]), "label": self.labels[i]}
            if self.scores is not None:
                row["score"] = float(self.scores[i])
            out.append(row)
        return out


def from_events(events) -> Segments:
    """Segments from a scan's events (objects with ``start``, ``end``, ``label`` and ``score``, such as
    ``earmark.timeline`` events), keeping their scores."""
    events = list(events)
    if not events:
        raise ConfigError("The scan found no events to explain; lower its threshold or give segments another way.")
    return Segments([e.start for e in events], [e.end for e in events], [e.label for e in events],
                    [getattr(e, "score", float("nan")) for e in events])


def grid(duration: float, width: float, *, hop: float | None = None) -> Segments:
    """Equal spans of ``width`` seconds covering ``[0, duration]`` (the last one shorter where it runs out).

    Args:
        duration: length of the recording in seconds.
        width: span length in seconds.
        hop: step between starts (default ``width``: adjacent, non-overlapping spans).

    Raises:
        ConfigError: a duration, width or hop that is not a positive number.

    Example:
        >>> grid(1.0, 0.25).start.tolist()
        [0.0, 0.25, 0.5, 0.75]
    """
    hop = width if hop is None else hop
    for name, value in (("duration", duration), ("width", width), ("hop", hop)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"The grid's {name} must be a positive number of seconds; got {value!r}.")
    count = max(1, int(math.ceil((duration - 1e-9) / hop)))
    starts = np.arange(count) * hop
    starts = starts[starts < duration]
    ends = np.minimum(starts + width, duration)
    return Segments(starts, ends, [f"{s:.2f}-{e:.2f}" for s, e in zip(starts, ends)])


def frame_levels(wave: Tensor | np.ndarray, rate: int, frame: float) -> np.ndarray:
    """(L,) waveform → (frames,) RMS level in dB of non-overlapping frames of ``frame`` seconds."""
    x = np.asarray(wave.detach().cpu() if isinstance(wave, Tensor) else wave, dtype=np.float64).reshape(-1)
    hop = max(1, int(round(frame * rate)))
    n = max(1, int(math.ceil(len(x) / hop)))
    padded = np.zeros(n * hop)
    padded[:len(x)] = x
    return 10 * np.log10((padded.reshape(n, hop) ** 2).mean(axis=1) + 1e-12)


def detect(wave: Tensor | np.ndarray, rate: int, *, threshold_db: float = -30.0, floor_margin_db: float = 8.0,
           min_gap: float = 0.1, min_len: float = 0.05, frame: float = 0.02) -> Segments:
    """Energy-based activity segmentation: spans where the level stands out.

    A frame of ``frame`` seconds is active when its RMS level is both within ``threshold_db`` of the loudest
    frame and at least ``floor_margin_db`` above the noise floor (the 10th percentile of the frame levels).
    Active runs closer than ``min_gap`` seconds are joined; runs shorter than ``min_len`` are dropped.

    Args:
        wave: (L,) waveform.  rate: Hz.
        threshold_db: the level (dB, ≤ 0) relative to the loudest frame above which a frame counts.
        floor_margin_db: dB above the noise floor a frame must reach (0 turns this test off).
        min_gap: seconds; shorter pauses do not split a segment.
        min_len: seconds; shorter segments are dropped.
        frame: frame length in seconds.

    Returns:
        :class:`Segments` labelled ``"1"``, ``"2"``, … in time order.

    Raises:
        ConfigError: a bad setting, or nothing in the recording stands out (silence, steady noise).
    """
    if not threshold_db <= 0:
        raise ConfigError(f"threshold_db is a level below the loudest frame and must be ≤ 0; got {threshold_db}.")
    if frame <= 0 or min_gap < 0 or min_len < 0 or floor_margin_db < 0:
        raise ConfigError("detect needs frame > 0 and min_gap, min_len, floor_margin_db ≥ 0 (seconds, dB).")
    levels = frame_levels(wave, rate, frame)
    active = (levels >= levels.max() + threshold_db) & (levels >= np.percentile(levels, 10) + floor_margin_db)
    if not active.any():
        raise ConfigError("No sound stands out from the background in this recording (nothing "
                          f"{floor_margin_db:g} dB above its floor); give segments from a file or a grid instead.")
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    runs = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
    merged = [list(runs[0])]
    for a, b in runs[1:]:
        if (a - merged[-1][1]) * frame < min_gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    total = len(np.asarray(wave).reshape(-1)) / rate if not isinstance(wave, Tensor) else wave.numel() / rate
    spans = [(a * frame, min(b * frame, total)) for a, b in merged if (b - a) * frame >= min_len]
    if not spans:
        raise ConfigError(f"Every active stretch is shorter than min_len ({min_len:g} s); lower min_len.")
    return Segments([s for s, _ in spans], [e for _, e in spans])


__all__ = ["Segments", "detect", "frame_levels", "from_events", "grid"]
