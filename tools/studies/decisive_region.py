"""Do the maps find a decisive region? Share of the top-2 % cells' saliency mass in the region, per method
and domain, on the decisive-region models of :mod:`earmark.data.regions` (one per placement: the region at
every DWT level, two straddling a level edge, early / middle / late in the clip, louder distractors).

    python tools/studies/decisive_region.py --rows runs/regions.jsonl --out docs/results/decisive-region.md

Every method runs at its defaults, except RELAX, which compares class probabilities: these models have no
embedding, and the cosine between their logit vectors ``(4E/ref − 2, 0)`` is only the sign of the first (the
learnable and minimal masks also run with the papers' objectives,
``ce_cap="none"`` / ``score_cap="none"``, as "paper objective" rows), seed 0. Rows are appended to
``--rows`` as they finish and a rerun skips those already there. The score ties at the cut are shared
evenly (:func:`earmark.data.regions.region_share`); the "sorted" column breaks them by sort order instead,
as a plain ``topk`` does.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from earmark.data.regions import PLACEMENTS, region_share, region_task, truth_cells
from earmark.explainers import EXPLAINERS, explain
from earmark.transforms import get_transform
from rows import add_row, load_rows  # noqa: E402  (tools/studies, the script's folder)

SR = 8000
DOMAINS = ("dwt", "stft", "mel", "time")
#: (row name, explainer, settings)
RUNS = (("saliency", "saliency", {}), ("ig", "ig", {}), ("smoothgrad", "smoothgrad", {}),
        ("wam_sg", "wam_sg", {}), ("wam_ig", "wam_ig", {}), ("freqrise", "freqrise", {}),
        ("relax (class probabilities)", "relax", {"similarity": "probs"}), ("learnable_mask", "learnable_mask", {}),
        ("learnable_mask (paper objective)", "learnable_mask", {"ce_cap": "none"}),
        ("minimal_mask", "minimal_mask", {}),
        ("minimal_mask (paper objective)", "minimal_mask", {"score_cap": "none"}))


def transform(domain: str):
    """The domains at the model's STFT resolution (128-point frames, hop 32); the DWT at sym2, level 5."""
    if domain in ("stft", "mel"):
        extra = {"n_mels": 32} if domain == "mel" else {}
        return get_transform(domain, SR, n_fft=128, hop=32, **extra)
    if domain == "dwt":
        return get_transform("dwt", SR, wavelet="sym2", level=5)
    return get_transform(domain, SR)


def sorted_share(saliency: torch.Tensor, truth: torch.Tensor, top: float = 0.02) -> float:
    """The same share with ties broken by ``topk``'s order (what a plain ranking reports)."""
    s = saliency.flatten().double().clamp_min(0)
    values, index = s.topk(max(1, int(round(top * s.numel()))))
    return float((values * truth.flatten()[index]).sum() / values.sum()) if float(values.sum()) > 0 else 0.0


def run(args) -> list[dict]:
    path = Path(args.rows)
    rows = load_rows(path)
    done = {(r["placement"], r["domain"], r["method"]) for r in rows}
    wanted = args.methods.split(",") if args.methods else [name for name, _, _ in RUNS]
    tasks: dict[str, object] = {}
    for domain in args.domains.split(","):
        t = transform(domain)
        for placement in [PLACEMENTS[int(i)] for i in args.placements.split(",")] if args.placements else PLACEMENTS:
            truth = None
            for name, method, settings in RUNS:
                if name not in wanted or (placement.name, domain, name) in done:
                    continue
                if not EXPLAINERS.get(method).supports(domain):
                    continue
                if placement.name not in tasks:
                    tasks[placement.name] = region_task(placement)
                task = tasks[placement.name]
                truth = truth if truth is not None else truth_cells(t, task)
                start = time.time()
                e = explain(task.model, task.wave, t, 0, method=method, seed=0, **settings)
                row = {"placement": placement.name, "domain": domain, "method": name,
                       "share": region_share(e.saliency, truth), "sorted": sorted_share(e.saliency, truth),
                       "truth_cells": int(truth.sum()), "cells": truth.numel(),
                       "at_max": int((e.saliency == e.saliency.max()).sum()), "seconds": time.time() - start}
                add_row(path, rows, row)
    return rows


def table(rows: list[dict]) -> str:
    rows = list({(r["placement"], r["domain"], r["method"]): r for r in rows}.values())   # a row written twice counts once
    names = [name for name, _, _ in RUNS if any(r["method"] == name for r in rows)]
    head = "| method | " + " | ".join(DOMAINS) + " |\n|---|" + "---:|" * len(DOMAINS)
    lines = [head]
    for name in names:
        cells = []
        for d in DOMAINS:
            v = [r["share"] for r in rows if r["method"] == name and r["domain"] == d]
            cells.append(f"{sum(v) / len(v):.2f} ({min(v):.2f}–{max(v):.2f}, {len(v)})" if v else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    placements = [p.name for p in PLACEMENTS if any(r["placement"] == p.name for r in rows)]
    dwt = ["| method (DWT) | " + " | ".join(p.replace("|", "/") for p in placements) + " |",
           "|---|" + "---:|" * len(placements)]
    for name in names:
        by = {r["placement"]: r for r in rows if r["method"] == name and r["domain"] == "dwt"}
        if by:
            dwt.append(f"| {name} | " + " | ".join(
                f"{by[p]['share']:.2f} ({by[p]['sorted']:.2f})" if p in by else "—" for p in placements) + " |")
    return ("Share of the top-2 % cells' saliency mass in the decisive region (ties shared evenly), per method "
            "and domain: mean over placements (min–max, placements).\n\nCommands (one rows file): `python "
            "tools/studies/decisive_region.py --domains dwt,stft --rows ROWS.jsonl`, then `python "
            "tools/studies/decisive_region.py --domains mel,time --placements 0,4 --methods \"saliency,ig,smoothgrad,"
            "freqrise,relax (class probabilities),learnable_mask,minimal_mask\" --rows ROWS.jsonl --out "
            "docs/results/decisive-region.md`\n\n"
            + "\n".join(lines) + "\n\nIn the DWT per placement (in brackets: ties broken by sort order, as a plain "
            "`topk` ranks them):\n\n" + "\n".join(dwt) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="decisive-region.jsonl")
    ap.add_argument("--domains", default=",".join(DOMAINS))
    ap.add_argument("--methods", default="", help="row names, comma-separated (default: all)")
    ap.add_argument("--placements", default="", help="indices into PLACEMENTS, comma-separated (default: all)")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    text = table(run(args))
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
