"""Cards and model folders as untrusted data: bounded JSON, every field checked, folders scanned safely.

* :func:`read_json`: a JSON file of at most :data:`MAX_CARD_BYTES`, nested at most :data:`MAX_DEPTH` deep
  (checked on the text before parsing, so a 100,000-deep card is one sentence, not a RecursionError), not
  a FIFO or device (which would hang or never end).
* :func:`check_fields`: the type and range of every field Earmark reads (lengths, rates, indices, names).
  New fields join :data:`FIELD_CHECKS` with one line each.
* :func:`scan_folder`: the model-looking entries of a folder (``$EARMARK_MODELS``, the uploads) with a note
  for each entry skipped — symlink loops, broken links, FIFOs, sockets, devices, unreadable entries.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable

from ...errors import ModelError

#: Sample rates a card may declare, in Hz.
RATE_RANGE = (1000, 384_000)

MAX_CARD_BYTES = 1 << 20
MAX_DEPTH = 32
#: The longest input a card may declare (samples): ~35 min at 16 kHz, ~87 s at 384 kHz.
MAX_SAMPLES = 1 << 25
MAX_LABELS = 100_000
MAX_TEXT = 10_000
MAX_OUTPUT_INDEX = 1024
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def read_json(path: Path, source: str | None = None) -> Any:
    """Parse a small JSON file (a card, a config) with size and depth limits.

    Raises:
        ModelError: not a regular file, too large, nested too deep, or not JSON.
    """
    source = source or path.name
    try:
        info = os.stat(path)
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"{source} cannot be read ({type(exc).__name__}: {exc}); check the file.") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{source} is not a regular file (a FIFO, device or folder); put a JSON file there.")
    if info.st_size > MAX_CARD_BYTES:
        raise ModelError(f"{source} is {info.st_size / 1e6:.1f} MB; a card or config is at most "
                         f"{MAX_CARD_BYTES >> 20} MB of JSON.")
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_CARD_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source} is not readable UTF-8 JSON ({exc}); fix the file.") from None
    return parse_json(text, source)


def parse_json(text: str, source: str) -> Any:
    """``json.loads`` with the size and depth limits of :func:`read_json`."""
    if len(text) > MAX_CARD_BYTES:
        raise ModelError(f"{source} is longer than {MAX_CARD_BYTES >> 20} MB of JSON.")
    depth = deepest = 0
    for char in _STRINGS.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                raise ModelError(f"{source} nests more than {MAX_DEPTH} levels deep; a card is a flat JSON object.")
        elif char in "]}":
            depth -= 1
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ModelError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{source} is not readable JSON ({str(exc)[:200]}); fix the file.") from None


def _no_constant(name: str):
    raise ModelError(f"The JSON holds {name}, which is not a number; write a finite number.")


# ---- fields ----------------------------------------------------------------------------------------------

def _bad(source: str, name: str, want: str, value: Any) -> ModelError:
    shown = repr(value)
    return ModelError(f"'{name}' in {source} must be {want}; got {shown[:60]}{'...' if len(shown) > 60 else ''}.")


def _int_in(lo: int, hi: int, what: str) -> Callable[[str, str, Any], None]:
    def check(source: str, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _bad(source, name, f"{what}, a whole number from {lo:,} to {hi:,}", value)
    return check


def _length(source: str, name: str, value: Any) -> None:
    if isinstance(value, str) and value.lower() == "variable" and name == "input_length":
        return
    _int_in(1, MAX_SAMPLES, "a number of samples" + (' (or "variable")' if name == "input_length" else ""))(
        source, name, value)


def _rate(source: str, name: str, value: Any) -> None:
    _int_in(RATE_RANGE[0], RATE_RANGE[1], "a sample rate in Hz")(source, name, value)


def _labels(source: str, name: str, value: Any) -> None:
    if isinstance(value, dict):   # a pattern ({"pattern": "note {i}", "range": [21, 109]}): checked by expanding it
        from ..adapt import expand_labels

        labels = expand_labels(value, source)
        if any(len(label) > 200 for label in labels):
            raise _bad(source, name, "class names of at most 200 characters", "a longer one from its pattern")
        return
    if not isinstance(value, list) or not 0 < len(value) <= MAX_LABELS or not all(
            (isinstance(v, str) and len(v) <= 200) or (isinstance(v, int) and not isinstance(v, bool)) for v in value):
        raise _bad(source, name, f"a list of 1 to {MAX_LABELS:,} class names (each at most 200 characters)",
                   value if not isinstance(value, list) else f"a list of {len(value)}")


def _output(source: str, name: str, value: Any) -> None:
    if isinstance(value, str) and 0 < len(value) <= 200:
        return
    _int_in(0, MAX_OUTPUT_INDEX, "an output index (or an output name)")(source, name, value)


def _text(source: str, name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise _bad(source, name, f"text of at most {MAX_TEXT:,} characters", value)


def _activation(source: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or value.lower() not in ("softmax", "sigmoid"):
        raise _bad(source, name, '"softmax" or "sigmoid"', value)


#: field → check(source, name, value); a field absent from the card is not checked here.
FIELD_CHECKS: dict[str, Callable[[str, str, Any], None]] = {
    "sample_rate": _rate, "input_length": _length, "max_length": _length, "window": _length, "labels": _labels,
    "activation": _activation, "embedding_output": _output, "logits_output": _output,
    **{k: _text for k in ("name", "title", "licence", "license", "training_data", "notes")},
}


def check_fields(data: dict, source: str, *, index_only: bool = False) -> None:
    """Type- and range-check every known field of a card dict.

    Args:
        index_only: output fields must be indices (TorchScript, torch.export), not names (ONNX).

    Raises:
        ModelError: one sentence naming the field, what it must be and what it holds.
    """
    if not isinstance(data, dict):
        raise ModelError(f"{source} must be a JSON object with sample_rate, input_length, labels.")
    for name, check in FIELD_CHECKS.items():
        if name in data:
            check(source, name, data[name])
    if index_only:
        for name in ("logits_output",):
            if isinstance(data.get(name), str):
                raise _bad(source, name, "an output index (this format's outputs have no names)", data[name])


def declared_rate(value: Any, where: str) -> int | None:
    """A sample rate stored inside a model file (metadata, attribute): ``None`` when absent, else a whole,
    finite number of Hz in range.

    Raises:
        ModelError: "nan", "1e400", "16k", 16000.5 and the like.
    """
    if value is None:
        return None
    number: float
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) or isinstance(value, bool) \
            else float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not RATE_RANGE[0] <= number <= RATE_RANGE[1]:
        raise ModelError(f"{where} gives the sample rate {str(value)[:40]!r}, which is not a whole number of Hz "
                         f"between {RATE_RANGE[0]:,} and {RATE_RANGE[1]:,}; fix or remove it.")
    return int(number)


# ---- folders ---------------------------------------------------------------------------------------------

def scan_folder(folder: Path, suffixes: tuple[str, ...]) -> tuple[list[tuple[Path, str]], list[str]]:
    """(entries, notes): the model-looking entries of ``folder`` as (resolved path, kind), and one note per
    entry skipped. Never raises for a strange entry (loop, broken link, FIFO, socket, device, no permission).

    ``kind`` is ``"Hugging Face"``, ``"SpeechBrain"``, ``"folder"``, or the file's suffix.
    """
    found: list[tuple[Path, str]] = []
    notes: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name.lower())
    except OSError as exc:
        return [], [f"{folder.name}: cannot be listed ({exc.strerror or exc})"]
    for entry in entries[:10_000]:
        if entry.name.startswith("."):
            continue
        try:
            resolved = Path(entry.path).resolve(strict=True)
            info = os.stat(resolved)
        except RuntimeError:
            notes.append(f"{entry.name}: skipped (a symbolic-link loop)")
            continue
        except OSError as exc:
            why = ("a symbolic-link loop" if exc.errno == 40 else
                   "a broken link" if entry.is_symlink() else exc.strerror or str(exc))
            notes.append(f"{entry.name}: skipped ({why})")
            continue
        if stat.S_ISDIR(info.st_mode):
            kind = ("Hugging Face" if _regular(resolved / "config.json") else
                    "SpeechBrain" if _regular(resolved / "hyperparams.yaml") else "folder")
        elif stat.S_ISREG(info.st_mode):
            if resolved.suffix not in suffixes and Path(entry.name).suffix not in suffixes:
                continue
            kind = Path(entry.name).suffix
        else:
            if Path(entry.name).suffix in suffixes:
                notes.append(f"{entry.name}: skipped (not a regular file: a FIFO, socket or device)")
            continue
        found.append((resolved, kind))
    return found, notes


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, RuntimeError):
        return False


__all__ = ["FIELD_CHECKS", "MAX_CARD_BYTES", "MAX_DEPTH", "MAX_SAMPLES", "check_fields", "declared_rate",
           "parse_json", "read_json", "scan_folder"]
