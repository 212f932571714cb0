"""Where the bundled files live: one reading of ``$EARMARK_ASSETS``.

``<assets>`` is ``$EARMARK_ASSETS`` when set, else the repository's ``assets/`` folder; model weights and
cards are in ``<assets>/models``, example clips in ``<assets>/examples``.
"""

from __future__ import annotations

import os
from pathlib import Path


def assets_dir() -> Path:
    """The assets folder: ``$EARMARK_ASSETS`` or ``<repo>/assets``."""
    override = os.environ.get("EARMARK_ASSETS")
    return Path(override).expanduser() if override else Path(__file__).resolve().parents[2] / "assets"


def models_dir() -> Path:
    """``<assets>/models``: bundled weights (``<name>.pt``) and model cards (``<name>.json``)."""
    return assets_dir() / "models"


__all__ = ["assets_dir", "models_dir"]
