"""Weights written by ``earmark train --out DIR`` (a plain state dict + its card) → the bundled architecture.

``earmark train`` saves float16 state dicts (``torch.load(weights_only=True)``: tensors only, never code) and
a card whose ``format`` is ``bundled`` and whose ``name`` starts with the architecture's bundled name
(``audionet-digits``, ``melcnn-digits``; e.g. ``melcnn-digits-cue7`` for a planted-cue run). A folder
holding such a pair, or the ``.pt`` itself, loads as that architecture with that card.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import ModelError
from .cardcheck import read_json
from ..base import EarmarkModel, ModelCard, load_weights


def _card_file(path: Path) -> Path:
    return path.with_suffix(".json")


def is_bundled(path: Path) -> bool:
    """Whether ``path`` (a ``.pt``) has a card beside it saying it holds bundled-architecture weights."""
    card = _card_file(path)
    if path.suffix != ".pt" or not card.is_file():
        return False
    try:
        data = read_json(card)              # bounded in size and depth
    except ModelError:
        return False
    return isinstance(data, dict) and data.get("format") == "bundled" and _architecture(str(data.get("name", ""))) is not None


def _architecture(name: str):
    from ...training.digits import ARCHITECTURES

    for arch, (bundled_name, factory) in ARCHITECTURES.items():
        if name == bundled_name or name.startswith(bundled_name + "-"):
            return factory
    return None


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None) -> EarmarkModel:
    """Build the architecture the card names, load the weights, attach the card.

    Raises:
        ModelError: the card names no bundled architecture, or the weights do not fit it.
    """
    path = Path(path)
    read_json(_card_file(path))             # bounded before the card is parsed
    card = ModelCard.load(_card_file(path))
    factory = _architecture(card.name)
    if factory is None:
        raise ModelError(f"The card of {path.name} names '{card.name}', which is no bundled architecture "
                         "(audionet-digits, melcnn-digits).")
    model = factory()
    try:
        load_weights(model, path)
    except RuntimeError as exc:
        raise ModelError(f"{path.name} does not fit the {card.name} architecture ({str(exc).splitlines()[0][:160]}).") from None
    model.card = card if window is None else card.with_window(window)
    return model.float().eval().to(device or "cpu")
