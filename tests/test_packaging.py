"""The wheel ships every sub-package of ``core/`` under the import name ``earmark``."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_core_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"earmark": "core"}
    on_disk = sorted(
        "earmark" + "".join("." + part for part in init.parent.relative_to(ROOT / "core").parts)
        for init in (ROOT / "core").rglob("__init__.py")
    )
    assert sorted(config["packages"]) == on_disk


def test_import_name_is_earmark():
    import earmark

    assert Path(earmark.__file__).resolve().parent == ROOT / "core"
