"""Bundled example clips and the teaching-mode signal generator.

The clips live in ``<assets>/examples/`` where ``<assets>`` is ``$EARMARK_ASSETS`` if set, else the
repository's ``assets/`` folder. They are made by ``tools/make_examples.py``: the digits "zero".."nine"
spoken by espeak-ng in two voices (``digit_<d>_<voice>.wav``) and synthetic signals from
:func:`generate_signal`. All are 8 kHz mono 16-bit WAV of at most 1 s.

Example:
    >>> clip = default_example()
    >>> clip.sample_rate, clip.duration <= 1.0
    (8000, True)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from .assets import assets_dir
from .audio import Clip, load_clip
from .errors import ConfigError, DataError
from .params import Param

ExampleKind = Literal["speech", "synthetic"]
SignalKind = Literal["tone", "chirp", "bursts", "noise", "mix"]

#: The example the dashboard opens with: "seven", American English voice.
DEFAULT_EXAMPLE = "digit_7_en-us"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SPEECH = re.compile(r"^digit_(\d)_(.+)$")


@dataclass(frozen=True)
class Example:
    """One bundled clip.

    Attributes:
        name: file stem, e.g. ``"digit_7_en-us"`` or ``"chirp"``; what :func:`load_example` takes.
        path: the WAV file.
        kind: ``"speech"`` (espeak-ng digits) or ``"synthetic"``.
        label: the spoken digit 0–9 for speech, ``None`` for synthetic signals.
        title: a short description for menus, e.g. ``'"seven" (en-us voice)'``.
    """

    name: str
    path: Path
    kind: ExampleKind
    label: int | None
    title: str


def examples_dir() -> Path:
    """``<assets>/examples``."""
    return assets_dir() / "examples"


def _describe(path: Path) -> Example:
    match = _SPEECH.match(path.stem)
    if match:
        digit, voice = int(match.group(1)), match.group(2)
        return Example(path.stem, path, "speech", digit, f'"{DIGIT_WORDS[digit]}" ({voice} voice)')
    return Example(path.stem, path, "synthetic", None, SYNTHETIC_TITLES.get(path.stem, path.stem.replace("_", " ")))


def list_examples() -> list[Example]:
    """Every bundled clip: speech first (by digit, then voice), then synthetic signals (by name).

    Raises:
        DataError: the examples folder is missing or empty.
    """
    folder = examples_dir()
    paths = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not paths:
        raise DataError(
            f"No example clips in '{folder}'. Run `python tools/make_examples.py` to make them, "
            "or set EARMARK_ASSETS to a folder that has an examples/ subfolder."
        )
    found = [_describe(p) for p in paths]
    return sorted(found, key=lambda e: (e.kind != "speech", e.label if e.label is not None else -1, e.name))


def get_example(name: str) -> Example:
    """The :class:`Example` called ``name``.

    Raises:
        ConfigError: no example has that name (the message lists the names).
    """
    examples = {e.name: e for e in list_examples()}
    if name not in examples:
        raise ConfigError(f"Unknown example '{name}'. Choose one of: {', '.join(examples)}.")
    return examples[name]


def load_example(name: str) -> Clip:
    """Decode the bundled clip ``name`` (see :func:`list_examples`) into a :class:`Clip` at 8 kHz."""
    example = get_example(name)
    return load_clip(example.path, name=example.name)


def default_example() -> Clip:
    """The clip the dashboard starts with: :data:`DEFAULT_EXAMPLE` (spoken "seven", en-us voice)."""
    return load_example(DEFAULT_EXAMPLE)


# ---- teaching-mode signals ---------------------------------------------------------------------

SIGNAL_KINDS: dict[str, str] = {
    "tone": "a pure sine at `freq`",
    "chirp": "a linear sweep from `f0` to `f1`",
    "bursts": "`bursts` short tone bursts, alternating between `freq` and `freq2`",
    "noise": "white Gaussian noise",
    "mix": "two tones, `freq` and `freq2`, at equal level",
}

#: The parameters each kind uses (besides sample_rate, seconds and amplitude); the dashboard shows these.
SIGNAL_USES: dict[str, tuple[str, ...]] = {
    "tone": ("freq",),
    "chirp": ("f0", "f1"),
    "bursts": ("freq", "freq2", "bursts", "burst_seconds"),
    "noise": (),
    "mix": ("freq", "freq2"),
}

SIGNAL_PARAMS: tuple[Param, ...] = (
    Param("sample_rate", 8000, "sampling rate in Hz", low=1000, high=48000, step=1000),
    Param("seconds", 1.0, "duration in seconds", low=0.05, high=10.0, step=0.05),
    Param("amplitude", 0.5, "peak amplitude (noise: 4 × its standard deviation)", low=0.0, high=1.0, step=0.05),
    Param("freq", 440.0, "tone frequency in Hz (first tone of mix and bursts)", low=20.0, high=24000.0, step=10.0),
    Param("freq2", 1000.0, "second tone frequency in Hz (mix and bursts)", low=20.0, high=24000.0, step=10.0),
    Param("f0", 100.0, "chirp start frequency in Hz", low=0.0, high=24000.0, step=10.0),
    Param("f1", 3500.0, "chirp end frequency in Hz", low=0.0, high=24000.0, step=10.0),
    Param("bursts", 4, "number of tone bursts", low=1, high=20, step=1),
    Param("burst_seconds", 0.1, "length of each burst in seconds", low=0.01, high=1.0, step=0.01),
)

#: The signal kinds and their parameters as people name them (the dashboard's generator).
SIGNAL_TITLES: dict[str, str] = {
    "tone": "Pure tone", "chirp": "Chirp (a sweep from one frequency to another)",
    "bursts": "Tone bursts (alternating two pitches)", "noise": "White noise", "mix": "Two tones together",
}
SIGNAL_LABELS: dict[str, str] = {
    "sample_rate": "Sample rate (Hz)", "seconds": "Duration (s)", "amplitude": "Loudness (peak, 0–1)",
    "freq": "Frequency (Hz)", "freq2": "Second frequency (Hz)", "f0": "Start frequency (Hz)",
    "f1": "End frequency (Hz)", "bursts": "Number of bursts", "burst_seconds": "Burst length (s)",
}


def signal_params(kind: str) -> tuple[Param, ...]:
    """The parameters ``kind`` uses, in :data:`SIGNAL_PARAMS` order: rate, duration, loudness and its own."""
    used = {"sample_rate", "seconds", "amplitude", *SIGNAL_USES[kind]}
    return tuple(p for p in SIGNAL_PARAMS if p.name in used)


#: Menu titles of the bundled synthetic clips (names as made by tools/make_examples.py).
SYNTHETIC_TITLES: dict[str, str] = {
    "tone_440": "tone, 440 Hz",
    "chirp_100-3500": "linear chirp, 100 → 3500 Hz",
    "bursts_440-1000": "tone bursts, 440 / 1000 Hz",
    "noise_white": "white noise",
    "two_tones_440-1000": "two tones, 440 + 1000 Hz",
}


def _envelope(n: int, ramp: int, *, dtype: torch.dtype) -> Tensor:
    """(n,) ones with raised-cosine fade-in and fade-out of ``ramp`` samples each."""
    env = torch.ones(n, dtype=dtype)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(ramp, dtype=dtype) + 0.5) / ramp)
        env[:ramp] = rise
        env[n - ramp:] = rise.flip(0)
    return env


def generate_signal(kind: SignalKind, *, sample_rate: int = 8000, seconds: float = 1.0, amplitude: float = 0.5,
                    freq: float = 440.0, freq2: float = 1000.0, f0: float = 100.0, f1: float = 3500.0,
                    bursts: int = 4, burst_seconds: float = 0.1,
                    generator: torch.Generator | None = None) -> Tensor:
    """A synthetic test signal for teaching (known time–frequency content).

    * ``tone``: ``amplitude · sin(2π·freq·t)``.
    * ``chirp``: linear sweep, instantaneous frequency ``f0 + (f1 − f0)·t/seconds``.
    * ``bursts``: ``bursts`` tone bursts of ``burst_seconds`` (10 ms raised-cosine ramps), centred in
      equal slots across the clip, alternating ``freq``, ``freq2``, ``freq``, …; silence between.
    * ``noise``: white Gaussian noise with standard deviation ``amplitude / 4``, clipped to ±1.
    * ``mix``: ``amplitude/2 · (sin(2π·freq·t) + sin(2π·freq2·t))``.

    Args:
        kind: one of :data:`SIGNAL_KINDS`.
        sample_rate, seconds, amplitude, freq, freq2, f0, f1, bursts, burst_seconds: see
            :data:`SIGNAL_PARAMS` (ranges and help text).
        generator: random source for ``noise`` (default: a fresh generator seeded with 0, so the
            result is reproducible).

    Returns:
        (round(seconds · sample_rate),) float32 waveform.

    Raises:
        ConfigError: unknown kind, a value out of range, or a frequency above Nyquist (sample_rate / 2).
    """
    if kind not in SIGNAL_KINDS:
        raise ConfigError(f"Unknown signal '{kind}'. Choose one of: {', '.join(SIGNAL_KINDS)}.")
    given = dict(sample_rate=sample_rate, seconds=seconds, amplitude=amplitude, freq=freq, freq2=freq2,
                 f0=f0, f1=f1, bursts=bursts, burst_seconds=burst_seconds)
    p = {param.name: param.coerce(given[param.name]) for param in SIGNAL_PARAMS}
    nyquist = p["sample_rate"] / 2
    for key in SIGNAL_USES[kind]:
        if key in ("freq", "freq2", "f0", "f1") and p[key] > nyquist:
            raise ConfigError(f"'{key}' = {p[key]:g} Hz lies above the Nyquist frequency ({nyquist:g} Hz) "
                              f"of {p['sample_rate']} Hz audio. Choose at most {nyquist:g} Hz.")
    sr, n, a = p["sample_rate"], int(round(p["seconds"] * p["sample_rate"])), p["amplitude"]
    t = torch.arange(n, dtype=torch.float64) / sr
    two_pi = 2 * math.pi
    if kind == "tone":
        y = a * torch.sin(two_pi * p["freq"] * t)
    elif kind == "chirp":
        rate = (p["f1"] - p["f0"]) / p["seconds"]
        y = a * torch.sin(two_pi * (p["f0"] * t + 0.5 * rate * t ** 2))
    elif kind == "mix":
        y = a / 2 * (torch.sin(two_pi * p["freq"] * t) + torch.sin(two_pi * p["freq2"] * t))
    elif kind == "noise":
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        y = (a / 4 * torch.randn(n, generator=gen, dtype=torch.float64)).clamp(-1.0, 1.0)
    else:  # bursts
        y = torch.zeros(n, dtype=torch.float64)
        count, width = p["bursts"], min(int(round(p["burst_seconds"] * sr)), n // p["bursts"])
        ramp = int(round(0.01 * sr))
        for i in range(count):
            centre = int(round((i + 0.5) * n / count))
            start = max(0, min(n - width, centre - width // 2))
            f = p["freq"] if i % 2 == 0 else p["freq2"]
            seg = t[start:start + width]
            y[start:start + width] = a * torch.sin(two_pi * f * seg) * _envelope(width, ramp, dtype=t.dtype)
    return y.to(torch.float32)
