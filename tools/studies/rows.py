"""Resumable study rows: one JSON object per line, appended as each finishes, read back on a rerun."""
from __future__ import annotations

import json
from pathlib import Path


def load_rows(path: Path) -> list[dict]:
    """The rows already in ``path`` (none when it does not exist)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def add_row(path: Path, rows: list[dict], row: dict) -> None:
    """Append ``row`` to ``rows`` and to the file, and print it."""
    rows.append(row)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(row, flush=True)
