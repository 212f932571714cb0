"""Models on disk: one small module per format, each turning a file or folder into an :class:`EarmarkModel`.

========================  =====================================================  ================
what the path holds        loader                                                  extra
========================  =====================================================  ================
folder with config.json    :mod:`.hf` (transformers, safetensors only)             ``earmark[hf]``
folder with hyperparams    :mod:`.speechbrain` (EncoderClassifier)                 ``earmark[speechbrain]``
``*.pt2``                  :mod:`.export` (``torch.export.load``)                  —
``*.pt`` / ``*.ts``        :mod:`.torchscript` (``torch.jit.load``)                —
``*.onnx``                 :mod:`.onnx` (onnxruntime; no gradients)                ``earmark[onnx]``
``pkg.module:function``    :mod:`.entrypoint` (returns an ``nn.Module``)           —
========================  =====================================================  ================

A folder holding exactly one model file of the kinds above is read as that file. Every loader ends with
:func:`.common.validate` (one forward pass on a test input). Before anything in a file runs, archives,
graphs (an operator allow-list), YAML and cards are checked as data (:mod:`.safety`, :mod:`.yamlcheck`,
:mod:`.cardcheck`; docs/guide/security.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ...errors import ModelError
from ..base import EarmarkModel
from . import bundled, card, entrypoint, export, hf, onnx, speechbrain, torchscript
from .card import is_card
from .common import validate
from .kinds import ENTRY_POINT, SUFFIXES

FORMATS = ("hf", "speechbrain", "export", "torchscript", "onnx", "entrypoint", "card", "bundled")
#: format → its loader module (each exposes ``load(path_or_target, device, *, window)``).
LOADERS = {"hf": hf, "speechbrain": speechbrain, "export": export, "torchscript": torchscript, "onnx": onnx,
           "entrypoint": entrypoint, "card": card, "bundled": bundled}


def looks_like_path(name: str) -> bool:
    """A string that names a file or folder (or an entry point) rather than a registered model."""
    return bool(ENTRY_POINT.match(name)) or Path(name).exists() or any(s in name for s in ("/", "\\")) \
        or Path(name).suffix in SUFFIXES


def detect(path: Path) -> tuple[str, Path]:
    """(format, the file or folder to load) for what ``path`` holds.

    Raises:
        ModelError: nothing loadable there, or more than one candidate in a folder.
    """
    if is_card(path):
        return "card", path
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf", path
        if (path / "hyperparams.yaml").is_file():
            return "speechbrain", path
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if len(files) == 1:
            return _format(files[0]), files[0]
        if not files and is_card(path / "card.json"):
            return "card", path / "card.json"
        if not files:
            raise ModelError(
                f"The folder {path.name} holds no model Earmark can read: a Hugging Face folder (config.json), a "
                "SpeechBrain folder (hyperparams.yaml), or one .pt2 / .pt / .onnx file with its card."
            )
        raise ModelError(f"The folder {path.name} holds several model files ({', '.join(p.name for p in files)}); "
                         "name one of them.")
    if path.is_file():
        if path.suffix in SUFFIXES:
            return _format(path), path
        if path.suffix in (".bin", ".pkl", ".pickle", ".ckpt", ".pth"):
            raise ModelError(
                f"{path.name} is a pickle checkpoint, which Earmark never loads (unpickling can run code); export the "
                "model with torch.export (.pt2), TorchScript (.pt) or ONNX (.onnx) and put a card beside it.")
        raise ModelError(f"Earmark cannot read {path.name}: use a .pt2, .pt, .onnx file or a model folder.")
    if path.exists():
        raise ModelError(f"{path.name} is not a regular file or folder (a FIFO, socket or device); point at a model "
                         "file.")
    raise ModelError(f"No model file or folder at {path}; check the path (or use a registered name).")


def _format(path: Path) -> str:
    """The loader of a model file: its suffix's, or ``bundled`` for weights from ``earmark train --out``."""

    return "bundled" if bundled.is_bundled(path) else SUFFIXES[path.suffix]


def load_path(name_or_path: str | Path, device: torch.device, *, window: int | None = None) -> EarmarkModel:
    """Load a model from a path or an entry point onto ``device`` and validate it (not frozen, not cached).

    Raises:
        ModelError: one sentence that says what to fix.
    """
    text = str(name_or_path)
    if ENTRY_POINT.match(text) and not Path(text).exists():
        fmt, target = "entrypoint", text
    else:
        fmt, target = detect(Path(text).expanduser())
    loader: Callable[..., EarmarkModel] = LOADERS[fmt].load
    model = loader(target, device, window=window)
    return validate(model, where=f"the card of {Path(str(target)).name}")


__all__ = ["FORMATS", "LOADERS", "SUFFIXES", "detect", "load_path", "looks_like_path", "validate"]
