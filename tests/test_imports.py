"""The package's imports draw a house without circles (none hidden inside functions either)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles():
    mods, graph, lazy, cycles = _tool().cycles(ROOT / "core")
    assert len(mods) > 50 and sum(map(len, graph.values())) > 200     # it read the package
    assert cycles == []


def test_the_tool_finds_a_cycle(tmp_path):
    pkg = tmp_path / "earmark"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def x():\n    from .a import y\n")
    _, _, lazy, cycles = _tool().cycles(tmp_path)
    assert cycles == [["earmark.a", "earmark.b"]] and lazy["earmark.b"] == {"earmark.a"}
