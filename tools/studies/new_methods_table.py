"""The faithfulness table of docs/studies/faithfulness.md for any set of ``earmark evaluate`` runs: per explainer ×
domain the clips, mean I / D / RI / RD / insertion / deletion / faithfulness, median FF, seconds per clip and the
mean margins over the ``energy`` reference on the same clips and domain (positive = better than energy).

Usage:
    python tools/studies/new_methods_table.py RUN.csv|RUN/results.jsonl ... --reference ENERGY.csv [--first N]

Rows are read from ``results.csv`` files or straight from ``results.jsonl`` (a run still going); ``--first N``
keeps the first N clips of the evaluation's balanced order (seed 0, via ``energy_margins.first_clips``), and only
clips that every (explainer, domain) pair of a file has finished are kept, so every row of a file covers the same
clips. The reference file's energy rows must come from the same model; a run with energy rows of its own uses those.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from energy_margins import METRICS, compact, first_clips, margins  # noqa: E402

COLUMNS = ("I", "D", "RI", "RD", "insertion_auc", "deletion_auc", "faithfulness")


def read(path: Path) -> list[dict]:
    """Rows of one run (csv or jsonl), each tagged with its source file."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip().startswith("{")]
    else:
        import csv

        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    for r in rows:
        r["source"] = str(path)
    return rows


def complete(rows: list[dict]) -> list[dict]:
    """Only the clips that every (explainer, domain) pair of these rows has."""
    pairs = {(r["explainer"], r["transform"]) for r in rows}
    per_clip = defaultdict(set)
    for r in rows:
        per_clip[r["clip"]].add((r["explainer"], r["transform"]))
    done = {c for c, have in per_clip.items() if have >= pairs}
    return [r for r in rows if r["clip"] in done]


def value(r: dict, m: str) -> float | None:
    v = r.get(m)
    return None if v in (None, "") else float(v)


def table(rows: list[dict], reference: list[dict]) -> list[str]:
    order = list(dict.fromkeys((r["explainer"], r["transform"]) for r in rows))
    clips = {r["clip"] for r in rows}
    if any(r["explainer"] == "energy" for r in rows):      # the run has its own bar (same model): that one
        reference = []
    ref = [dict(r, source="energy") for r in reference if r["explainer"] == "energy" and r["clip"] in clips]
    margin = margins([dict(r, source="run") for r in rows] + ref)
    head = ("| explainer | domain | clips | I ↑ | D ↓ | RI | RD | insertion AUC ↑ | deletion AUC ↓ | faithfulness ↑ | "
            "FF ↑ (median) | s / clip | Δ vs energy: I / D / ins / del / faith ↑ |")
    lines = [head, "|---|---|---:|" + "---:|" * 9 + "---|"]
    for e, t in order:
        group = [r for r in rows if (r["explainer"], r["transform"]) == (e, t)]
        cells = [e, t, str(len(group))]
        for m in COLUMNS:
            vals = [v for v in (value(r, m) for r in group) if v is not None]
            cells.append(f"{statistics.fmean(vals):.2f}" if vals else "—")
        ff = [v for v in (value(r, "FF") for r in group) if v is not None]
        cells.append(f"{statistics.median(ff):.2f}" if ff else "—")
        cells.append(f"{statistics.fmean(value(r, 'seconds') for r in group):.1f}")
        cells.append(compact(margin[("run", e, t)]) if ("run", e, t) in margin else "0 (the bar)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--reference", type=Path, default=None,
                        help="energy rows of the same model (csv or jsonl), for runs without their own")
    parser.add_argument("--first", type=int, default=None, help="only the first N clips of the balanced order")
    args = parser.parse_args(argv)
    keep = first_clips(args.first) if args.first else None
    reference = read(args.reference) if args.reference else []
    for path in args.runs:
        rows = [r for r in read(path) if keep is None or r["clip"] in keep]
        rows = complete(rows)
        name = path.parent.name if path.name.startswith("results.") else path.stem
        print(f"\n### `{name}`: {len({r['clip'] for r in rows})} clips, every row on the same clips\n")
        print("\n".join(table(rows, reference)))
    return 0


assert set(METRICS) <= set(COLUMNS)

if __name__ == "__main__":
    raise SystemExit(main())
