"""Helpers shared by the sub-commands: key=value settings, clip resolution, a text progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ..command import format_settings  # noqa: F401  (re-exported for older callers)
from ..errors import ConfigError


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    """``["n_steps=64", "baseline=mean"]`` → ``{"n_steps": "64", "baseline": "mean"}`` (typed later)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Settings are written NAME=VALUE; got '{pair}'.")
        out[key.strip()] = value.strip()
    return out


def load_input_clip(source: str, *, max_seconds: float = 60.0):
    """A clip from a file path, or from a bundled example's name."""
    from .. import audio, examples

    if Path(source).exists():
        return audio.load_clip(Path(source), max_seconds=max_seconds)
    names = [e.name for e in examples.list_examples()]
    if source in names:
        return examples.load_example(source)
    raise ConfigError(
        f"'{source}' is neither a file nor a bundled example. Examples: {', '.join(names[:8])}"
        + (", ..." if len(names) > 8 else "") + " (`earmark list examples` shows all)."
    )


class ProgressBar:
    """``progress(fraction, stage)`` that draws one line on stderr (only when it is a terminal or forced)."""

    def __init__(self, label: str = "", *, enabled: bool | None = None, width: int = 30):
        self.label, self.width = label, width
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.perf_counter()
        self._last = -1.0

    def __call__(self, fraction: float, stage: str = "") -> None:
        if not self.enabled or (fraction - self._last < 0.01 and fraction < 1.0):
            return
        self._last = fraction
        filled = int(self.width * fraction)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / fraction - elapsed if fraction > 0 else float("nan")
        bar = "█" * filled + "·" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} {bar} {fraction:5.1%} {stage[:28]:<28} {elapsed:6.1f}s eta {eta:5.1f}s")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
