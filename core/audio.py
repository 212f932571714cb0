"""Clips in, clips out: decode, check, mono, resample, pad/crop, write.

The one door through which audio enters Earmark. Every way a file can be unusable ends in an
:class:`~earmark.errors.AudioError` whose message says what was wrong and what to do; a clip that is usable
but suspicious (silent, cut to a segment, cropped for the model) carries a warning in
:attr:`Clip.warnings` instead.

Example:
    >>> import torch
    >>> wave = torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    >>> clip = load_clip(wav_bytes(wave, 16000), name="a4")
    >>> ready = prepare(clip, sample_rate=8000, num_samples=8000)
    >>> ready.wave.shape, ready.sample_rate
    (torch.Size([8000]), 8000)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import warnings as pywarnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio
from torch import Tensor

from .errors import AudioError, ClipTooLong

LengthPolicy = Literal["center", "start", "end"]
LENGTH_POLICIES: tuple[str, ...] = ("center", "start", "end")

#: What :func:`load_clip` accepts: a path, the raw bytes of a file, or an open binary file
#: (e.g. Streamlit's ``UploadedFile``).
AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: Formats a person may upload; said in every "could not decode" message.
SUPPORTED_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3")

#: Peak amplitude at or below which a clip counts as silent (−100 dBFS).
SILENCE_PEAK = 1e-5


@dataclass(frozen=True, eq=False)  # holds a tensor: compare clips with clip_hash, not ==
class Clip:
    """A mono clip and what is known about where it came from.

    Attributes:
        wave: (L,) float32 waveform, nominally in [-1, 1].
        sample_rate: Hz of ``wave``.
        name: a short label (file stem, example name, ``"upload"``...).
        original_rate: Hz of the decoded file, before any resampling.
        channels: channel count of the decoded file (mixed to mono in ``wave``).
        source_seconds: duration of the whole decoded file in seconds (before a segment was taken).
        format: container/codec reported by the decoder (``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``...).
        warnings: sentences for a person about a usable but suspicious clip (silence, cropping...).
    """

    wave: Tensor
    sample_rate: int
    name: str = "clip"
    original_rate: int = 0
    channels: int = 1
    source_seconds: float = 0.0
    format: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def num_samples(self) -> int:
        """L, the number of samples in ``wave``."""
        return int(self.wave.shape[-1])

    @property
    def duration(self) -> float:
        """Length of ``wave`` in seconds."""
        return self.num_samples / self.sample_rate

    def replace(self, **changes) -> "Clip":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


# ---- length ------------------------------------------------------------------------------------

def fit_length(wave: Tensor, num_samples: int, *, policy: LengthPolicy = "center") -> Tensor:
    """Zero-pad or crop the last axis to exactly ``num_samples``.

    Args:
        wave: (..., L) waveform.
        num_samples: target length.
        policy: ``"center"`` pads both sides equally / crops the centre (the AudioMNIST protocol);
            ``"start"`` keeps the beginning (pads at the end); ``"end"`` keeps the end (pads at the start).

    Returns:
        (..., num_samples) waveform.
    """
    length = wave.shape[-1]
    if length == num_samples:
        return wave
    if length > num_samples:
        start = {"center": (length - num_samples) // 2, "start": 0, "end": length - num_samples}[policy]
        return wave[..., start:start + num_samples]
    missing = num_samples - length
    left = {"center": missing // 2, "start": 0, "end": missing}[policy]
    return torch.nn.functional.pad(wave, (left, missing - left))


# ---- decoding ----------------------------------------------------------------------------------

def _read_source(source: AudioSource) -> tuple[bytes, str]:
    """The bytes of ``source`` and a default name for it."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No audio file at '{path}'. Check the path, or pick a bundled example.")
        return path.read_bytes(), path.stem
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "upload"
    if hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read()
        stem = Path(str(getattr(source, "name", "") or "upload")).stem or "upload"
        if not isinstance(data, (bytes, bytearray)):
            raise AudioError("The uploaded object returned text, not bytes. Open the file in binary mode ('rb').")
        return bytes(data), stem
    raise AudioError(
        f"Cannot read audio from a {type(source).__name__}. Give a file path, the file's bytes, "
        "or a file opened in binary mode."
    )


def _undecodable(detail: str = "") -> AudioError:
    why = f" ({detail})" if detail else ""
    return AudioError(
        f"Could not decode the file as audio{why}. Supported formats: "
        f"{', '.join(f.upper() for f in SUPPORTED_FORMATS)}. If the file is one of these it may be damaged: "
        "convert it to WAV and try again."
    )


def _frame_range(total: int, rate: int, segment: tuple[float, float] | None,
                 max_seconds: float) -> tuple[int, int, tuple[str, ...]]:
    """Start and stop frames to read, after checking the length limit and the segment."""
    seconds = total / rate
    if segment is None:
        if seconds > max_seconds:
            raise ClipTooLong(
                f"The clip is {seconds:.1f} s long; the limit is {max_seconds:g} s. Choose a segment of at "
                f"most {max_seconds:g} s (segment=(start_s, end_s), e.g. segment=(0, {min(max_seconds, 10):g})) "
                "or trim the file."
            )
        return 0, total, ()
    try:
        start_s, end_s = (float(v) for v in segment)
    except (TypeError, ValueError):
        raise AudioError(f"A segment is two times in seconds, (start_s, end_s); got {segment!r}.") from None
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or start_s < 0 or end_s <= start_s:
        raise AudioError(
            f"The segment ({start_s:g} s, {end_s:g} s) is not a valid time range: it needs "
            "0 ≤ start < end. Give segment=(start_s, end_s) in seconds."
        )
    if end_s - start_s > max_seconds:
        raise AudioError(
            f"The segment is {end_s - start_s:.1f} s long; the limit is {max_seconds:g} s. "
            "Choose a shorter segment."
        )
    if start_s >= seconds:
        raise AudioError(
            f"The segment starts at {start_s:g} s but the clip is only {seconds:.2f} s long. "
            "Choose a start inside the clip."
        )
    warnings: tuple[str, ...] = ()
    if end_s > seconds:
        warnings = (f"The segment ends at {end_s:g} s but the clip ends at {seconds:.2f} s; "
                    "the segment was cut at the end of the clip.",)
    start = int(round(start_s * rate))
    stop = min(total, int(round(end_s * rate)))
    return start, max(stop, start + 1), warnings


def _decode_soundfile(data: bytes, segment, max_seconds: float):
    """Decode with libsndfile: (frames, channels) float32, rate, total frames, format, warnings."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, total, fmt = int(f.samplerate), int(f.frames), str(f.format)
        if rate <= 0:
            raise _undecodable("the file reports no sample rate")
        start, stop, warnings = _frame_range(total, rate, segment, max_seconds)
        if start:
            f.seek(start)
        samples = f.read(stop - start, dtype="float32", always_2d=True)
    return samples, rate, total, fmt, warnings


def _decode_fallback(data: bytes) -> tuple[np.ndarray, int, str]:
    """Decode what libsndfile cannot: ffmpeg if installed, else audioread (librosa's fallback).

    Returns (frames, channels) float32, rate, format name. Raises AudioError when nothing works.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            result = subprocess.run(
                [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-f", "wav", "-acodec", "pcm_f32le", "-"],
                capture_output=True, timeout=120, check=False,
            )
            if result.returncode == 0 and result.stdout:
                try:
                    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
                    return samples, int(rate), "ffmpeg"
                except (sf.LibsndfileError, RuntimeError, ValueError):
                    pass
        try:
            # audioread imports its backends (aifc, audioop, sunau: dropped in Python 3.13) lazily.
            with pywarnings.catch_warnings():
                pywarnings.simplefilter("ignore", DeprecationWarning)
                import audioread  # librosa's fallback decoder; imported only when libsndfile has failed

                with audioread.audio_open(str(path)) as f:
                    rate, channels = int(f.samplerate), int(f.channels)
                    pcm = b"".join(f)
        except Exception:  # audioread raises many unrelated types; all mean "cannot decode"
            raise _undecodable() from None
    ints = np.frombuffer(pcm, dtype="<i2")
    samples = (ints[: ints.size - ints.size % max(channels, 1)].reshape(-1, max(channels, 1)) / 32768.0)
    samples = samples.astype(np.float32)
    return samples, int(rate), "audioread"


def load_clip(source: AudioSource, *, name: str | None = None, max_seconds: float = 60.0,
              segment: tuple[float, float] | None = None) -> Clip:
    """Decode an audio file into a mono :class:`Clip` at the file's own rate.

    Decodes WAV, FLAC, OGG and MP3 with libsndfile (soundfile); anything libsndfile cannot read goes to
    ffmpeg (when installed) or audioread (librosa's fallback decoder). Channels are averaged to mono.

    Args:
        source: a path, the file's bytes, or a binary file-like object (an upload).
        name: label of the clip; default: the file stem, or ``"upload"``.
        max_seconds: longest clip accepted without a ``segment``.
        segment: ``(start_s, end_s)`` in seconds: decode only this part (for clips over the limit).

    Returns:
        Clip with ``wave`` (L,) float32 at ``original_rate``.

    Raises:
        AudioError: empty file, undecodable bytes, no samples, NaN/Inf samples, longer than
            ``max_seconds``, or a bad ``segment``. All-silent clips are *not* errors: they get a warning.
    """
    data, stem = _read_source(source)
    name = name or stem
    if len(data) == 0:
        raise AudioError(f"'{name}' is empty (0 bytes). Record or upload the clip again.")
    try:
        samples, rate, total, fmt, warnings = _decode_soundfile(data, segment, max_seconds)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError):
        samples, rate, fmt = _decode_fallback(data)
        total = samples.shape[0]
        start, stop, warnings = _frame_range(total, rate, segment, max_seconds)
        samples = samples[start:stop]
    if total == 0 or samples.size == 0:
        raise AudioError(f"'{name}' decodes to no samples: the file holds a header but no audio. "
                         "Record or export the clip again.")
    if not np.isfinite(samples).all():
        bad = "NaN" if np.isnan(samples).any() else "infinite (Inf)"
        raise AudioError(f"'{name}' contains {bad} sample values, so it cannot be analysed. "
                         "Re-export the clip from your audio editor as 16-bit WAV.")
    channels = samples.shape[1]
    wave = torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1, dtype=np.float32)))
    peak = float(wave.abs().max())
    if peak <= SILENCE_PEAK:
        warnings += (f"'{name}' is silent (peak {peak:.1e}). A model's answer and its explanation for "
                     "silence say little; check the microphone or pick another clip.",)
    return Clip(wave=wave, sample_rate=rate, name=name, original_rate=rate, channels=channels,
                source_seconds=total / rate, format=fmt, warnings=warnings)


# ---- making a clip fit a model -------------------------------------------------------------------

def resample(wave: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Band-limited resampling of the last axis (torchaudio's windowed-sinc), a no-op at equal rates.

    Args:
        wave: (..., L) waveform.  orig_rate, new_rate: Hz (integers).

    Returns:
        (..., ceil(L · new_rate / orig_rate)) waveform.
    """
    if int(orig_rate) == int(new_rate):
        return wave
    return torchaudio.functional.resample(wave, int(orig_rate), int(new_rate))


def prepare(clip: Clip, *, sample_rate: int, num_samples: int, policy: LengthPolicy = "center",
            offset_seconds: float | None = None) -> Clip:
    """Resample a clip to a model's rate and pad/crop it to the model's length.

    Args:
        clip: a decoded clip.
        sample_rate: the model's rate in Hz.
        num_samples: the model's input length.
        policy: where to pad or crop (see :func:`fit_length`); ignored when ``offset_seconds`` is given.
        offset_seconds: take the ``num_samples`` window that starts here (zero-padded at the end when the
            clip is shorter), to choose which part of a long clip the model hears.

    Returns:
        Clip with ``wave`` (num_samples,) float32 at ``sample_rate``; its warnings say if audio was cut.

    Raises:
        AudioError: an unknown policy or an offset outside the clip.
    """
    if policy not in LENGTH_POLICIES:
        raise AudioError(f"Unknown length policy '{policy}'. Use one of: {', '.join(LENGTH_POLICIES)}.")
    wave = resample(clip.wave.to(torch.float32), clip.sample_rate, sample_rate)
    length = wave.shape[-1]
    warnings = clip.warnings
    seconds = length / sample_rate
    heard = num_samples / sample_rate
    if offset_seconds is not None:
        if not np.isfinite(offset_seconds) or not 0 <= offset_seconds < seconds:
            raise AudioError(f"The offset {offset_seconds:g} s lies outside the clip (0 to {seconds:.2f} s). "
                             "Choose an offset inside the clip.")
        start = int(round(offset_seconds * sample_rate))
        wave = fit_length(wave[start:start + num_samples], num_samples, policy="start")
        if length > num_samples:
            warnings += (f"The model hears {heard:g} s of the {seconds:.2f} s clip, from {offset_seconds:g} s.",)
    else:
        if length > num_samples:
            where = {"center": "the middle", "start": "the beginning", "end": "the end"}[policy]
            warnings += (f"The model hears {heard:g} s of the {seconds:.2f} s clip ({where}). "
                         "Choose an offset to hear another part.",)
        wave = fit_length(wave, num_samples, policy=policy)
    return clip.replace(wave=wave.contiguous(), sample_rate=int(sample_rate), warnings=warnings)


# ---- writing -------------------------------------------------------------------------------------

def save_wav(path_or_buffer: str | os.PathLike | BinaryIO, wave: Tensor, sample_rate: int) -> None:
    """Write a mono 16-bit PCM WAV; samples outside [-1, 1] are clipped.

    Args:
        path_or_buffer: file path or writable binary buffer.
        wave: (L,) waveform (any float dtype, any device).
        sample_rate: Hz.
    """
    samples = wave.detach().reshape(-1).to("cpu", torch.float32).clamp(-1.0, 1.0).numpy()
    target = str(path_or_buffer) if isinstance(path_or_buffer, (str, os.PathLike)) else path_or_buffer
    sf.write(target, samples, int(sample_rate), format="WAV", subtype="PCM_16")


def wav_bytes(wave: Tensor, sample_rate: int) -> bytes:
    """The bytes of a 16-bit WAV of ``wave`` (L,), for ``st.audio`` and downloads."""
    buffer = io.BytesIO()
    save_wav(buffer, wave, sample_rate)
    return buffer.getvalue()


def clip_hash(clip: Clip) -> str:
    """SHA-1 hex digest of the samples (float32) and the rate: a cache key for results on this clip."""
    digest = hashlib.sha1(clip.wave.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest.update(f"|{int(clip.sample_rate)}".encode())
    return digest.hexdigest()
