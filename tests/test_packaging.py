"""src layout: ``core/`` is the source root, the import name is the folder name, no list to keep."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_packages_are_found_not_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "package-dir" not in config and set(config["packages"]) == {"find"}
    assert config["packages"]["find"]["where"][0] == "core"
    from setuptools import find_packages

    found = set(find_packages("core"))
    on_disk = {
        ".".join(init.parent.relative_to(ROOT / "core").parts)
        for init in (ROOT / "core").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found == on_disk and "earmark" in found


def test_import_name_is_the_folder_name():
    import earmark
    import dashboard

    assert Path(earmark.__file__).resolve().parent == ROOT / "core" / "earmark"
    assert Path(dashboard.__file__).resolve().parent == ROOT / "dashboard"


def test_the_app_has_no_path_insertion():
    assert "sys.path" not in (ROOT / "dashboard" / "app.py").read_text()
