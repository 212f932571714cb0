"""MkDocs hook: render the result files in ``docs/results/`` into the study pages.

A study page names a result file on a line of its own::

    {{ result fsdd-gradient.md }}              # a report: its tables, without its top heading
    {{ result fsdd-gradient.csv }}             # a CSV: the whole table, or means per explainer × domain
    {{ result learnable-dwt-probe.txt }}       # text: a code block
    {{ result synth-tf-curves.png }}           # an image
    {{ result anytime/loadtest.json }}         # anything else: a link with its size

and the hook replaces the line with the file's content, rendered, followed by a link to the file itself.
A line ``{{ registry explainers }}`` becomes a section per registered explainer, built from its spec (family,
domains, paper, uncertainty meaning, declared parameters with defaults and ranges), so that table is the
code's. The hook also turns the Sphinx roles left in docstrings into cross-references of the API reference.
A missing file stops the build, so a page never shows a table that is not in the repository. Result files
that no page names are listed in the build log (``mkdocs build`` prints them as INFO).

Registered in ``mkdocs.yml`` (``hooks:``); it needs nothing beyond the standard library.
"""

from __future__ import annotations

import csv
import logging
import math
import posixpath
import re
from collections import defaultdict
from pathlib import Path

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.results")

MARKER = re.compile(r"^\{\{[ \t]*result[ \t]+(?P<name>[^\s}]+)[ \t]*\}\}[ \t]*$", re.MULTILINE)
SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
RESULTS = "results"           # the folder under docs_dir
FULL_ROWS = 40                # a CSV with at most this many rows is shown whole
_used: set[str] = set()


def _number(text: str) -> float | None:
    if text in ("True", "False"):
        return float(text == "True")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    clean = lambda cell: str(cell).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(clean(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_csv(path: Path) -> str:
    """A small CSV whole; a per-clip CSV as the mean of each numeric column per explainer × domain."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return f"*`{path.name}` is empty.*"
    header, body = rows[0], rows[1:]
    if len(body) <= FULL_ROWS or not {"explainer", "transform"} <= set(header):
        shown = body[:FULL_ROWS]
        note = "" if len(body) <= FULL_ROWS else f"\n\n*First {FULL_ROWS} of {len(body)} rows.*"
        return _table(header, shown) + note
    ie, it = header.index("explainer"), header.index("transform")
    skip = {"explainer", "transform", "clip", "label", "target", "predicted", "settings"}
    numeric = [i for i, name in enumerate(header) if name not in skip
               and any(_number(r[i]) is not None for r in body if i < len(r))]
    groups: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for r in body:
        groups[(r[ie], r[it])].append(r)
    out = []
    for (explainer, transform), members in groups.items():
        cells = [explainer, transform, str(len(members))]
        for i in numeric:
            values = [v for v in (_number(r[i]) if i < len(r) else None for r in members) if v is not None]
            cells.append(_fmt(sum(values) / len(values)) if values else "")
        out.append(cells)
    head = ["explainer", "domain", "rows"] + [header[i] for i in numeric]
    return (_table(head, out) + f"\n\n*Mean per explainer × domain over the {len(body)} rows of "
            f"`{path.name}` (one row per clip; a True/False column gives the share of True).*")


def separate_tables(markdown: str) -> str:
    """Tables as GitHub reads them: a blank line before a table that follows text directly, and a separator
    row with as many columns as the header (Python-Markdown needs both; GitHub needs neither)."""
    lines, out, fenced = markdown.split("\n"), [], False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        starts_table = (not fenced and line.lstrip().startswith("|") and i + 1 < len(lines)
                        and SEPARATOR.match(lines[i + 1]) is not None)
        if starts_table and out and out[-1].strip() and not out[-1].lstrip().startswith("|"):
            out.append("")
        if not fenced and SEPARATOR.match(line) and out and out[-1].lstrip().startswith("|"):
            columns = lambda row: len(re.split(r"(?<!\\)\|", row.strip().strip("|")))  # noqa: E731
            missing = columns(out[-1]) - columns(line)
            if missing > 0:
                line = line.rstrip().rstrip("|") + "|" + "---:|" * missing
        out.append(line)
    return "\n".join(out)


def render_md(path: Path) -> str:
    """A report's body: its first top-level heading dropped, the rest two levels down."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("##" + line if re.match(r"^#{1,4} ", line) else line for line in lines).strip()


def render(path: Path, name: str, link: str) -> str:
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix == ".md":
        body = render_md(path)
    elif suffix == ".csv":
        body = render_csv(path)
    elif suffix == ".txt":
        body = "```text\n" + path.read_text(encoding="utf-8").rstrip() + "\n```"
    elif suffix in {".png", ".jpg", ".svg"}:
        return f"![{name}]({link})\n\n*Figure: [`{name}`]({link}).*"
    else:
        lines = sum(1 for _ in path.open("rb")) if suffix == ".jsonl" else None
        extent = f"{lines} rows, " if lines is not None else ""
        return f"- [`{name}`]({link}) ({extent}{size / 1024:.1f} KB)"
    return f"{body}\n\n*Source: [`docs/{RESULTS}/{name}`]({link}).*"


REGISTRY = re.compile(r"^\{\{[ \t]*registry[ \t]+explainers[ \t]*\}\}[ \t]*$", re.MULTILINE)


def _value(value) -> str:
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def render_explainers() -> str:
    """One section per registered explainer, from its spec: what it is, its domains, its declared parameters.

    Imports ``earmark`` (the installed package, or ``core/`` beside this file), so the table is the code's.
    """
    import sys
    core = str(Path(__file__).resolve().parents[2] / "core")
    if core not in sys.path:
        sys.path.insert(0, core)
    from earmark.explainers import EXPLAINERS

    out = []
    for spec in EXPLAINERS:
        domains = getattr(spec, "domains", None)
        facts = [f"**family** {getattr(spec, 'family', '—')}",
                 "**domains** " + (", ".join(f"`{d}`" for d in domains) if domains else "all")]
        if getattr(spec, "reference", ""):
            facts.append(f"**paper** {spec.reference}")
        out += [f"### `{spec.name}`: {getattr(spec, 'title', spec.name)}", "", " · ".join(facts), ""]
        if getattr(spec, "uncertainty", ""):
            out += [f"*Uncertainty map:* {spec.uncertainty}", ""]
        params = list(getattr(spec, "params", ()) or ())
        if params:
            rows = []
            for param in params:
                if getattr(param, "choices", None):
                    allowed = ", ".join(_value(c) for c in param.choices)
                elif getattr(param, "low", None) is not None or getattr(param, "high", None) is not None:
                    allowed = f"{param.low} … {param.high}"
                else:
                    allowed = ""
                rows.append([f"`{param.name}`", _value(param.default), allowed, getattr(param, "help", "")])
            out += [_table(["parameter", "default", "allowed", "meaning"], rows), ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs = Path(config["docs_dir"])
    page_dir = posixpath.dirname(page.file.src_uri)

    def replace(match: re.Match) -> str:
        name = match.group("name")
        path = docs / RESULTS / name
        if not path.is_file():
            raise PluginError(f"{page.file.src_uri}: result file docs/{RESULTS}/{name} does not exist; "
                              "run the command the page names to make it, or fix the name.")
        _used.add(name)
        link = posixpath.relpath(f"{RESULTS}/{name}", page_dir or ".")
        return render(path, name, link)

    markdown = MARKER.sub(replace, markdown)
    if REGISTRY.search(markdown):
        markdown = REGISTRY.sub(lambda _: render_explainers(), markdown)
    return separate_tables(markdown)


ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):<code>(?P<tilde>~?)(?P<target>[\w.]+)</code>")


def on_page_content(html: str, page, config, files) -> str:
    """Sphinx roles left in docstrings (``:class:`~earmark.probe.Probe```) become cross-references.

    mkdocstrings renders them as text; each becomes an optional autoref that links when the target is
    documented on the site and stays plain code otherwise.
    """
    def replace(match: re.Match) -> str:
        target = match.group("target")
        title = target.rsplit(".", 1)[-1] if match.group("tilde") else target
        return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'

    return ROLE.sub(replace, html)


def on_pre_build(config) -> None:
    _used.clear()


def on_post_build(config) -> None:
    folder = Path(config["docs_dir"]) / RESULTS
    if not folder.is_dir():
        return
    unused = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                    and p.relative_to(folder).as_posix() not in _used)
    if unused:
        log.info("result files no study page shows: %s", ", ".join(unused))
