"""``earmark list``: what is registered (models, transforms, explainers, metrics, examples)."""

from __future__ import annotations

import argparse

from .common import add_model_arguments, load_cli_model

WHAT = ("models", "transforms", "explainers", "metrics", "examples")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list models, transforms, explainers (with hyperparameters), metrics, examples",
                       description="Show what Earmark knows by name, with declared parameters and defaults.")
    p.add_argument("what", nargs="?", choices=WHAT, default=None, help="one kind (default: all)")
    add_model_arguments(p, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda or mps (with --model)")
    p.set_defaults(run=run)


def _params(params) -> str:
    return "; ".join(f"{p.name}={p.default!r}" for p in params) or "—"


def model_report(model) -> str:
    """The card's facts and what the model can run, one line each (``earmark list --model PATH``)."""
    from ..explainers import EXPLAINERS

    card = model.card
    lines = [f"{card.name}: {card.title}"] + [f"  {k:20s} {v}" for k, v in card.facts().items()]
    lines.append("  explainers:")
    for spec in EXPLAINERS:
        reason = spec.unavailable(card, model)
        lines.append(f"    {spec.name:16s} " + ("yes" if reason is None else f"no: {reason}"))
    return "\n".join(lines)


def _models_folder() -> None:
    """The entries of ``$EARMARK_MODELS`` (what the app's picker shows beside the registered models)."""
    import os
    from pathlib import Path

    from ..models.loaders import SUFFIXES, detect
    from ..models.loaders.cardcheck import scan_folder

    folder = os.environ.get("EARMARK_MODELS")
    if not folder or not Path(folder).is_dir():
        return
    print(f"  in EARMARK_MODELS ({folder}); load with --model PATH:")
    entries, notes = scan_folder(Path(folder), tuple(SUFFIXES))   # loops, broken links, FIFOs: noted
    for entry, _ in entries:
        try:
            fmt, _ = detect(entry)
        except Exception as exc:  # shown, not raised: one bad entry does not hide the others
            fmt = f"not loadable: {exc}"
        print(f"    {entry.name:24s} {fmt}")
    for note in notes:
        print(f"    {note}")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "model", None):
        print(model_report(load_cli_model(args.model, args.device, args.window)))
        if not args.what:
            return 0
    kinds = [args.what] if args.what else list(WHAT)
    for kind in kinds:
        print(f"{kind}:")
        if kind == "models":
            from ..models import MODELS
            for spec in MODELS:
                print(f"  {spec.name:18s} {spec.title}")
            _models_folder()
        elif kind == "transforms":
            from ..transforms import TRANSFORMS
            for cls in TRANSFORMS:
                print(f"  {cls.name:18s} {cls.title}  [{_params(cls.params)}]")
        elif kind == "explainers":
            from ..explainers import EXPLAINERS
            for spec in EXPLAINERS:
                domains = ",".join(spec.domains) if spec.domains else "all domains"
                domains += "; --contrast B" if getattr(spec, "contrastive", False) else ""
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
