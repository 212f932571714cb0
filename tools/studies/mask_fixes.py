"""Before/after of the mask-method fixes on the same explanations: inert cells and the minimal mask's cap.

For each clip (the first ``--n`` of ``earmark evaluate``'s balanced order, seed 0, the true class) and
domain, every method runs once at the given budget; its fixed map (``inert="none"``) and its raw map
(``extras["raw_saliency"]``, the paper's) are scored by the same metrics on the same probe, so the
difference is the inert-cell fix alone. ``minimal_mask_paper`` is the minimal mask with the paper's
uncapped objective (``score_cap="none"``), to compare with the capped default. ``energy`` is the bar.

Usage:
    python tools/studies/mask_fixes.py --n 5 --transforms stft,dwt --out runs/mask-fixes \
        [--weights runs/audionet-round1.pt --floor 0.001]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from earmark import explain, get_transform, load_model
from earmark.data.datasets import open_dataset
from earmark.metrics import MetricContext, compute_metrics
from earmark.models.base import load_weights
from earmark.probe import Probe

METRICS = ["I", "D", "insertion_auc", "deletion_auc", "faithfulness"]
BUDGETS = {
    "freqrise": {"n_masks": 300},
    "relax": {"n_masks": 300},
    "learnable_mask": {"steps": 100, "restarts": 2},
    "minimal_mask": {"steps": 100, "restarts": 2},
    "minimal_mask_paper": {"steps": 100, "restarts": 2, "score_cap": "none"},
    "energy": {},
}


def summary(lines: list[str]) -> str:
    """Markdown: per method × domain, mean raw → fixed metrics over the clips every method finished."""
    rows = [json.loads(line) for line in lines if line.strip()]
    per_clip: dict[str, set] = {}
    for r in rows:
        per_clip.setdefault(r["clip"], set()).add((r["method"], r["transform"]))
    full = max(len(v) for v in per_clip.values())
    clips = {c for c, v in per_clip.items() if len(v) == full}
    energy = {(r["clip"], r["transform"]): r["fixed"] for r in rows if r["method"] == "energy"}
    out = ["| method | domain | clips | inert share | I raw → fixed | D raw → fixed | faithfulness raw → fixed "
           "| margin over energy, fixed: I / D / faith | final size / score |",
           "|---|---|---:|---:|---|---|---|---|---|"]
    keys = sorted({(r["method"], r["transform"]) for r in rows if r["method"] != "energy"}, key=lambda k: (k[1], k[0]))
    for method, domain in keys:
        sel = [r for r in rows if (r["method"], r["transform"]) == (method, domain) and r["clip"] in clips]
        if not sel:
            continue
        mean = lambda kind, m: sum(r[kind][m] for r in sel) / len(sel)  # noqa: E731
        marg = [sum((r["fixed"][m] - energy[(r["clip"], domain)][m]) * (-1 if m == "D" else 1) for r in sel) / len(sel)
                for m in ("I", "D", "faithfulness")]
        size = (f"{sum(r['final_size'] for r in sel) / len(sel):.3f} / {sum(r['final_score'] for r in sel) / len(sel):.2f}"
                if "final_size" in sel[0] else "")
        out.append(f"| {method} | {domain} | {len(sel)} | {sum(r.get('inert_share', 0) for r in sel) / len(sel):.2f} | "
                   + " | ".join(f"{mean('raw', m):.2f} → {mean('fixed', m):.2f}" for m in ("I", "D", "faithfulness"))
                   + " | " + " / ".join(f"{v:+.2f}" for v in marg) + f" | {size} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="audionet-digits")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--floor", type=float, default=None)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--transforms", default="stft,dwt")
    parser.add_argument("--methods", default=",".join(BUDGETS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default=os.environ.get("EARMARK_DATA"))
    parser.add_argument("--summary", action="store_true", help="print the markdown table of --out's rows and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary((args.out / "rows.jsonl").read_text().splitlines()))
        return 0
    torch.set_num_threads(1)
    model = load_model(args.model, "cpu", shared=False)
    if args.weights:
        load_weights(model, args.weights)
    if args.floor is not None:
        model.level_floor.fill_(args.floor)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.jsonl"
    done = set()
    if rows_path.exists():
        done = {(r["clip"], r["method"], r["transform"]) for r in map(json.loads, rows_path.read_text().splitlines())}
    clips = list(open_dataset(data=args.data, card=model.card, split="test", n=args.n, seed=0))
    for name, wave, label in clips:
        for domain in args.transforms.split(","):
            t = get_transform(domain, model.card.sample_rate)
            for method in args.methods.split(","):
                if (name, method, domain) in done:
                    continue
                started = time.perf_counter()
                real = "minimal_mask" if method == "minimal_mask_paper" else method
                e = explain(model, wave, t, int(label), method=real, seed=0, **BUDGETS[method])
                probe = Probe(model, t, wave, target=int(label))
                row = {"clip": name, "method": method, "transform": domain, "seconds": time.perf_counter() - started}
                maps = {"fixed": e.saliency}
                if "raw_saliency" in e.extras:
                    maps["raw"] = e.extras["raw_saliency"]
                    row["inert_share"] = float(e.extras["inert"].mean())
                if "final_score" in e.extras:
                    row["final_size"] = float(1 - e.extras["final_sparsity"].mean())
                    row["final_score"] = float(e.extras["final_score"].mean())
                for kind, sal in maps.items():
                    ctx = MetricContext(probe, sal, seed=0)
                    row[kind] = compute_metrics(list(METRICS), ctx)
                with rows_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
