"""``earmark profile``: what a model relies on for each class across a data set, and a shortcut report.

Examples:
    earmark profile --data ../shared/data/fsdd --split test --model melcnn-digits --explainer ig,energy \\
        --transform stft --out runs/profile-melcnn
    earmark profile --data ../shared/data/fsdd --model assets/models/melcnn-digits-cue7 --explainer ig,freqrise,energy \\
        --transform stft --plant-cue class=7,freq=3000,level=-20 --n 10 --per-class --out runs/profile-cue7
    earmark profile --task synth-freq --explainer ig --transform stft --n 5 --per-class --out runs/profile-synth
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_model_arguments, check_out_dir, nonneg_int, positive_int, seed_arg


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "profile",
        help="class profiles over a data set (relevance per band and time vs energy) and a shortcut report",
        description=(
            "Explain every clip of a data set and aggregate per class: relevance share per frequency band and per "
            "time bin (absolute and relative to the onset) with 95 % bootstrap intervals, beside the class's "
            "energy share; flag bands used far beyond their energy, reliance on silence or on the first/last "
            "frames, and measure each flag by removing it from the class's clips. Writes OUT/profile.json, "
            "OUT/report.md, figures and listening WAVs; OUT/profile_units.jsonl lets an interrupted run resume."
        ),
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="DIR|CSV", default=None,
                     help="folder of FSDD-named clips or a CSV manifest 'path,label' (default: $EARMARK_DATA)")
    src.add_argument("--task", metavar="TASK", default=None, help="synthetic task instead: synth-freq or synth-tf")
    add_model_arguments(parser, default=None)
    parser.add_argument("--explainer", default="ig", help="explainer, or a comma list (add 'energy' as the "
                        "model-free control; default ig)")
    parser.add_argument("--transform", default="stft", help="domain of the maps (default stft)")
    parser.add_argument("--by", default="true", choices=("true", "predicted"),
                        help="explain and group by the true class (default) or the predicted one")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"), help="FSDD split for a folder")
    parser.add_argument("--n", type=positive_int, default=None, help="clips to use, balanced over classes "
                        "(default: all; 50 for a task)")
    parser.add_argument("--per-class", action="store_true", help="read --n as clips per class")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed for the subset, explainers, bootstrap")
    parser.add_argument("--bands", default="auto", choices=("auto", "rows", "mel", "octave"),
                        help="frequency bands: the domain's rows when few, else mel (auto), or forced")
    parser.add_argument("--n-bands", type=positive_int, default=16, help="mel bands on a fine grid (default 16)")
    parser.add_argument("--n-times", type=positive_int, default=32, help="time bins at most (default 32)")
    parser.add_argument("--intervention-clips", type=nonneg_int, default=50,
                        help="clips per class an intervention re-scores (0 = no interventions; default 50)")
    parser.add_argument("--prototypes", type=nonneg_int, default=3, help="prototype clips per class (default 3)")
    parser.add_argument("--plant-cue", metavar="SPEC", default=None,
                        help="profile data that carries a planted cue, as a planted-cue model's training data did: "
                        "class=K,freq=F,level=DB[,at=start|all][,kind=tone|click]")
    parser.add_argument("--apply", metavar="CLIP", default=None,
                        help="also write CLIP filtered by every class's keep/remove filter into OUT/apply/")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME.SETTING=VALUE",
                        help="override an explainer or transform setting, e.g. freqrise.n_masks=1000")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="items per model call")
    parser.add_argument("--engine", default="local", choices=("local", "ray"), help="where units run")
    parser.add_argument("--address", default=None, metavar="auto|HOST:PORT", help="Ray cluster to join")
    parser.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N", help="Ray: CPU cores per task")
    parser.add_argument("--gpus-per-task", type=float, default=0.0, metavar="F", help="Ray: GPUs per task")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (reused to resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import TASK_ALIASES, open_dataset
    from ..engines import make_engine
    from ..evaluate import parse_overrides
    from ..explainers import EXPLAINERS
    from ..profiles import profile
    from ..transforms import TRANSFORMS
    from .evaluate import check_overrides, progress_line
    from .common import load_cli_model

    overrides = parse_overrides(args.settings)
    check_overrides(overrides)
    check_out_dir(args.out)
    explainers = [e.strip() for e in args.explainer.split(",") if e.strip()]
    for e in explainers:
        EXPLAINERS.get(e)
    TRANSFORMS.get(args.transform)
    model_name = args.model or (args.task if args.task in TASK_ALIASES else None) or "audionet-digits"
    model = load_cli_model(model_name, args.device, args.window)
    clips = open_dataset(data=args.data, task=args.task, card=model.card, split=args.split, n=args.n,
                         per_class=args.per_class, seed=args.seed)
    if args.plant_cue:
        from ..training.cue import CuedClips, parse_cue

        cue = parse_cue(args.plant_cue, num_classes=len(model.card.labels), sample_rate=model.card.sample_rate)
        clips = CuedClips(clips, cue, model.card.sample_rate)
    engine = make_engine(args.engine, address=args.address, cpus_per_task=args.cpus_per_task,
                         gpus_per_task=args.gpus_per_task)
    try:
        result = profile(
            model, clips, explainer=explainers, transform=args.transform, by=args.by, out=args.out, seed=args.seed,
            overrides=overrides, bands=args.bands, n_bands=args.n_bands, n_times=args.n_times,
            batch_size=args.batch_size, engine=engine, model_source=model_name,
            progress=progress_line(enabled=not args.quiet), intervene=args.intervention_clips > 0,
            intervention_clips=args.intervention_clips or None, prototypes=args.prototypes,
        )
    finally:
        if hasattr(engine, "shutdown"):
            engine.shutdown()
    if args.apply:
        _apply(args.apply, result, model, Path(args.out))
    reused = sum(len(r) for r in result.rows.values()) - result.computed
    print(f"{result.computed} computed, {reused} reused; {len(result.flags)} flag(s), "
          f"{sum(f['confirmed'] for f in result.flags)} confirmed; wrote "
          + ", ".join(str(p) for p in result.paths.values()))
    for i, f in enumerate(result.flags[:5], 1):
        span = "all" if f["time_s"] is None else f"{f['time_s'][0]:g}-{f['time_s'][1]:g} s"
        change = "unmeasured" if not f.get("effect") else f"p {f['effect']['score_change']:+.3f}"
        print(f"  {i}. class {f['class']} ({f['explainer']}): {f['band_hz'][0]:g}-{f['band_hz'][1]:g} Hz, {span}; "
              f"{change}; {'confirmed' if f['confirmed'] else 'not confirmed'}")
    if result.failures:
        print(f"earmark: {len(result.failures)} unit(s) failed; see the report and rerun to retry.", file=sys.stderr)
        return 1
    return 0


def _apply(source: str, result, model, out: Path) -> None:
    """Write ``source`` through every class's keep and remove filters into ``out/apply``."""
    from ..audio import prepare, save_wav
    from .common import load_input_clip
    from ..profiles.listen import class_filter

    clip = prepare(load_input_clip(source), sample_rate=model.card.sample_rate, num_samples=model.card.num_samples)
    folder = out / "apply"
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(source).stem)
    for label in result.clips:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
        for mode in ("keep", "remove"):
            save_wav(folder / f"{stem}-{safe}-{mode}.wav", class_filter(clip.wave, result, label, mode=mode,
                     sample_rate=model.card.sample_rate).clamp(-1, 1), model.card.sample_rate)
