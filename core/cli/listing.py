"""``earmark list``: what is registered (models, transforms, explainers, metrics, examples)."""

from __future__ import annotations

import argparse

WHAT = ("models", "transforms", "explainers", "metrics", "examples")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list models, transforms, explainers (with hyperparameters), metrics, examples",
                       description="Show what Earmark knows by name, with declared parameters and defaults.")
    p.add_argument("what", nargs="?", choices=WHAT, default=None, help="one kind (default: all)")
    p.set_defaults(run=run)


def _params(params) -> str:
    return "; ".join(f"{p.name}={p.default!r}" for p in params) or "—"


def run(args: argparse.Namespace) -> int:
    kinds = [args.what] if args.what else list(WHAT)
    for kind in kinds:
        print(f"{kind}:")
        if kind == "models":
            from ..models import MODELS
            for spec in MODELS:
                print(f"  {spec.name:18s} {spec.title}")
        elif kind == "transforms":
            from ..transforms import TRANSFORMS
            for cls in TRANSFORMS:
                print(f"  {cls.name:18s} {cls.title}  [{_params(cls.params)}]")
        elif kind == "explainers":
            from ..explainers import EXPLAINERS
            for spec in EXPLAINERS:
                domains = ",".join(spec.domains) if spec.domains else "all domains"
                print(f"  {spec.name:18s} {spec.title} ({spec.family}; {domains})\n"
                      f"  {'':18s} params: {_params(spec.params)}\n  {'':18s} uncertainty: {spec.uncertainty}")
        elif kind == "metrics":
            from ..metrics import METRICS
            for spec in METRICS:
                print(f"  {spec.name:18s} {spec.direction} is better — {spec.describe()}")
        elif kind == "examples":
            from ..examples import list_examples
            for ex in list_examples():
                print(f"  {ex.name:24s} {ex.kind}" + (f" (label {ex.label})" if ex.label is not None else ""))
    return 0
