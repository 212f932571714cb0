"""Sequences of spoken digits with known word boundaries: the data of the ``digits-present`` model.

A sequence is 2–4 FSDD words (distinct digits, each from a random speaker of the chosen split), trimmed to
the spoken part, given a random gain, separated by random pauses and laid at a random offset into a
4-second window at 8 kHz over background noise at a random SNR. The synthesis knows where every word is,
so each sequence comes with its :class:`~earmark.segments.Segments` (one per word, labelled by the digit):
the ground truth for word-level explanations (for class *d*, the word that is *d* should carry the credit).

Every draw comes from an explicit :class:`numpy.random.Generator`; the same seed gives the same sequences.
FSDD (Jackson et al., CC BY-SA 4.0) is read from the folder the caller names; nothing is copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from ..errors import DataError
from ..segments import Segments
from .fsdd import SAMPLE_RATE, Split, list_recordings

#: Window of the ``digits-present`` model: 4 s at 8 kHz.
WINDOW = 4 * SAMPLE_RATE
#: Frame (samples) of the energy trim of each word.
TRIM_FRAME = 128


@dataclass(frozen=True)
class Word:
    """One FSDD recording trimmed to its spoken part: ``wave`` (n,) float32, its ``digit`` and ``speaker``."""

    wave: np.ndarray
    digit: int
    speaker: str


@dataclass(frozen=True)
class DigitSequence:
    """One synthesised sequence: ``wave`` (WINDOW,) float32, ``segments`` (one per word, label = digit),
    ``present`` (10,) 0/1 float32 (which digits are spoken)."""

    wave: np.ndarray
    segments: Segments
    present: np.ndarray

    @property
    def digits(self) -> list[int]:
        return [int(label) for label in self.segments.labels]


def trim(wave: np.ndarray, *, floor_db: float = -35.0, frame: int = TRIM_FRAME) -> np.ndarray:
    """(n,) → the span from the first to the last frame whose RMS is within ``floor_db`` of the loudest frame."""
    n = len(wave) // frame
    if n < 2:
        return wave
    rms = np.sqrt((wave[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > floor_db)
    return wave[loud[0] * frame:(loud[-1] + 1) * frame]


def load_words(root: str | Path | None, split: Split = "train") -> list[Word]:
    """Every FSDD recording of ``split``, trimmed to its spoken part (see :func:`trim`).

    Raises:
        DataError: the folder holds no FSDD recordings, or a file is not 8 kHz.
    """
    words = []
    for rec in list_recordings(root, split=split):
        data, rate = sf.read(str(rec.path), dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise DataError(f"{rec.path} is at {rate} Hz; FSDD recordings are {SAMPLE_RATE} Hz.")
        words.append(Word(trim(data.mean(axis=1)), rec.digit, rec.speaker))
    return words


def _index(words: Sequence[Word]) -> list[list[int]]:
    by_digit: list[list[int]] = [[] for _ in range(10)]
    for i, w in enumerate(words):
        by_digit[w.digit].append(i)
    if any(not ids for ids in by_digit):
        raise DataError("The word list lacks some digit 0-9; load a whole FSDD split.")
    return by_digit


def synthesize(words: Sequence[Word], rng: np.random.Generator, *, count: tuple[int, int] = (2, 4),
               pause: tuple[float, float] = (0.1, 0.8), snr_db: tuple[float, float] = (10.0, 40.0),
               gain_db: float = 6.0, window: int = WINDOW, by_digit: list[list[int]] | None = None
               ) -> DigitSequence:
    """One sequence of ``count`` (inclusive range) distinct digits laid into ``window`` samples.

    Args:
        words: trimmed recordings (:func:`load_words`).
        rng: the generator of every draw.
        count: the least and most words.
        pause: range of the pauses between words, in seconds.
        snr_db: range of the SNR of the white background noise against the words' mean power.
        gain_db: each word's gain is drawn in [−gain_db, +gain_db] dB.
        window: samples of the output.
    """
    by_digit = by_digit or _index(words)
    for _ in range(100):
        k = int(rng.integers(count[0], count[1] + 1))
        digits = rng.choice(10, size=k, replace=False)
        parts = [words[int(rng.choice(by_digit[d]))].wave for d in digits]
        gaps = rng.uniform(*pause, size=k - 1) * SAMPLE_RATE
        total = sum(len(p) for p in parts) + int(gaps.sum())
        if total <= window:
            break
    else:                                                         # pragma: no cover - words of 1 s at most
        raise DataError("Could not fit the words into the window; use a longer window or fewer words.")
    wave = np.zeros(window, np.float32)
    at = int(rng.integers(0, window - total + 1))
    starts, ends = [], []
    for i, part in enumerate(parts):
        gain = 10 ** (rng.uniform(-gain_db, gain_db) / 20)
        wave[at:at + len(part)] += gain * part
        starts.append(at)
        ends.append(at + len(part))
        at += len(part) + (int(gaps[i]) if i < k - 1 else 0)
    speech = np.concatenate([wave[s:e] for s, e in zip(starts, ends)])
    power = float((speech ** 2).mean()) + 1e-12
    snr = rng.uniform(*snr_db)
    wave += rng.standard_normal(window).astype(np.float32) * np.sqrt(power / 10 ** (snr / 10))
    present = np.zeros(10, np.float32)
    present[digits] = 1
    seg = Segments(np.array(starts) / SAMPLE_RATE, np.array(ends) / SAMPLE_RATE, [str(int(d)) for d in digits])
    return DigitSequence(wave.astype(np.float32), seg, present)


def synthesize_many(words: Sequence[Word], n: int, *, seed: int, **kwargs) -> list[DigitSequence]:
    """``n`` sequences from ``np.random.default_rng(seed)`` (see :func:`synthesize` for ``kwargs``)."""
    rng = np.random.default_rng(seed)
    by_digit = _index(words)
    return [synthesize(words, rng, by_digit=by_digit, **kwargs) for _ in range(n)]


__all__ = ["DigitSequence", "WINDOW", "Word", "load_words", "synthesize", "synthesize_many", "trim"]
