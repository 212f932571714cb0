"""Bit-identity check for behaviour-preserving refactors: every map the project computes, saved to one npz.

For the bundled example clip and AudioNet, at a fixed seed and small budgets, this computes every
explainer's saliency, uncertainty and numeric extras in every domain it supports, plus what is derived
from a map: its display image (``to_image``), the image's left inverse (``from_image``), the band sums,
the power image, the four listening versions (``earmark.sonify.listen``) and the default metrics. Run it
before and after a change and compare the two files:

    python tools/check_maps.py runs/maps-before.npz            # at the starting commit
    python tools/check_maps.py runs/maps-after.npz             # after the change
    python tools/check_maps.py --compare runs/maps-before.npz runs/maps-after.npz

``--compare`` prints the largest absolute difference per array and exits 1 if any array differs, is
missing on one side, or changes shape.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

#: Small budgets so the whole run takes about a minute on one CPU thread.
BUDGETS: dict[str, dict[str, int]] = {
    "saliency": {"n_draws": 2},
    "ig": {"n_steps": 8},
    "smoothgrad": {"n_samples": 4},
    "wam_sg": {"n_samples": 4},
    "wam_ig": {"n_steps": 8},
    "freqrise": {"n_masks": 64},
    "relax": {"n_masks": 64},
    "learnable_mask": {"steps": 6, "restarts": 2},
    "minimal_mask": {"steps": 6, "restarts": 2},
    "energy": {},
    "captum:DeepLift": {},
    "captum:GradientShap": {"n_samples": 2},
    "captum:NoiseTunnel": {"nt_samples": 2},
    "captum:Occlusion": {"stride": 0.25},
    "captum:FeatureAblation": {"cells": 8},
    "captum:KernelShap": {"n_samples": 16, "cells": 8},
    "captum:Lime": {"n_samples": 16, "cells": 8},
    "captum:ShapleyValueSampling": {"n_samples": 1, "cells": 8},
    "lrp": {},
    "flextime": {"steps": 4, "restarts": 2},
}
SEED = 0
FRACTION = 0.1


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _stateless(transform) -> bool:
    import inspect

    return "length" in inspect.signature(transform.to_image).parameters


def _image_and_bands(transform, saliency, length: int):
    """``to_image`` and ``band_sums`` of one map; before the stateless DWT (issue 16) they took no length."""
    if _stateless(transform):
        return (transform.to_image(saliency[None], length=length),
                transform.band_sums(saliency[None], length=length))
    return transform.to_image(saliency[None]), transform.band_sums(saliency[None])


def _from_image(transform, image, length: int):
    return transform.from_image(image, length=length) if _stateless(transform) else transform.from_image(image)


def compute(model_name: str = "audionet-digits", clip_name: str | None = None) -> dict[str, np.ndarray]:
    """Every array described in the module docstring, keyed ``"{explainer}/{domain}/{what}"``."""
    from earmark.audio import prepare
    from earmark.examples import DEFAULT_EXAMPLE, load_example
    from earmark.explainers import EXPLAINERS, explain
    from earmark.metrics import MetricContext, MetricOptions, compute_metrics, select_metrics
    from earmark.models import load_model
    from earmark.probe import Probe
    from earmark.sonify import listen
    from earmark.transforms import TRANSFORMS, get_transform

    torch.manual_seed(SEED)
    model = load_model(model_name, "cpu")
    card = model.card
    clip = prepare(load_example(clip_name or DEFAULT_EXAMPLE), sample_rate=card.sample_rate,
                   num_samples=card.num_samples)
    x = clip.wave
    out: dict[str, np.ndarray] = {}
    for domain in TRANSFORMS.names():
        transform = get_transform(domain, card.sample_rate)
        out[f"transform/{domain}/power_image"] = _np(transform.power_image(x[None]))
        for spec in EXPLAINERS:
            if spec.name not in BUDGETS:
                raise SystemExit(f"check_maps: no budget for the explainer '{spec.name}'; add one to BUDGETS.")
            if not spec.supports(domain):
                continue
            e = explain(model, x, transform, method=spec.name, seed=SEED, **BUDGETS[spec.name])
            key = f"{spec.name}/{domain}"
            out[f"{key}/saliency"] = _np(e.saliency)
            out[f"{key}/uncertainty"] = _np(e.uncertainty)
            for name, value in e.extras.items():
                if name != "settings":  # the learnable mask's unlabelled resolved values, until issue 16
                    out[f"{key}/extras/{name}"] = _np(value)
            if spec.name == "learnable_mask":  # the values it resolved, before (extras) and after (params)
                old = e.extras.get("settings")
                out[f"{key}/resolved"] = _np(old) if old is not None else np.array(
                    [e.params[k] for k in ("lambda_r", "lambda_s", "r", "init_high")], dtype=np.float32)
            image, rows = _image_and_bands(transform, e.saliency, len(x))
            out[f"{key}/image"] = _np(image)
            out[f"{key}/from_image"] = _np(_from_image(transform, image, len(x)))
            out[f"{key}/band_sums"] = _np(rows)
            for name, wave in listen(transform, x, e.saliency, FRACTION).items():
                out[f"{key}/listen/{name}"] = _np(wave)
            if spec.name in ("energy", "ig"):
                probe = Probe(model, transform, x, target=e.target)
                ctx = MetricContext(probe, e.saliency, seed=SEED, options=MetricOptions(mu_subsets=32))
                scores = compute_metrics(select_metrics("default"), ctx)
                out[f"{key}/metrics"] = np.array([scores[k] for k in sorted(scores)], dtype=np.float64)
                out[f"{key}/metric_names"] = np.array(sorted(scores))
    return out


def compare(before: Path, after: Path) -> int:
    a, b = np.load(before), np.load(after)
    status = 0
    worst = 0.0
    for key in sorted(set(a.files) | set(b.files)):
        if key not in a.files or key not in b.files:
            print(f"{key}: only in {'after' if key not in a.files else 'before'}")
            status = 1
            continue
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            print(f"{key}: shape/dtype {x.shape} {x.dtype} → {y.shape} {y.dtype}")
            status = 1
            continue
        if x.dtype.kind in "US":
            diff = 0.0 if np.array_equal(x, y) else float("inf")
        else:
            same = np.array_equal(x, y, equal_nan=True)
            diff = 0.0 if same else float(np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64))))
            diff = diff if diff > 0 or same else float("inf")
        worst = max(worst, diff)
        if diff != 0:
            print(f"{key}: max |Δ| = {diff:.3g}")
            status = 1
    print(f"{len(set(a.files) | set(b.files))} arrays compared; max abs difference over all: {worst:g}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="output npz, or two npz files with --compare")
    parser.add_argument("--compare", action="store_true", help="compare two npz files written by this script")
    args = parser.parse_args(argv)
    if args.compare:
        if len(args.paths) != 2:
            parser.error("--compare needs two npz files")
        return compare(*args.paths)
    torch.set_num_threads(1)
    arrays = compute()
    args.paths[0].parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.paths[0], **arrays)
    print(f"{len(arrays)} arrays written to {args.paths[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
