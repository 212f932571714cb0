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
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Union

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import Tensor

from .errors import AudioError, ClipTooLong, ConfigError
from .finite import check_amplitude
from .validate import check_rate

LengthPolicy = Literal["center", "start", "end"]
LENGTH_POLICIES: tuple[str, ...] = ("center", "start", "end")

#: What :func:`load_clip` accepts: a path, the raw bytes of a file, or an open binary file
#: (e.g. Streamlit's ``UploadedFile``).
AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: Formats a person may upload; said in every "could not decode" message.
SUPPORTED_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3")

#: Peak amplitude at or below which a clip counts as silent (−100 dBFS).
SILENCE_PEAK = 1e-5

# ---- limits on what decoding may produce -------------------------------------------------------
# Checked from the header before any sample is decoded, so a small hostile file cannot make the
# decoder or the resampler take gigabytes; each refusal is one sentence that says what was wrong.

#: Sample rates accepted from a file, in Hz (telephone speech to studio 192 kHz).
MIN_RATE, MAX_RATE = 1_000, 192_000
#: Most channels accepted (7.1 surround).
MAX_CHANNELS = 8
#: Most decoded bytes (float32, all channels) of the part of a file that is read: 100 MB, e.g.
#: 60 s of 8 channels at 48 kHz; decoding goes block by block and keeps only the mono mix.
MAX_DECODED_BYTES = 100 * 2**20
#: Largest file read from a path (uploads are capped by the server, at 50 MB by default).
MAX_FILE_BYTES = 256 * 2**20
#: Frames decoded per block (the mono mix is accumulated block by block).
_BLOCK_FRAMES = 1 << 16


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
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AudioError(f"'{path.name}' is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB. "
                             "Trim the file or convert it to a compressed format (FLAC, OGG).")
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


def check_header(name: str, rate: float, channels: int, frames: int) -> None:
    """Refuse a stream whose header promises more than Earmark decodes (rate, channels, decoded bytes).

    ``frames`` is the number of frames that would be read (the whole file, or the segment).

    Raises:
        AudioError: one sentence naming what is out of range and the limit.
    """
    if not math.isfinite(rate) or rate <= 0:
        raise AudioError(f"'{name}' has a sample rate of {rate:g} Hz in its header, which no audio has: the "
                         "file is damaged. Export it again (e.g. as 16-bit WAV).")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"'{name}' has a sample rate of {rate:,.0f} Hz; Earmark reads {MIN_RATE:,} to "
                         f"{MAX_RATE:,} Hz. Resample the file (e.g. to 48 kHz) and try again.")
    if channels < 1:
        raise AudioError(f"'{name}' reports {channels} audio channels: the file is damaged. Export it again.")
    if channels > MAX_CHANNELS:
        raise AudioError(f"'{name}' has {channels} channels; Earmark reads at most {MAX_CHANNELS}. "
                         "Mix it down to mono or stereo and try again.")
    decoded = 4 * int(frames) * int(channels)
    if decoded > MAX_DECODED_BYTES:
        raise AudioError(
            f"'{name}' would decode to {decoded / 2**20:,.0f} MB of samples ({channels} channels × "
            f"{int(frames):,} frames at {rate:,.0f} Hz); the limit is {MAX_DECODED_BYTES // 2**20} MB. "
            "Mix it down to mono, lower its rate, or choose a shorter segment."
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


def _decode_soundfile(data: bytes, name: str, segment, max_seconds: float):
    """Decode with libsndfile, block by block into the mono mix, after checking the header.

    Returns (L,) float32 mono, rate, channels, total frames, format, warnings.
    """
    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, channels, total, fmt = int(f.samplerate), int(f.channels), int(f.frames), str(f.format)
        check_header(name, rate, channels, 0)
        start, stop, warnings = _frame_range(total, rate, segment, max_seconds)
        check_header(name, rate, channels, stop - start)
        if start:
            f.seek(start)
        mono = np.empty(stop - start, np.float32)
        done = 0
        while done < mono.size:
            block = f.read(min(_BLOCK_FRAMES, mono.size - done), dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            mono[done:done + block.shape[0]] = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
            done += block.shape[0]
    return mono[:done], rate, channels, total, fmt, warnings


def _sniff_container(data: bytes) -> str | None:
    """The ffmpeg demuxer for a file's signature, or ``None``: the fallback never lets ffmpeg probe the
    format, so no playlist, HLS, concat list or other protocol can be reached from a file's contents."""
    head = data[:16]
    if head[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return "mp3"
    if data[4:8] == b"ftyp":
        return "mov"          # MP4 / M4A (ffmpeg's mov,mp4,m4a demuxer)
    if head[:4] == b"\x1aE\xdf\xa3":
        return "matroska"     # WebM / MKA
    return None


def _decode_fallback(data: bytes, name: str, max_seconds: float) -> tuple[np.ndarray, int, int, str]:
    """Decode what libsndfile cannot with ffmpeg, when it is installed, restricted to a local file.

    ffmpeg gets an explicit input format from the file's signature (one of a few audio containers),
    reads only the ``file`` protocol, mixes to mono and stops after ``max_seconds`` and
    :data:`MAX_DECODED_BYTES`. Returns (L,) float32 mono, rate, channels (1), format name.

    Raises:
        AudioError: no ffmpeg, an unknown container, or ffmpeg fails.
    """
    fmt = _sniff_container(data)
    ffmpeg = shutil.which("ffmpeg")
    if fmt is None or ffmpeg is None:
        raise _undecodable("libsndfile cannot read it" + ("" if fmt is None else "; ffmpeg is not installed"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        path.write_bytes(data)
        command = [ffmpeg, "-nostdin", "-v", "error", "-protocol_whitelist", "file", "-f", fmt,
                   "-i", f"file:{path}", "-map", "0:a:0", "-t", f"{max_seconds:g}", "-ac", "1",
                   "-fs", str(MAX_DECODED_BYTES), "-f", "wav", "-acodec", "pcm_f32le", f"file:{Path(tmp) / 'out.wav'}"]
        try:
            result = subprocess.run(command, capture_output=True, timeout=60, check=False)
            if result.returncode != 0:
                raise _undecodable(f"ffmpeg: {result.stderr.decode(errors='replace').strip()[:120]}")
            with sf.SoundFile(str(Path(tmp) / "out.wav")) as f:
                rate = int(f.samplerate)
                check_header(name, rate, int(f.channels), int(f.frames))
                samples = f.read(dtype="float32", always_2d=True)
        except (OSError, subprocess.TimeoutExpired, sf.LibsndfileError, RuntimeError, ValueError):
            raise _undecodable("ffmpeg could not read it") from None
    return samples.mean(axis=1, dtype=np.float32), rate, 1, "ffmpeg"


def _header_sentence(data: bytes, name: str) -> None:
    """A precise sentence for WAV/AIFF headers that libsndfile refuses (e.g. a sample rate of 0)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(data):
            cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
            if cid == b"fmt " and pos + 16 <= len(data):
                channels = int.from_bytes(data[pos + 10:pos + 12], "little")
                rate = int.from_bytes(data[pos + 12:pos + 16], "little")
                check_header(name, rate, channels, 0)
                return
            pos += 8 + size + (size & 1)
    elif data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        pos = 12
        while pos + 8 <= len(data):
            cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
            if cid == b"COMM" and pos + 26 <= len(data):
                channels = int.from_bytes(data[pos + 8:pos + 10], "big")
                exponent = int.from_bytes(data[pos + 16:pos + 18], "big") & 0x7FFF
                mantissa = int.from_bytes(data[pos + 18:pos + 26], "big")
                rate = 0.0 if mantissa == 0 else mantissa * 2.0 ** (min(exponent, 16446) - 16383 - 63)
                check_header(name, rate, channels, 0)
                return
            pos += 8 + size + (size & 1)


def load_clip(source: AudioSource, *, name: str | None = None, max_seconds: float = 60.0,
              segment: tuple[float, float] | None = None, sample_rate: int | None = None) -> Clip:
    """Decode an audio file into a mono :class:`Clip` (at the file's rate, or resampled to ``sample_rate``).

    Decodes WAV, FLAC, OGG and MP3 with libsndfile (soundfile), block by block into the mono mix;
    anything libsndfile cannot read goes to ffmpeg when it is installed (restricted to a local file and
    an explicit input format). The header is checked before decoding: rates outside
    [:data:`MIN_RATE`, :data:`MAX_RATE`], more than :data:`MAX_CHANNELS` channels or more than
    :data:`MAX_DECODED_BYTES` of samples are refused.

    Args:
        source: a path, the file's bytes, or a binary file-like object (an upload).
        name: label of the clip; default: the file stem, or ``"upload"``.
        max_seconds: longest clip accepted without a ``segment``.
        segment: ``(start_s, end_s)`` in seconds: decode only this part (for clips over the limit).
        sample_rate: resample to this rate right after decoding (what an app keeps is then at the model's
            rate, not the file's); ``None`` keeps the file's rate.

    Returns:
        Clip with ``wave`` (L,) float32 at ``sample_rate`` (or ``original_rate``).

    Raises:
        AudioError: empty file, undecodable bytes, a header out of the limits, no samples, NaN/Inf samples,
            longer than ``max_seconds``, or a bad ``segment``. All-silent clips are *not* errors: they get a
            warning.
    """
    target_rate = None if sample_rate is None else check_rate(sample_rate, "sample rate to resample to")
    data, stem = _read_source(source)
    name = name or stem
    if len(data) == 0:
        raise AudioError(f"'{name}' is empty (0 bytes). Record or upload the clip again.")
    if not (isinstance(max_seconds, (int, float)) and math.isfinite(max_seconds) and max_seconds > 0):
        raise AudioError(f"max_seconds must be a positive number of seconds; got {max_seconds!r}.")
    _header_sentence(data, name)   # WAV/AIFF: the header's own rate and channels, before libsndfile's reading
    try:
        wave, rate, channels, total, fmt, warnings = _decode_soundfile(data, name, segment, max_seconds)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError, OverflowError, MemoryError) as exc:
        try:
            wave, rate, channels, fmt = _decode_fallback(data, name, max_seconds)
        except AudioError as fallback:
            detail = str(getattr(exc, "error_string", "") or "").strip().rstrip(".")
            if "libsndfile cannot read it" in str(fallback) and detail:
                raise _undecodable(f"libsndfile: {detail}") from None
            raise
        total = wave.shape[0]
        start, stop, warnings = _frame_range(total, rate, segment, max_seconds)
        wave = wave[start:stop]
    if total == 0 or wave.size == 0:
        raise AudioError(f"'{name}' decodes to no samples: the file holds a header but no audio. "
                         "Record or export the clip again.")
    if not np.isfinite(wave).all():
        # A mean of finite samples is finite, so a non-finite mix means a non-finite sample.
        bad = "NaN" if np.isnan(wave).any() else "infinite (Inf)"
        raise AudioError(f"'{name}' contains {bad} sample values, so it cannot be analysed. "
                         "Re-export the clip from your audio editor as 16-bit WAV.")
    wave = torch.from_numpy(np.ascontiguousarray(wave))
    check_amplitude(wave, f"'{name}'", AudioError)
    peak = float(wave.abs().max())
    if peak <= SILENCE_PEAK:
        warnings += (f"'{name}' is silent (peak {peak:.1e}). A model's answer and its explanation for "
                     "silence say little; check the microphone or pick another clip.",)
    clip = Clip(wave=wave, sample_rate=rate, name=name, original_rate=rate, channels=channels,
                source_seconds=total / rate, format=fmt, warnings=warnings)
    if target_rate is not None and target_rate != rate:
        clip = clip.replace(wave=resample(wave, rate, target_rate), sample_rate=target_rate)
    return clip


# ---- making a clip fit a model -------------------------------------------------------------------

def resample(wave: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Band-limited resampling of the last axis with libsoxr (high quality), a no-op at equal rates.

    Time and memory are bounded for any pair of rates (soxr's filters do not grow with the rates'
    greatest common divisor, unlike a plain polyphase kernel); runs on the CPU and returns on
    ``wave``'s device and dtype. Not differentiable.

    Args:
        wave: (..., L) waveform.  orig_rate, new_rate: Hz (positive integers).

    Returns:
        (..., ceil(L · new_rate / orig_rate)) waveform (the length torchaudio's resampler gives).

    Raises:
        ConfigError: a rate that is not a positive whole number.
    """
    orig, new = check_rate(orig_rate, "input rate"), check_rate(new_rate, "output rate")
    if orig == new:
        return wave
    length = wave.shape[-1]
    out_len = -(-length * new // orig)
    lead = tuple(wave.shape[:-1])
    x = wave.detach().reshape(-1, length).to("cpu", torch.float32).numpy()
    if length == 0 or x.shape[0] == 0:
        return wave.new_zeros((*lead, out_len))
    y = soxr.resample(np.ascontiguousarray(x.T), orig, new, quality="HQ")   # (frames, channels)
    y = y.reshape(-1, x.shape[0])
    if y.shape[0] < out_len:
        y = np.pad(y, ((0, out_len - y.shape[0]), (0, 0)))
    y = np.ascontiguousarray(y[:out_len].T)
    return torch.from_numpy(y).reshape(*lead, out_len).to(device=wave.device, dtype=wave.dtype)


#: How the note that the model hears only part of a long clip begins: an ordinary fact (a person chose the
#: window), carried with the clip's warnings so the CLI prints it, shown as information by the app.
WINDOW_NOTE = "The model hears"


def is_window_note(text: str) -> bool:
    """Whether a clip warning is :func:`prepare`'s note on the part of the clip the model hears (a fact)."""
    return str(text).startswith(WINDOW_NOTE)


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
    sample_rate = check_rate(sample_rate, "model's sample rate")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ConfigError(f"The model's input length must be a positive whole number of samples; got {num_samples!r}.")
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
            warnings += (f"{WINDOW_NOTE} {heard:g} s of the {seconds:.2f} s clip, from {offset_seconds:g} s.",)
    else:
        if length > num_samples:
            where = {"center": "the middle", "start": "the beginning", "end": "the end"}[policy]
            warnings += (f"{WINDOW_NOTE} {heard:g} s of the {seconds:.2f} s clip ({where}). "
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
