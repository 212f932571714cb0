"""Streamed decoding: a recording read block by block and resampled on the way, never whole in memory."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import soxr
import torch

from ..audio import AudioSource, MAX_CHANNELS, check_header
from ..errors import AudioError, ClipTooLong, ConfigError

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


def _duration(source, rate: int) -> float:
    stream = _open(source, rate, BLOCK_FRAMES, max_recording_seconds())
    stream.blocks.close()
    return stream.seconds
