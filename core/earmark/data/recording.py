"""A long recording with its truth: a "phone number" of FSDD test-split digits with pauses and noise.

:func:`make_recording` places 10–20 spoken digits of several speakers (FSDD's official **test** split, so
no model trained on the training split has heard them) on a bed of background noise, with pauses between
them, and returns the waveform and the word times. :func:`cached_recording` writes it once into a cache
folder (``recording.wav``, ``words.csv`` with ``start,end,label,speaker,source``, ``NOTICE.txt``); FSDD
audio is never committed to the repository, so the example is generated on demand from ``$EARMARK_DATA``.

A word's time span is its *spoken* part: the FSDD file's leading and trailing near-silence is cut by
:func:`speech_extent` (frames more than 35 dB under the file's loudest frame), the same rule the
scan model's training labels use.

The background makers (:func:`background`) are shared with the training of the bundled scan model:
white, pink and brown noise, mains hum, clicks and breath-like noise bursts.

Example:
    >>> rec = make_recording(root, seed=0)              # doctest: +SKIP
    >>> rec.wave.shape[0] / rec.sample_rate, len(rec.words)   # doctest: +SKIP
    (40.0, 15)
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import DataError
from .fsdd import CREDIT, SAMPLE_RATE, default_root, list_recordings

#: Frames under the loudest frame by more than this many dB are not speech (see :func:`speech_extent`).
EXTENT_DB = 35.0
NOISE_KINDS = ("white", "pink", "brown", "hum", "clicks", "breath")


@dataclass(frozen=True)
class Word:
    """One spoken digit in a recording: ``start``/``end`` in seconds of its spoken part."""

    start: float
    end: float
    label: str
    speaker: str
    source: str


@dataclass(frozen=True)
class GeneratedRecording:
    """``wave`` (L,) float32 at ``sample_rate`` and the words in it, in time order."""

    wave: np.ndarray
    sample_rate: int
    words: tuple[Word, ...]

    @property
    def duration(self) -> float:
        return self.wave.shape[0] / self.sample_rate


def speech_extent(wave: np.ndarray, rate: int = SAMPLE_RATE, *, db: float = EXTENT_DB) -> tuple[int, int]:
    """Sample range ``[start, stop)`` of the spoken part of a short clip.

    Frames of 20 ms (hop 10 ms) whose RMS is within ``db`` dB of the loudest frame count as speech; the
    range runs from the first to the last of them.

    Args:
        wave: (L,) clip.  rate: Hz.  db: how far under the loudest frame speech may be.

    Returns:
        ``(start, stop)`` in samples, ``0 ≤ start < stop ≤ L`` (the whole clip when it is too short to frame).
    """
    wave = np.asarray(wave, np.float32)
    frame, hop = int(0.02 * rate), int(0.01 * rate)
    if wave.shape[0] < frame:
        return 0, int(wave.shape[0])
    n = 1 + (wave.shape[0] - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt((wave[idx] ** 2).mean(axis=1) + 1e-12)
    level = 20 * np.log10(rms)
    loud = np.flatnonzero(level >= level.max() - db)
    start, stop = int(loud[0] * hop), int(min(wave.shape[0], loud[-1] * hop + frame))
    return start, max(stop, start + 1)


# ---- backgrounds ------------------------------------------------------------------------------------
def _coloured(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power ∝ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec = spec / f ** (exponent / 2)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def background(kind: str, n: int, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) background sound of one kind at roughly unit RMS (clicks and breaths: unit peak level).

    Args:
        kind: one of :data:`NOISE_KINDS`.  n: samples.  rng: the source of every draw.  rate: Hz.
    """
    if kind == "white":
        return rng.standard_normal(n).astype(np.float32)
    if kind in ("pink", "brown"):
        return _coloured(n, 1.0 if kind == "pink" else 2.0, rng)
    t = np.arange(n) / rate
    if kind == "hum":
        base = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
                for k in (1, 2, 3, 5))
        return (x / (np.std(x) + 1e-12)).astype(np.float32)
    if kind == "clicks":
        x = np.zeros(n, np.float32)
        count = rng.poisson(max(1.0, 3.0 * n / rate)) + 1
        decay = np.exp(-np.arange(int(0.004 * rate)) / (0.0008 * rate))
        for pos in rng.integers(0, n, count):
            burst = decay * rng.standard_normal(decay.shape[0]) * rng.uniform(0.3, 1.0)
            stop = min(n, pos + burst.shape[0])
            x[pos:stop] += burst[:stop - pos]
        return x
    if kind == "breath":
        x = np.zeros(n, np.float32)
        count = max(1, rng.poisson(max(1.0, 0.8 * n / rate)))
        for _ in range(count):
            length = int(rng.uniform(0.25, 0.7) * rate)
            spec = np.fft.rfft(rng.standard_normal(length))
            freqs = np.fft.rfftfreq(length, 1 / rate)
            low, high = rng.uniform(200, 800), rng.uniform(1500, 3800)
            spec[(freqs < low) | (freqs > high)] *= 0.05
            burst = np.fft.irfft(spec, length) * np.hanning(length) ** rng.uniform(1, 3)
            burst /= np.abs(burst).max() + 1e-12
            pos = int(rng.integers(-length // 2, max(1, n - length // 2)))
            lo, hi = max(0, pos), min(n, pos + length)
            if hi > lo:
                x[lo:hi] += burst[lo - pos:hi - pos] * rng.uniform(0.3, 1.0)
        return x
    raise DataError(f"Unknown background '{kind}'; choose one of: {', '.join(NOISE_KINDS)}.")


# ---- the recording ----------------------------------------------------------------------------------
def _read(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise DataError(f"{path} is at {rate} Hz; FSDD recordings are {SAMPLE_RATE} Hz.")
    return data.mean(axis=1)


def make_recording(root: str | Path | None = None, *, seed: int = 0, digits: int = 15, seconds: float | None = 40.0,
                   pause: tuple[float, float] = (0.9, 2.8), snr_db: float = 20.0,
                   noise: tuple[str, ...] = ("pink", "breath", "clicks")) -> GeneratedRecording:
    """A "phone number" of FSDD test-split digits from several speakers with pauses and background noise.

    Args:
        root: the FSDD folder (default ``$EARMARK_DATA``).
        seed: picks the digits, speakers, files, pauses, levels and noise (same seed, same recording).
        digits: how many spoken digits.
        seconds: the recording's length: the pauses (drawn from ``pause``) are scaled to fill it, but never
            below 0.3 of their drawn length; ``None`` keeps them as drawn.
        pause: (shortest, longest) silence between spoken parts in seconds.
        snr_db: level of the continuous noise under the median word level, in dB.
        noise: background kinds mixed in (the first continuous, the rest sparse), see :func:`background`.

    Returns:
        The recording at 8 kHz (peak ≤ 0.9) and its words (spoken parts, in seconds).

    Raises:
        DataError: no FSDD folder, or fewer than 2 speakers in its test split.
    """
    if not 1 <= int(digits) <= 200:
        raise DataError(f"A recording holds 1 to 200 digits; got {digits}.")
    recs = list_recordings(root if root is not None else default_root(), split="test")
    rng = np.random.default_rng(seed)
    speakers = sorted({r.speaker for r in recs})
    if len(speakers) < 2:
        raise DataError("The FSDD test split has fewer than 2 speakers; a recording needs several.")
    chosen = list(rng.choice(speakers, size=min(4, len(speakers)), replace=False))
    rate = SAMPLE_RATE
    spoken_parts = []
    for i in range(int(digits)):
        speaker = chosen[i % len(chosen)] if rng.random() < 0.7 else rng.choice(chosen)
        digit = int(rng.integers(0, 10))
        pool = [r for r in recs if r.speaker == speaker and r.digit == digit]
        rec = pool[int(rng.integers(0, len(pool)))]
        wave = _read(rec.path)
        start, stop = speech_extent(wave, rate)
        spoken = wave[start:stop]
        spoken = spoken * (10 ** (rng.uniform(-6, 6) / 20) * 0.1 / (np.sqrt((spoken ** 2).mean()) + 1e-9))
        spoken_parts.append((spoken, digit, speaker, rec.path.name))
    edges = rng.uniform(0.5, 1.2, 2) * rate                     # before the first word, after the last
    gaps = rng.uniform(*pause, max(0, int(digits) - 1)) * rate
    if seconds is not None and gaps.size:
        room = seconds * rate - edges.sum() - sum(p[0].shape[0] for p in spoken_parts)
        gaps = gaps * max(0.3, room / gaps.sum())
    pieces, words, cursor = [], [], int(edges[0])
    for i, (spoken, digit, speaker, source) in enumerate(spoken_parts):
        pieces.append((cursor, spoken))
        words.append(Word(cursor / rate, (cursor + spoken.shape[0]) / rate, str(digit), str(speaker), source))
        cursor += spoken.shape[0] + (int(gaps[i]) if i < gaps.size else 0)
    total = int(round(seconds * rate)) if seconds is not None else cursor + int(edges[1])
    total = max(total, cursor + int(edges[1]))
    out = np.zeros(total, np.float32)
    for pos, spoken in pieces:
        out[pos:pos + spoken.shape[0]] += spoken
    speech_rms = float(np.median([np.sqrt((s ** 2).mean()) for _, s in pieces]))
    bed = background(noise[0], total, rng, rate) * speech_rms * 10 ** (-snr_db / 20)
    for kind in noise[1:]:
        bed += background(kind, total, rng, rate) * speech_rms * rng.uniform(0.3, 0.8)
    out += bed
    out *= 0.9 / max(0.9, float(np.abs(out).max()))
    return GeneratedRecording(out.astype(np.float32), rate, tuple(words))


def write_words(path: str | Path, words: tuple[Word, ...] | list[Word]) -> Path:
    """Write word times as CSV: ``start,end,label,speaker,source`` (seconds, 3 decimals)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start", "end", "label", "speaker", "source"])
        for word in words:
            w.writerow([f"{word.start:.3f}", f"{word.end:.3f}", word.label, word.speaker, word.source])
    return path


def read_words(path: str | Path) -> tuple[Word, ...]:
    """Read a CSV written by :func:`write_words` (``speaker``/``source`` may be missing)."""
    with Path(path).open(newline="") as f:
        return tuple(Word(float(r["start"]), float(r["end"]), r["label"], r.get("speaker", ""),
                          r.get("source", "")) for r in csv.DictReader(f))


NOTICE = ("This recording is made by Earmark (earmark.data.recording) from spoken digits of the {credit}. "
          "It is shared under the same licence, CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/); "
          "changes: words cut to their spoken part, levels changed, placed with pauses on generated noise. "
          "The source files are listed in words.csv.\n")


def cache_dir() -> Path:
    """``$EARMARK_CACHE/recordings`` (default ``~/.cache/earmark/recordings``)."""
    base = os.environ.get("EARMARK_CACHE") or Path.home() / ".cache" / "earmark"
    return Path(base).expanduser() / "recordings"


def cached_recording(root: str | Path | None = None, *, seed: int = 0, digits: int = 15, seconds: float = 40.0,
                     folder: str | Path | None = None) -> tuple[Path, Path]:
    """The phone-number recording of :func:`make_recording` as files, generated once per seed and length.

    Returns:
        ``(recording.wav, words.csv)`` in ``folder`` (default :func:`cache_dir`\\ ``/phone-<seed>-<digits>-<seconds>s``),
        with ``NOTICE.txt`` (the CC BY-SA credit) beside them.
    """
    folder = Path(folder) if folder is not None else cache_dir() / f"phone-{seed}-{digits}-{seconds:g}s"
    wav, csv_path = folder / "recording.wav", folder / "words.csv"
    if wav.exists() and csv_path.exists():
        return wav, csv_path
    rec = make_recording(root, seed=seed, digits=digits, seconds=seconds)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "recording.tmp.wav"
    sf.write(str(tmp), rec.wave, rec.sample_rate, subtype="PCM_16")
    write_words(csv_path, rec.words)
    (folder / "NOTICE.txt").write_text(NOTICE.format(credit=CREDIT))
    os.replace(tmp, wav)
    return wav, csv_path


__all__ = ["GeneratedRecording", "NOISE_KINDS", "Word", "background", "cache_dir", "cached_recording",
           "make_recording", "read_words", "speech_extent", "write_words"]
