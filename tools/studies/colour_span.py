"""Colour span on the default clip: how much of the colour bar the live cells' 5th–95th percentiles cover.

For every explainer at the app's starting settings (stop="auto"; FreqRISE Sobol + control variate;
RELAX antithetic), on the bundled AudioNet and the default example ("seven"), in one domain:

    python tools/studies/colour_span.py --transform stft [--out docs/results/colour-span-stft.md]

The span is (p95 − p5) of the shown values on live cells divided by (zmax − zmin), computed three ways:
colour by value with the limits over every cell (round 2), by value over live cells only, and by rank over
live cells (the app's default).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from earmark.audio import prepare
from earmark.display import colour_scale, display_grid, live_values, resolve_reference, baseline_of
from earmark.examples import default_example
from earmark.explainers import EXPLAINERS, explain
from earmark.models import load_model
from earmark.transforms import get_transform

APP = {"*": {"stop": "auto"}, "freqrise": {"sampler": "sobol", "estimator": "control_variate"},
       "relax": {"sampler": "antithetic"}}


def span(scale, values: np.ndarray) -> float:
    shown = scale.shown(values)
    lo, hi = np.percentile(shown, [5, 95])
    return float((min(hi, scale.zmax) - max(lo, scale.zmin)) / (scale.zmax - scale.zmin))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transform", default="stft")
    ap.add_argument("--model", default="audionet-digits")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    wave = prepare(default_example(), sample_rate=model.card.sample_rate, num_samples=model.card.num_samples).wave
    t = get_transform(args.transform, model.card.sample_rate)
    rows = ["| explainer | live cells | by value, limits over all cells | by value, live cells | by rank, live cells |",
            "|---|---:|---:|---:|---:|"]
    for name in EXPLAINERS.names():
        spec = EXPLAINERS.get(name)
        if not spec.supports(args.transform):
            continue
        params = {k: v for k, v in {**APP["*"], **APP.get(name, {})}.items() if k in {p.name for p in spec.params}}
        exp = explain(model, wave, t, method=name, seed=0, **params)
        g = display_grid(t, wave, exp.saliency, exp.uncertainty)
        base = baseline_of(exp, spec)
        ref_all = resolve_reference(g.saliency, spec, "auto", baseline=base)
        ref_live = resolve_reference(live_values(g), spec, "auto", baseline=base)
        before = colour_scale(g.saliency, reference=ref_all, baseline=base)
        after = colour_scale(g.saliency, reference=ref_live, baseline=base, live=g.live)
        ranked = colour_scale(g.saliency, reference=ref_live, baseline=base, live=g.live, contrast="rank")
        lv = live_values(g)
        rows.append(f"| {name} | {g.live.mean():.0%} | {span(before, lv):.2f} | {span(after, lv):.2f} | "
                    f"{span(ranked, lv):.2f} |")
        print(rows[-1], flush=True)
    text = (f"Colour span on the default clip ({args.model}, {args.transform}): share of the colour bar covered "
            f"by the live cells' 5th–95th percentiles.\n\nCommand: `python tools/studies/colour_span.py "
            f"--transform {args.transform}`\n\n" + "\n".join(rows) + "\n")
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
