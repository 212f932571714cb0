"""Helpers shared by the sub-commands: key=value settings, clip resolution, a text progress bar."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ..command import format_settings  # noqa: F401  (re-exported for older callers)
from ..errors import ConfigError
from ..validate import SEED_LIMIT, check_out_dir  # noqa: F401 - re-exported for the sub-commands


# ---- argparse value types: each refuses a bad value with one clause (argparse adds the flag) ----------

def seed_arg(text: str) -> int:
    """``--seed``: a whole number from 0 to 2**63 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**63 - 1, not {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**63 - 1, not {text}")
    return value


def _whole_at_least(low: int):
    """An argparse type: a whole number ≥ ``low``, with a one-line message otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, not {text}")
        return value
    parse.__name__ = "whole number"
    return parse


#: A whole number ≥ 1 (``--n``, ``--steps``, ``--batch-size``, ``--epochs``, ``--threads``).
positive_int = _whole_at_least(1)
#: A whole number ≥ 0 (``--curve``, where 0 means off).
nonneg_int = _whole_at_least(0)


def _int_list(text: str, low: int) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < low:
        raise argparse.ArgumentTypeError(f"expected a comma list of whole numbers of at least {low}, not {text!r}")
    return values


def positive_int_list(text: str) -> tuple[int, ...]:
    """A comma list of whole numbers ≥ 1 (``--curve-masks 200,400,1000``)."""
    return _int_list(text, 1)


def nonneg_int_list(text: str) -> tuple[int, ...]:
    """A comma list of whole numbers ≥ 0 (``--burners 0,1,2``)."""
    return _int_list(text, 0)


def class_index(text: str) -> int | str:
    """``--target``: a class index (a whole number ≥ 0) or a label name (resolved once the model is loaded,
    by :func:`earmark.models.adapt.label_index`)."""
    try:
        value = int(text)
    except ValueError:
        try:
            float(text)            # 3.7, nan, inf: a number that is not a class index
        except ValueError:
            if text.strip():
                return text.strip()
        raise argparse.ArgumentTypeError(f"a target is a class index (a whole number such as 3) or a label name, "
                                         f"not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a target is a class index (0 or more), not {text}")
    return value


def finite_float(low: float, high: float, *, low_open: bool = False):
    """A float in [low, high] (``(low, high]`` with ``low_open``); NaN and inf refused."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (low < value if low_open else low <= value) and value <= high
        if not math.isfinite(value) or not inside:
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"expected a number in {bracket}{low:g}, {high:g}], not {text!r}")
        return value
    parse.__name__ = "number"
    return parse


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
    """``progress(fraction, stage)`` on stderr: a bar redrawn in place on a terminal; elsewhere (a log file,
    a pipe, CI) one plain line per :data:`LOG_STEP` of progress, so a long run can be followed with ``tail``.
    ``enabled=False`` silences it."""

    #: Share of the work between two lines when stderr is not a terminal.
    LOG_STEP = 0.1

    def __init__(self, label: str = "", *, enabled: bool | None = None, width: int = 30, tty: bool | None = None):
        self.label, self.width = label, width
        self.enabled = True if enabled is None else enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.started = time.perf_counter()
        self._last = -1.0
        self.unit = "masks"
        self._partial = ""

    def partial(self, saliency, done: int, total: int, convergence: float | None) -> None:
        """An ``on_partial`` listener: the bar then shows masks/steps so far and the convergence figure."""
        conv = "" if convergence is None else f" top10% {convergence:.2f}"
        self._partial = f"{done}/{total} {self.unit}{conv}"

    def __call__(self, fraction: float, stage: str = "") -> None:
        step = 0.01 if self.tty else self.LOG_STEP
        if not self.enabled or (fraction - self._last < step and fraction < 1.0) or min(fraction, self._last) >= 1.0:
            return
        if not self.tty and fraction < self.LOG_STEP:      # a log gets its first line once work is under way
            return
        self._last = fraction
        if not self.tty:
            elapsed = time.perf_counter() - self.started
            extra = f" {self._partial}" if self._partial else ""
            sys.stderr.write(f"{self.label} {fraction:5.1%} {stage}{extra} {elapsed:.1f}s\n")
            sys.stderr.flush()
            return
        filled = int(self.width * fraction)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / fraction - elapsed if fraction > 0 else float("nan")
        bar = "█" * filled + "·" * (self.width - filled)
        extra = f" {self._partial}" if self._partial else ""
        sys.stderr.write(f"\r{self.label} {bar} {fraction:5.1%} {stage[:28]:<28}{extra} {elapsed:6.1f}s "
                         f"eta {eta:5.1f}s")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def job(self, job) -> None:
        """Observer of an :class:`earmark.jobs.Job`: the bar with masks/steps so far and the convergence."""
        detail = job.stage
        if job.done is not None and job.total:
            detail = f"{job.done:,}/{job.total:,} {job.unit}"
            if job.convergence is not None:
                detail += f" conv {job.convergence:.2f}"
        self(job.progress, detail)

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
