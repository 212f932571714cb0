"""Helpers shared by the sub-commands: key=value settings, clip resolution, a text progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

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


def format_settings(settings: dict[str, Any], flag: str) -> list[str]:
    """The inverse of :func:`parse_settings`, for printing reproducible commands."""
    return [f"{flag} {k}={v}" for k, v in settings.items()]


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


MODEL_HELP = ("registered model name, or a model on disk: a Hugging Face or SpeechBrain folder, a .pt2 (torch.export), "
              ".pt (TorchScript) or .onnx file with its card JSON, or package.module:function")


def add_model_arguments(parser, *, default: str | None = "audionet-digits") -> None:
    """``--model NAME|PATH`` and ``--window SECONDS`` (the input window of a variable-length model)."""
    parser.add_argument("--model", default=default, metavar="NAME|PATH",
                        help=MODEL_HELP + (f" (default: {default})" if default else ""))
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help="input window for a variable-length model (default: its maximum, or 10 s)")


def load_cli_model(name_or_path: str, device: str | None, window_seconds: float | None):
    """The model for a command; ``window_seconds`` picks the input window of a variable-length model."""
    from ..models import load_model

    model = load_model(name_or_path, device)
    if window_seconds is None:
        return model
    if not window_seconds > 0:
        raise ConfigError(f"--window is a positive number of seconds; got {window_seconds}.")
    return load_model(name_or_path, device, window=int(round(window_seconds * model.card.sample_rate)))
