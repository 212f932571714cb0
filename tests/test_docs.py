"""The documentation: the results hook renders result files faithfully, the README stays short and its links
resolve, and every page the site's navigation names exists. (``make docs`` builds the site with --strict.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
yaml = pytest.importorskip("yaml")
from mkdocs.exceptions import PluginError  # noqa: E402

spec = importlib.util.spec_from_file_location("results_hook", ROOT / "tools" / "studies" / "results_hook.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


class _File:
    def __init__(self, src_uri: str):
        self.src_uri = src_uri


class _Page:
    def __init__(self, src_uri: str):
        self.file = _File(src_uri)


def _docs(tmp_path: Path) -> Path:
    (tmp_path / "results").mkdir()
    return tmp_path


def test_a_per_clip_csv_becomes_means_per_explainer_and_domain(tmp_path):
    rows = ["clip,explainer,transform,correct,I,seconds"]
    for i in range(50):                                   # 25 clips × 2 methods: more than FULL_ROWS
        rows.append(f"c{i // 2},{'ig' if i % 2 else 'saliency'},stft,{i % 4 < 2},{i},{1.5}")
    path = tmp_path / "per-clip.csv"
    path.write_text("\n".join(rows) + "\n")
    table = hook.render_csv(path)
    lines = table.splitlines()
    assert lines[0] == "| explainer | domain | rows | correct | I | seconds |"
    ig = next(line for line in lines if line.startswith("| ig |"))
    saliency = next(line for line in lines if line.startswith("| saliency |"))
    # ig: odd i = 1, 3, ..., 49 → mean 25; correct when i % 4 < 2 → i = 1, 5, 9, ... → 13 of 25 = 0.52
    assert ig == "| ig | stft | 25 | 0.52 | 25 | 1.5 |"
    assert saliency == "| saliency | stft | 25 | 0.52 | 24 | 1.5 |"
    assert "50 rows" in table


def test_a_small_csv_is_shown_whole(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,b\n1,x|y\n2,z\n")
    assert hook.render_csv(path) == "| a | b |\n|---|---|\n| 1 | x\\|y |\n| 2 | z |"


def test_tables_get_a_blank_line_and_a_full_separator_but_code_is_untouched():
    text = "Some text:\n| a | b \\| c | d |\n|---|---|\n| 1 | 2 | 3 |\n\n```\ntext\n| x |\n|---|\n```"
    out = hook.separate_tables(text)
    assert out.split("\n")[:4] == ["Some text:", "", "| a | b \\| c | d |", "|---|---|---:|"]
    assert out.endswith("```\ntext\n| x |\n|---|\n```")


def test_a_marker_becomes_the_file_with_a_relative_link(tmp_path):
    docs = _docs(tmp_path)
    (docs / "results" / "bench.md").write_text("# Earmark bench\n\n- model x\n\n## Side\n\n| a |\n|---|\n| 1 |\n")
    page = "# Speed\n\n{{ result bench.md }}\n\nAfter.\n"
    out = hook.on_page_markdown(page, _Page("studies/speed.md"), {"docs_dir": str(docs)}, None)
    assert "# Earmark bench" not in out and "#### Side" in out and "| 1 |" in out
    assert "[`docs/results/bench.md`](../results/bench.md)" in out
    assert out.rstrip().endswith("After.")


def test_a_missing_result_file_stops_the_build(tmp_path):
    docs = _docs(tmp_path)
    with pytest.raises(PluginError, match="does not exist"):
        hook.on_page_markdown("{{ result nope.csv }}\n", _Page("studies/x.md"), {"docs_dir": str(docs)}, None)


def test_sphinx_roles_become_optional_cross_references():
    html = "see :class:<code>~earmark.probe.Probe</code> and :func:<code>explain</code>"
    out = hook.on_page_content(html, None, None, None)
    assert '<autoref identifier="earmark.probe.Probe" optional><code>Probe</code></autoref>' in out
    assert '<autoref identifier="explain" optional><code>explain</code></autoref>' in out


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_pages(value)]
    return [p for item in node for p in _nav_pages(item)]


def test_every_page_in_the_navigation_exists_and_every_study_names_its_command():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = _nav_pages(config["nav"])
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing, missing
    for page in (p for p in pages if p.startswith("studies/") and p != "studies/index.md"):
        assert "How these results were produced" in (ROOT / "docs" / page).read_text(), page


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target
