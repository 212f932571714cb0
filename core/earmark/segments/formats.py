"""Segment files: Praat TextGrid, Raven selection table, Audacity label track, CSV ``start,end,label[,score]``.

:func:`load` reads a file and recognises its format from the content (the extension only breaks ties);
:func:`parse` reads text in a named format. Every problem is one :class:`~earmark.errors.DataError` sentence
that names the file, the line where it applies, and what to do.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Callable

from ..errors import DataError
from .base import Segments

#: Raven columns tried, in order, for the label when no ``tier`` (column name) is given.
RAVEN_LABEL_COLUMNS = ("Annotation", "Label", "Species", "Call Type", "Class", "Code", "Sound Type")
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(?<![\w.])([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])|(<exists>|<absent>)')
MAX_BYTES = 20_000_000


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("latin-1")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
            raise DataError(f"{name} is not a text file; give a TextGrid, a Raven table, an Audacity label "
                            "track or a CSV.") from exc


# ---------------------------------------------------------------------------------------------- TextGrid
def _textgrid_tokens(text: str) -> list[str | float]:
    """Praat's text reading: only strings (``"..."``, ``""`` escapes a quote), numbers and ``<exists>`` count;
    names such as ``xmin =`` and indices in brackets (``item [1]:``) are skipped."""
    text = re.sub(r"\[[^\]\n]*\]", " ", text)          # item [1]: / intervals [2]: (never inside a number)
    out: list[str | float] = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            out.append(float(m.group(2)))
        else:
            out.append(m.group(3))
    return out


def parse_textgrid(text: str, tier: str | None = None, *, name: str = "the TextGrid") -> Segments:
    """Praat TextGrid (long or short text format) → the intervals of one interval tier, empty labels skipped.

    Args:
        tier: the tier's name or its 1-based number; default: the first interval tier.

    Raises:
        DataError: not a TextGrid, truncated, no such tier, or a point tier chosen.
    """
    if "ooTextFile" not in text[:200] or "TextGrid" not in text[:200]:
        raise DataError(f"{name} is not a Praat TextGrid (its first line should read File type = \"ooTextFile\" "
                        "and Object class = \"TextGrid\"); save it from Praat as a text file.")
    tokens = _textgrid_tokens(text)
    pos = 0

    def take(kind: type, what: str):
        nonlocal pos
        if pos >= len(tokens):
            raise DataError(f"{name} ends early, while reading {what}; the file is truncated or not a TextGrid.")
        value = tokens[pos]
        pos += 1
        if kind is float and not isinstance(value, float) or kind is str and not isinstance(value, str):
            raise DataError(f"{name} has {value!r} where {what} should be; the file is damaged or not a TextGrid.")
        return value

    take(str, "the file type")
    take(str, "the object class")
    take(float, "the start time")
    take(float, "the end time")
    if take(str, "<exists>") != "<exists>":
        raise DataError(f"{name} has no tiers; add an interval tier in Praat.")
    tiers: dict[str, tuple[str, list]] = {}
    order: list[str] = []
    for t in range(int(take(float, "the number of tiers"))):
        kind = take(str, "a tier class")
        tier_name = take(str, "a tier name")
        take(float, "the tier start")
        take(float, "the tier end")
        items = []
        for _ in range(int(take(float, "the number of intervals"))):
            if kind == "IntervalTier":
                items.append((take(float, "an interval start"), take(float, "an interval end"),
                              take(str, "an interval text")))
            else:
                take(float, "a point time")
                take(str, "a point mark")
        tiers.setdefault(tier_name, (kind, items))
        order.append(tier_name)
    if tier is None:
        chosen = next((n for n in order if tiers[n][0] == "IntervalTier"), None)
        if chosen is None:
            raise DataError(f"{name} has only point tiers ({', '.join(order)}); segments need an interval tier.")
    else:
        chosen = str(tier)
        if chosen not in tiers and chosen.isdigit() and 1 <= int(chosen) <= len(order):
            chosen = order[int(chosen) - 1]
        if chosen not in tiers:
            raise DataError(f"{name} has no tier '{tier}'; its tiers are: {', '.join(order)}.")
        if tiers[chosen][0] != "IntervalTier":
            raise DataError(f"Tier '{chosen}' of {name} is a point tier; choose an interval tier "
                            f"({', '.join(n for n in order if tiers[n][0] == 'IntervalTier') or 'none'}).")
    kept = [(a, b, lab.strip()) for a, b, lab in tiers[chosen][1] if lab.strip()]
    if not kept:
        raise DataError(f"Tier '{chosen}' of {name} has no labelled interval; every label is empty.")
    return Segments([a for a, _, _ in kept], [b for _, b, _ in kept], [lab for _, _, lab in kept])


# ---------------------------------------------------------------------------------------------- tables
def _number(value: str, what: str, name: str, line: int) -> float:
    try:
        out = float(value.strip())
    except ValueError:
        raise DataError(f"Line {line} of {name} has {value.strip()!r} as {what}, which is not a number of "
                        "seconds.") from None
    return out


def _build(rows: list[tuple[float, float, str, float | None]], name: str) -> Segments:
    if not rows:
        raise DataError(f"{name} lists no segments; it needs at least one row of start, end and label.")
    scores = [r[3] for r in rows]
    try:
        return Segments([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                        None if any(s is None for s in scores) else scores)
    except Exception as exc:  # ConfigError from validation: say which file
        raise DataError(f"{name}: {exc}") from None


def parse_raven(text: str, tier: str | None = None, *, name: str = "the Raven table") -> Segments:
    """Raven selection table (tab-separated, ``Begin Time (s)``, ``End Time (s)``) → segments.

    Args:
        tier: the label column (default: the first of :data:`RAVEN_LABEL_COLUMNS` present, else the
            ``Selection`` number). Rows of the spectrogram view only are kept when a ``View`` column exists;
            a ``Score`` column (a scan's events) becomes the segments' scores.
    """
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = [h.strip() for h in next(reader, [])]
    for need in ("Begin Time (s)", "End Time (s)"):
        if need not in header:
            raise DataError(f"{name} has no '{need}' column; export the selection table from Raven.")
    b, e = header.index("Begin Time (s)"), header.index("End Time (s)")
    if tier is not None:
        if tier not in header:
            raise DataError(f"{name} has no column '{tier}'; its columns are: {', '.join(header)}.")
        lab = header.index(tier)
    else:
        lab = next((header.index(c) for c in RAVEN_LABEL_COLUMNS if c in header),
                   header.index("Selection") if "Selection" in header else None)
    view = header.index("View") if "View" in header else None
    sc = header.index("Score") if "Score" in header else None
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) <= max(b, e):
            raise DataError(f"Line {line} of {name} has {len(cells)} columns; the header has {len(header)}.")
        if view is not None and len(cells) > view and cells[view].strip() and "spectrogram" not in cells[view].lower():
            continue
        label = cells[lab].strip() if lab is not None and lab < len(cells) else str(len(rows) + 1)
        score = _number(cells[sc], "the score", name, line) if sc is not None and sc < len(cells) else None
        rows.append((_number(cells[b], "Begin Time", name, line), _number(cells[e], "End Time", name, line),
                     label or str(len(rows) + 1), score))
    return _build(rows, name)


def parse_audacity(text: str, tier: str | None = None, *, name: str = "the label track") -> Segments:
    """Audacity label track (``start<TAB>end<TAB>label`` per line; ``\\`` frequency lines skipped)."""
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("\\"):
            continue
        cells = raw.split("\t")
        if len(cells) < 2:
            raise DataError(f"Line {line} of {name} is not 'start<TAB>end<TAB>label'; export labels from Audacity "
                            "(File > Export > Export Labels).")
        label = cells[2].strip() if len(cells) > 2 else ""
        rows.append((_number(cells[0], "the start", name, line), _number(cells[1], "the end", name, line),
                     label or str(len(rows) + 1), None))
    return _build(rows, name)


def parse_csv(text: str, tier: str | None = None, *, name: str = "the CSV") -> Segments:
    """CSV with a header naming ``start`` and ``end`` (seconds), optionally ``label`` and ``score`` (a scan's
    events: ``start,end,label,score``).

    Args:
        tier: the label column (default ``label``).
    """
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "start" not in header or "end" not in header:
        raise DataError(f"{name} needs a header with 'start' and 'end' columns (seconds), e.g. "
                        "'start,end,label'; its first line is {!r}.".format(",".join(header)[:60]))
    s, e = header.index("start"), header.index("end")
    label_col = (tier or "label").lower()
    if tier is not None and label_col not in header:
        raise DataError(f"{name} has no column '{tier}'; its columns are: {', '.join(header)}.")
    lab = header.index(label_col) if label_col in header else None
    sc = header.index("score") if "score" in header else None
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) <= max(s, e):
            raise DataError(f"Line {line} of {name} has {len(cells)} columns; the header has {len(header)}.")
        label = cells[lab].strip() if lab is not None and lab < len(cells) else ""
        score = _number(cells[sc], "the score", name, line) if sc is not None and sc < len(cells) else None
        rows.append((_number(cells[s], "the start", name, line), _number(cells[e], "the end", name, line),
                     label or str(len(rows) + 1), score))
    return _build(rows, name)


#: Format name → parser ``(text, tier, *, name) → Segments``.
FORMATS: dict[str, Callable[..., Segments]] = {
    "textgrid": parse_textgrid, "raven": parse_raven, "audacity": parse_audacity, "csv": parse_csv,
}


def sniff(text: str, suffix: str = "") -> str:
    """The format of ``text``: by content first (TextGrid header, Raven columns, a CSV header), then by
    ``suffix``."""
    head = text.lstrip()[:300]
    first = head.splitlines()[0] if head else ""
    if "ooTextFile" in head:
        return "textgrid"
    if "Begin Time (s)" in first:
        return "raven"
    if "," in first and "start" in first.lower():
        return "csv"
    if suffix.lower() == ".textgrid":
        return "textgrid"
    if suffix.lower() == ".csv":
        return "csv"
    return "audacity"


def parse(text: str, fmt: str, tier: str | None = None, *, name: str = "the segment file") -> Segments:
    """Read ``text`` in format ``fmt`` (a key of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise DataError(f"Unknown segment format '{fmt}'; use one of: {', '.join(FORMATS)}.")
    return FORMATS[fmt](text, tier, name=name)


def load(path: str | Path, tier: str | None = None, *, fmt: str | None = None) -> Segments:
    """Segments from a file: a Praat TextGrid, a Raven selection table, an Audacity label track or a CSV
    ``start,end,label[,score]``, recognised from its content.

    Args:
        path: the file.
        tier: TextGrid tier (name or 1-based number); for Raven and CSV, the label column.
        fmt: force a format (a key of :data:`FORMATS`) instead of recognising it.

    Raises:
        DataError: the file is missing, too large, or not a readable segment file (one sentence).

    Example:
        >>> segs = load("words.TextGrid", tier="words")     # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Segment file {path} does not exist; give a TextGrid, Raven table, Audacity label "
                        "track or CSV.")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"Segment file {path.name} is over {MAX_BYTES // 1_000_000} MB; segment files are small "
                        "text tables, so this is probably not one.")
    return read_bytes(path.read_bytes(), path.name, tier, fmt=fmt)


def read_bytes(data: bytes, name: str, tier: str | None = None, *, fmt: str | None = None) -> Segments:
    """Segments from a file's bytes (an upload): as :func:`load`, the format from the content and ``name``'s
    extension."""
    if len(data) > MAX_BYTES:
        raise DataError(f"Segment file {name} is over {MAX_BYTES // 1_000_000} MB; segment files are small "
                        "text tables, so this is probably not one.")
    text = _decode(data, name)
    if "\x00" in text:
        raise DataError(f"{name} is a binary file, not a segment table; give a TextGrid, Raven table, "
                        "Audacity label track or CSV.")
    return parse(text, fmt or sniff(text, Path(name).suffix), tier, name=name)


__all__ = ["FORMATS", "RAVEN_LABEL_COLUMNS", "load", "parse", "parse_audacity", "parse_csv", "parse_raven",
           "parse_textgrid", "read_bytes", "sniff"]
