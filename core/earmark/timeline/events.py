"""Events on a recording's time axis: the Event record, its file formats (CSV, Raven, Audacity) and matching against truth."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError





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
