"""Shared fixtures: seeds, the data folder, small deterministic settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(min(2, torch.get_num_threads()))


def fsdd_root() -> Path | None:
    """The FSDD folder from ``$EARMARK_DATA`` or ``../shared/data/fsdd`` beside the repo, if present."""
    for candidate in (os.environ.get("EARMARK_DATA"), ROOT.parent / "shared" / "data" / "fsdd"):
        if candidate and (Path(candidate) / "recordings").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def fsdd() -> Path:
    root = fsdd_root()
    if root is None:
        pytest.skip("FSDD not found: set EARMARK_DATA to the Free Spoken Digit Dataset folder")
    return root


#: Every device-dependent test runs on the CPU and on CUDA; the CUDA case skips, and says why, without a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here; the cuda case runs on a machine with a GPU"))]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """``cpu`` and ``cuda`` (skipped with a reason when no GPU is available)."""
    return torch.device(request.param)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
