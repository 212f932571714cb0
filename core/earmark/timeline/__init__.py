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

from .events import (Event, format_events, iou, match_events, read_events, write_audacity, write_events,
                     write_raven)
from .scan import ScanJob, Timeline, bench_scan, default_hop, scan, window_starts
from .stitch import CHEAP_METHODS, StitchedMap, explain_timeline, overlap_add
from .stream import BACKGROUND_LABELS, BLOCK_FRAMES, DEFAULT_MAX_RECORDING_S, _duration, max_recording_seconds, read_span

__all__ = ["BACKGROUND_LABELS", "BLOCK_FRAMES", "DEFAULT_MAX_RECORDING_S", "_duration", "CHEAP_METHODS", "Event", "ScanJob", "StitchedMap", "Timeline", "bench_scan",
           "default_hop", "explain_timeline", "format_events", "iou", "match_events", "max_recording_seconds",
           "overlap_add", "read_events", "read_span", "scan", "window_starts", "write_audacity", "write_events",
           "write_raven"]
