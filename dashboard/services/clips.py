"""Audio in: decoded clips, examples, generated signals, the clip as the model hears it, WAV bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch

from earmark import audio, examples

from .common import to_numpy


@dataclass(frozen=True)
class ClipView:
    """A decoded clip as the pages use it (NumPy wave, hash for cache keys)."""

    clip: Any            # earmark.audio.Clip
    wave: np.ndarray     # (L,) float32
    sample_rate: int
    name: str
    hash: str
    warnings: tuple[str, ...]

    @property
    def duration(self) -> float:
        return len(self.wave) / self.sample_rate


def _view(clip) -> ClipView:
    return ClipView(clip=clip, wave=to_numpy(clip.wave), sample_rate=int(clip.sample_rate), name=clip.name,
                    hash=audio.clip_hash(clip), warnings=tuple(getattr(clip, "warnings", ())))


@st.cache_data(show_spinner="Decoding the audio…", max_entries=32)
def decode(data: bytes, name: str, segment: tuple[float, float] | None = None,
           sample_rate: int | None = None) -> ClipView:
    """Decode uploaded/recorded bytes (any error is an AudioError with a sentence for a person).

    With ``sample_rate`` (the model's) the clip is kept, cached and played at that rate, mono, never at the
    file's: a 60 s upload then costs a few MB however many channels and samples per second it had.
    """
    return _view(audio.load_clip(data, name=name, max_seconds=60, segment=segment, sample_rate=sample_rate))


def list_examples() -> list[Any]:
    return list(examples.list_examples())


def default_example_name() -> str:
    return examples.DEFAULT_EXAMPLE


@st.cache_data(show_spinner="Loading the example…", max_entries=32)
def example(name: str) -> ClipView:
    return _view(examples.load_example(name))


@st.cache_data(show_spinner=False, max_entries=32)
def generate(kind: str, items: tuple) -> ClipView:
    """A teaching signal from ``earmark.examples.generate_signal`` (``items``: its :data:`SIGNAL_PARAMS`)."""
    params = dict(items)
    wave = examples.generate_signal(kind, **params)
    return _view(audio.Clip(wave=wave.to(torch.float32).flatten(),
                            sample_rate=int(params.get("sample_rate", 8000)), name=kind))


@st.cache_data(show_spinner=False, max_entries=64)
def prepared(clip_hash: str, _clip: Any, sample_rate: int, num_samples: int,
             offset: float | None) -> ClipView:
    """The clip resampled and cut to the model's input (``offset`` in s, ``None`` = centre)."""
    ready = audio.prepare(_clip, sample_rate=sample_rate, num_samples=num_samples, policy="center",
                    offset_seconds=offset)
    return ClipView(clip=ready, wave=to_numpy(ready.wave), sample_rate=int(ready.sample_rate),
                    name=ready.name, hash=f"{clip_hash}@{sample_rate}:{num_samples}:{offset}",
                    warnings=tuple(getattr(ready, "warnings", ())))


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    return audio.wav_bytes(torch.as_tensor(wave, dtype=torch.float32), int(sample_rate))
