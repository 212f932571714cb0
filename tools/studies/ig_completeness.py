"""IG's completeness gap from the zero baseline on FSDD test clips, for a digit model and a front-end floor.

The straight path from 0 to x is the same waveform path in every linear domain, so the gap
``Σ IG − (f(x) − f(0))`` is the same in all of them (up to round-off); it is measured in the STFT.
Clips: the first ``--n`` of ``earmark evaluate``'s balanced order (seed 0), the true class explained.

Usage (before/after the soft-RMS front end):
    python tools/studies/ig_completeness.py --weights runs/audionet-round1.pt --floor 0.001 --n 20
    python tools/studies/ig_completeness.py --n 20 --spacing uniform   # the bundled weights, the paper's path
    python tools/studies/ig_completeness.py --n 20                     # ... with the cubic path
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

from earmark import explain, get_transform, load_model
from earmark.data.datasets import open_dataset
from earmark.models.base import load_weights


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="audionet-digits")
    parser.add_argument("--weights", default=None, help="other weights for the model (e.g. the round-1 ones)")
    parser.add_argument("--floor", type=float, default=None, help="the model's soft-RMS floor (default: its own)")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--spacing", default="cubic", help="IG's path spacing: uniform (paper) or cubic")
    parser.add_argument("--data", default=os.environ.get("EARMARK_DATA"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.model, "cpu", shared=False)
    if args.weights:
        load_weights(model, args.weights)
    if args.floor is not None:
        model.level_floor.fill_(args.floor)
    model.eval()
    clips = open_dataset(data=args.data, card=model.card, split="test", n=args.n, seed=0)
    t = get_transform("stft", model.card.sample_rate)
    gaps, rel, first_jump = [], [], []
    for _name, wave, label in clips:
        label = int(label)
        e = explain(model, wave, t, label, method="ig", n_steps=args.steps, baselines="zero",
                    spacing=args.spacing)
        c = e.completeness()
        gaps.append(c["gap"])
        rel.append(c["relative_gap"])
        with torch.no_grad():   # how much of f(x) − f(0) happens before the first path point (α = 1/(2n))
            ends = model(torch.stack([torch.zeros_like(wave), wave / (2 * args.steps), wave]))[:, label]
        first_jump.append(float((ends[1] - ends[0]) / (ends[2] - ends[0])))
    out = {"model": args.model, "weights": args.weights or "bundled", "floor": float(model.level_floor) if hasattr(model, "level_floor") else None,
           "clips": len(gaps), "n_steps": args.steps, "spacing": args.spacing, "mean_gap": statistics.fmean(gaps),
           "mean_abs_gap": statistics.fmean(abs(g) for g in gaps), "mean_relative_gap": statistics.fmean(rel),
           "median_relative_gap": statistics.median(rel), "flagged": sum(r > 0.1 for r in rel),
           "mean_share_of_change_before_first_step": statistics.fmean(first_jump)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
