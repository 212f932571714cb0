"""Variance reduction for FreqRISE / RELAX: agreement with a 30,000-mask reference map at 200–3,000 masks.

    EARMARK_DATA=... python tools/studies/variance_reduction.py --model melcnn-digits --clips 1 --out runs/vr
    python tools/studies/variance_reduction.py --model synth-tf --task synth-tf --clips 3 --out runs/vr-synth

Runs :func:`earmark.bench.quality_curve` on the first clips of the FSDD test split (balanced order, seed 0),
in the STFT, explaining the true class; writes OUT/<method>-<clip>.md and .json.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

from earmark.bench import CURVE_VARIANTS, curve_markdown, quality_curve
from earmark.models import load_model
from earmark.transforms import get_transform

try:
    from earmark.data.datasets import open_dataset
except ImportError:  # before the data/ move
    from earmark.data.datasets import open_dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="melcnn-digits")
    ap.add_argument("--task", default=None, help="a synthetic task (synth-freq, synth-tf) instead of FSDD")
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--methods", default="freqrise")
    ap.add_argument("--transform", default="stft")
    ap.add_argument("--reference", type=int, default=30000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--counts", default="200,400,1000,2000,3000")
    ap.add_argument("--variants", default=None, help="comma list of CURVE_VARIANTS names (default: all)")
    ap.add_argument("--others-up-to", type=int, default=None, help="cap the counts of all but the paper's")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, "cpu")
    clips = open_dataset(card=model.card, task=args.task, split="test", n=args.clips, seed=0)
    transform = get_transform(args.transform, model.card.sample_rate)
    for item in list(clips)[:args.clips]:
        for method in args.methods.split(","):
            stem = out / f"{method}-{item.name}"
            if stem.with_suffix(".json").exists():
                continue
            points, meta = quality_curve(model, item.wave, transform, method=method, target=int(item.label),
                                         reference_masks=args.reference, seeds=tuple(range(args.seeds)),
                                         counts=tuple(int(c) for c in args.counts.split(",")),
                                         variants=({k: CURVE_VARIANTS[k] for k in args.variants.split(",")}
                                                   if args.variants else None),
                                         others_up_to=args.others_up_to,
                                         progress=lambda line: print(item.name, line, flush=True))
            meta.update({"clip": item.name, "model": args.model, "transform": args.transform,
                         "threads": torch.get_num_threads()})
            stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "points": [asdict(p) for p in points]},
                                                            indent=2))
            stem.with_suffix(".md").write_text(f"# {method}, {args.model}, {item.name}\n\n" + curve_markdown(points, meta))
            print(curve_markdown(points, meta), flush=True)


if __name__ == "__main__":
    main()
