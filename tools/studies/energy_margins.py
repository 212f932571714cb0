"""Margins of every explainer × domain over the model-free ``energy`` reference, on matched clips.

Reads per-clip result rows (the ``.csv`` files ``earmark evaluate`` writes beside its tables), pairs every
(clip, domain) row of an explainer with the energy row of the same clip and domain (from any of the
files), and reports the mean margin with its standard error, signed so that **positive = better than
energy**: I, insertion AUC and faithfulness as explainer − energy; D and deletion AUC as energy −
explainer (lower is better there).

Usage:
    python tools/studies/energy_margins.py docs/results/fsdd-gradient.csv docs/results/fsdd-sampling.csv \
        docs/results/fsdd-reference.csv [--markdown] [--first N] [--means]

``--first N`` keeps the first N clips of ``earmark evaluate``'s balanced order (seed 0; needs the FSDD folder
in ``$EARMARK_DATA``), so rows of a 300-clip run can be compared with a 20-clip rerun on the same clips.
``--means`` also prints each group's mean metrics (and IG's completeness gap where the rows have it).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

#: metric → +1 when higher is better, −1 when lower is better.
METRICS = {"I": 1, "D": -1, "insertion_auc": 1, "deletion_auc": -1, "faithfulness": 1}
SHORT = {"I": "I", "D": "D", "insertion_auc": "ins", "deletion_auc": "del", "faithfulness": "faith"}


def read_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                row["source"] = path.stem
                rows.append(row)
    return rows


def first_clips(n: int) -> set[str]:
    """Names of the first ``n`` FSDD test clips in ``earmark evaluate``'s balanced order (seed 0)."""
    import os

    from earmark.data.datasets import open_dataset
    from earmark.models import load_model

    card = load_model("audionet-digits", "cpu").card
    return {name for name, _, _ in open_dataset(data=os.environ.get("EARMARK_DATA"), card=card, split="test", n=n,
                                                 seed=0)}


def means(rows: list[dict]) -> dict[tuple[str, str, str], dict[str, float]]:
    """{(source, explainer, domain): mean of every metric (and completeness_relative) over its rows}."""
    groups: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for m in list(METRICS) + ["completeness_gap", "completeness_relative"]:
            if r.get(m) not in (None, ""):
                groups[(r["source"], r["explainer"], r["transform"])][m].append(float(r[m]))
    return {k: {m: sum(v) / len(v) for m, v in per.items()} | {"n": max(len(v) for v in per.values())}
            for k, per in groups.items()}


def margins(rows: list[dict], *, reference: str = "energy") -> dict[tuple[str, str, str], dict]:
    """{(source, explainer, domain): {"n": clips, metric: (mean margin, standard error)}}."""
    ref = {(r["clip"], r["transform"]): r for r in rows if r["explainer"] == reference}
    groups: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["explainer"] == reference or (r["clip"], r["transform"]) not in ref:
            continue
        e = ref[(r["clip"], r["transform"])]
        key = (r["source"], r["explainer"], r["transform"])
        for m, sign in METRICS.items():
            if r.get(m) not in (None, "") and e.get(m) not in (None, ""):
                groups[key][m].append(sign * (float(r[m]) - float(e[m])))
    out = {}
    for key, per in groups.items():
        stats = {"n": max(len(v) for v in per.values())}
        for m, v in per.items():
            mean = sum(v) / len(v)
            sd = math.sqrt(sum((a - mean) ** 2 for a in v) / max(len(v) - 1, 1))
            stats[m] = (mean, sd / math.sqrt(len(v)))
        out[key] = stats
    return out


def compact(stats: dict) -> str:
    """``+0.13 / −0.01 / +0.05 / +0.00 / +0.04`` (I / D / insertion / deletion / faithfulness)."""
    return " / ".join(f"{stats[m][0]:+.2f}".replace("-", "−") if m in stats else "—" for m in METRICS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", type=Path)
    parser.add_argument("--markdown", action="store_true", help="a markdown table (default: plain text)")
    parser.add_argument("--first", type=int, default=None, help="only the first N clips of the balanced order")
    parser.add_argument("--means", action="store_true", help="also print each group's mean metrics")
    args = parser.parse_args(argv)
    rows = read_rows(args.csv)
    if args.first:
        keep = first_clips(args.first)
        rows = [r for r in rows if r["clip"] in keep]
    if args.means:
        for (source, explainer, domain), st in sorted(means(rows).items()):
            print("  ".join([source, explainer, domain, str(st.pop("n"))] + [f"{k} {v:.3f}" for k, v in st.items()]))
    table = margins(rows)
    head = ["source", "explainer", "domain", "clips"] + [f"Δ{SHORT[m]}" for m in METRICS]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|---|---|" + "---:|" * (len(head) - 3))
    for (source, explainer, domain), st in sorted(table.items()):
        cells = [source, explainer, domain, str(st["n"])]
        cells += [f"{st[m][0]:+.3f} ± {st[m][1]:.3f}" if m in st else "—" for m in METRICS]
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
