"""Shared fixtures: seeds, the data folder, small deterministic settings; test kinds as markers.

Every test gets one kind from its file name (see ``KINDS``): ``unit``, ``app`` (Streamlit's AppTest),
``browser`` (Chromium + Playwright) or ``fuzz``; tests in ``SLOW_FILES`` and ``SLOW_TESTS`` (and any test
marked ``@pytest.mark.slow`` by hand) are also ``slow``. The quick developer loop is::

    pytest -m "not slow and not browser and not fuzz"

Tests marked ``long`` (the full hostile-file run) are left out by default (``addopts`` in pyproject.toml);
``make fuzz`` runs them as scripts, ``pytest -m long`` as tests.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

#: File-name patterns → the kind of test (the first that matches; ``unit`` otherwise).
KINDS = (("test_browser*.py", "browser"), ("test_fuzz_*.py", "fuzz"), ("test_app*.py", "app"))

#: Slow by measurement (``pytest --durations=0``, full suite, 2 loaded cores): whole files, and test functions
#: (all their parameter cases) that took a minute or more there (about 4 s or more on an idle machine).
SLOW_FILES = frozenset({"test_engines.py", "test_digit_models.py"})
SLOW_TESTS = frozenset({
    "test_sanity.py::test_maps_lose_their_structure_when_the_model_is_random",
    "test_localisation.py::test_explainer_finds_the_keys",
    "test_loaders.py::test_same_network_same_logits_and_ig_in_every_format",
    "test_loaders.py::test_cli_bench_evaluate_and_list_with_a_model_path",
    "test_loaders.py::test_hf_model_explained_by_every_explainer_in_every_domain",
    "test_loaders.py::test_refusal_api_and_cli",
    "test_loaders.py::test_embedding_output_of_exported_formats",
    "test_app_models.py::test_models_folder_appears_in_the_picker_and_an_hf_model_is_explained",
})


def kind_of(filename: str) -> str:
    """The test kind of a test file, from its name: ``browser``, ``fuzz``, ``app`` or ``unit``."""
    return next((kind for pattern, kind in KINDS if fnmatch.fnmatch(filename, pattern)), "unit")


def _docs_state() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(ROOT)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in (ROOT / "docs").rglob("*") if p.is_file()}


def pytest_sessionstart(session):
    session.config._earmark_docs = _docs_state()


def pytest_sessionfinish(session, exitstatus):
    """Tests write into temporary folders, never into ``docs/`` (``make fuzz`` and ``EARMARK_SCREENSHOT=1`` do)."""
    before = getattr(session.config, "_earmark_docs", None)
    if before is None or os.environ.get("EARMARK_SCREENSHOT") == "1":
        return
    changed = sorted(name for name, state in _docs_state().items() if before.get(name) != state)
    if changed:
        session.config.get_terminal_writer().line(
            "\na test wrote into docs/ (tests must write into tmp_path): " + ", ".join(changed), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config, items):
    """Mark every collected test with its kind, and ``slow`` for ``SLOW_FILES`` and ``SLOW_TESTS``."""
    for item in items:
        name = item.path.name
        item.add_marker(getattr(pytest.mark, kind_of(name)))
        if name in SLOW_FILES or f"{name}::{getattr(item, 'originalname', item.name)}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)

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
