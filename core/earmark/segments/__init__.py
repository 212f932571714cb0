"""Segments as the unit of explanation: where they come from, how they are scored, how they sound.

``Segments`` (start, end, label) come from a file (:func:`load`: Praat TextGrid, Raven selection table,
Audacity label track, CSV ``start,end,label[,score]`` as written by a scan), from the recording itself
(:func:`detect`, energy-based) or from a fixed :func:`grid`. :func:`explain_segments` scores them
(occlusion, Shapley exact or sampled with a standard error, a fine map summed per segment, energy);
:func:`segment_sounds` plays each one alone, the recording without it, and the top-k only.

Example:
    >>> segs = load("words.TextGrid", tier="words")                       # doctest: +SKIP
    >>> e = explain_segments(model, x, segs, target=3, method="shapley")  # doctest: +SKIP
    >>> e.to_csv("segments.csv")                                           # doctest: +SKIP
"""

from .base import Segments, detect, frame_levels, from_events, grid
from .formats import FORMATS, load, parse, read_bytes
from .attribution import SEGMENT_EXPLAINERS, SegmentExplanation, explain_segments
from .listen import SegmentSound, segment_sounds, sounds_for

__all__ = ["FORMATS", "SEGMENT_EXPLAINERS", "SegmentExplanation", "SegmentSound", "Segments", "detect",
           "explain_segments", "frame_levels", "from_events", "grid", "load", "parse", "read_bytes", "segment_sounds", "sounds_for"]
