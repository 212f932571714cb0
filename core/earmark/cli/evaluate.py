"""``earmark evaluate``: explainers × domains × metrics over clips or a synthetic task.

Examples:
    earmark evaluate --data ../shared/data/fsdd --model audionet-digits --explainers ig,freqrise \\
        --transforms fourier,stft,mel,dwt --split test --n 50 --seed 0 --out runs/eval
    earmark evaluate --task synth-freq --explainers ig,freqrise --transforms fourier --n 5 --per-class \\
        --set freqrise.n_masks=1000 --out runs/synth
    earmark evaluate --task synth-tf --explainers all --transforms stft,dwt --n 32 --engine ray \\
        --address auto --gpus-per-task 0.25 --out runs/synth-tf   # one Ray task per unit on a cluster
"""

from __future__ import annotations

import argparse
import sys
import time

from .common import add_model_arguments, check_out_dir, finite_float, load_cli_model, positive_int, seed_arg


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="score explainers × domains with faithfulness, fidelity, localisation and complexity metrics",
        description=(
            "Explain the true class of every clip with every explainer in every domain and score the maps "
            "(deletion/insertion curves and AUC, faithfulness, I/D/RI/RD, FF, Fid-In, μ-fidelity, "
            "relevance-rank accuracy on synthetic tasks, complexity; the cascading-randomisation check with "
            "--metrics all). Results are appended to OUT/results.jsonl as they finish, so an interrupted run "
            "resumes without recomputing; OUT gets results.csv, summary.md and curves.png."
        ),
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="DIR|CSV", default=None,
                     help="folder of FSDD-named clips ({digit}_{speaker}_{index}.wav) or a CSV manifest "
                     "'path,label' (default: $EARMARK_DATA)")
    src.add_argument("--task", metavar="TASK", default=None, help="synthetic task instead: synth-freq or synth-tf")
    add_model_arguments(parser, default=None)
    parser.add_argument("--explainers", default="ig,freqrise", help="comma list of explainers (or 'all')")
    parser.add_argument("--transforms", default="fourier,stft,mel,dwt", help="comma list of domains")
    parser.add_argument("--metrics", default="default",
                        help="comma list of metric names or categories, 'default' or 'all' (adds randomisation)")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"),
                        help="FSDD split for a folder (official: index 0–4 = test)")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="clips to use (at least 1), balanced over classes (default: all; 50 for a task)")
    parser.add_argument("--per-class", action="store_true", help="read --n as clips per class")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed for the subset, the explainers and the metrics")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (reused to resume)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME.SETTING=VALUE",
                        help="override an explainer or transform setting, e.g. freqrise.n_masks=1000 (repeatable); "
                        "reduced budgets are noted in the table")
    parser.add_argument("--steps", type=positive_int, default=20, help="curve steps between 0 and 100 %% (default 20)")
    parser.add_argument("--fraction", type=finite_float(0, 1, low_open=True), default=0.1, help="top fraction for I, D, FF, Fid-In (default 0.1)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="items per model call (default: sized to memory)")
    parser.add_argument("--engine", default="local", choices=("local", "ray"),
                        help="where units run: this process (default) or one Ray task per (clip, explainer, domain)")
    parser.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                        help="Ray cluster to join ('auto' = the one this machine belongs to; default: start a local one)")
    parser.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N",
                        help="Ray: CPU cores per task, also its torch threads (default 1)")
    parser.add_argument("--gpus-per-task", type=float, default=0.0, metavar="F",
                        help="Ray: GPUs per task; fractions share a GPU; > 0 runs the model on cuda (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(run=run)
    return parser


def check_overrides(overrides) -> None:
    """Validate every ``--set NAME.SETTING=VALUE`` against the declared parameters before any work starts."""
    from ..evaluate import split_overrides
    from ..explainers import EXPLAINERS
    from ..params import resolve
    from ..transforms import TRANSFORMS

    by_explainer, by_transform = split_overrides(overrides)
    for name, given in by_explainer.items():
        resolve(EXPLAINERS.get(name).params, given, owner=f"Explainer '{name}'")
    for name, given in by_transform.items():
        resolve(TRANSFORMS.get(name).params, given, owner=f"Transform '{name}'")


def _names(text: str, registry) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    return registry.names() if names == ["all"] else names


def progress_line(*, stream=None, enabled: bool = True):
    """``progress(done, total, eta_s, label)`` printing one updating line with the ETA."""
    stream = stream or sys.stderr
    started = time.perf_counter()

    def report(done: int, total: int, eta: float | None, label: str) -> None:
        if not enabled:
            return
        left = "?" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        end = "\n" if done >= total else ""
        stream.write(f"\r[{done}/{total}] {done / max(total, 1):5.1%} elapsed {time.perf_counter() - started:6.0f}s "
                     f"eta {left}  {label[:50]:<50}{end}")
        stream.flush()

    return report


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import TASK_ALIASES, open_dataset
    from ..engines import make_engine
    from ..evaluate import parse_overrides, run_evaluation
    from ..explainers import EXPLAINERS
    from ..metrics import MetricOptions, select_metrics
    from ..transforms import TRANSFORMS

    overrides = parse_overrides(args.settings)
    check_overrides(overrides)
    check_out_dir(args.out)
    model_name = args.model or (args.task if args.task in TASK_ALIASES else None) or "audionet-digits"
    model = load_cli_model(model_name, args.device, args.window)
    explainers = _names(args.explainers, EXPLAINERS)
    transforms = _names(args.transforms, TRANSFORMS)
    for e in explainers:
        EXPLAINERS.get(e)
    for t in transforms:
        TRANSFORMS.get(t)
    metrics = select_metrics(args.metrics)
    clips = open_dataset(data=args.data, task=args.task, card=model.card, split=args.split, n=args.n,
                         per_class=args.per_class, seed=args.seed)
    engine = make_engine(args.engine, address=args.address, cpus_per_task=args.cpus_per_task,
                         gpus_per_task=args.gpus_per_task)
    try:
        report = run_evaluation(
            model, clips, explainers=explainers, transforms=transforms, out=args.out, metrics=metrics,
            seed=args.seed, overrides=overrides,
            options=MetricOptions(steps=args.steps, fraction=args.fraction),
            batch_size=args.batch_size, progress=progress_line(enabled=not args.quiet),
            title=getattr(clips, "description", ""), engine=engine, model_source=model_name,
        )
    finally:
        if hasattr(engine, "shutdown"):
            engine.shutdown()
    print(report.markdown)
    reused = len(report.rows) - report.computed
    print(f"{report.computed} computed, {reused} reused from {report.paths['results']}; "
          f"wrote {', '.join(str(p) for k, p in report.paths.items() if k != 'results')}")
    if report.failures:
        print(f"earmark: {len(report.failures)} unit(s) failed; see {report.paths['markdown']} and rerun to retry.",
              file=sys.stderr)
        return 1
    return 0
