"""``earmark bench``: explainer wall time against the model-only floor, per explainer × domain.

Examples:
    earmark bench --model audionet-digits --clip digit_7_en-us --explainers all \\
        --transforms fourier,stft,mel,dwt --out runs/bench
    earmark bench --model synth-freq --explainers ig,freqrise --transforms fourier --quick --out runs/bench-quick
    earmark bench --explainers freqrise --transforms stft --reference --curve 30000 --out runs/bench-curve
"""

from __future__ import annotations

import argparse
import sys

from .common import (add_model_arguments, check_out_dir, load_cli_model, nonneg_int, nonneg_int_list, positive_int,
                     positive_int_list, seed_arg)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="time each explainer against the model-only floor (same passes, best batch size)",
        description=(
            "Run every explainer × domain at its default settings on one clip and compare its wall time with "
            "the time the model alone needs for the same number of forward (and backward) passes at its best "
            "batch size, measured in the same run. Writes OUT/bench.json and OUT/bench.md; misses of the "
            "targets (ratio ≤ 1.3 sampling, ≤ 1.5 gradient / mask methods) are flagged."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--clip", default=None, metavar="EXAMPLE|PATH",
                        help="bundled example name or audio file (default: the default example)")
    parser.add_argument("--explainers", default="all",
                        help="comma list of explainers or 'all' (every one but the model-free energy reference)")
    parser.add_argument("--transforms", default="fourier,stft,mel,dwt", help="comma list of domains")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test of the pipeline")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="explainer seed")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="EXPLAINER.SETTING=VALUE",
                        help="override an explainer setting (repeatable)")
    parser.add_argument("--reference", action="store_true",
                        help="also time FreqRISE against the paper's estimator (batches of 500) on the same model")
    parser.add_argument("--reference-masks", type=positive_int, default=3000, help="masks of the side-by-side run")
    parser.add_argument("--curve", type=nonneg_int, default=0, metavar="N",
                        help="masks-to-quality curve of FreqRISE's samplers/estimators against an N-mask "
                             "plain-Bernoulli map (e.g. 30000); 0 = off")
    parser.add_argument("--curve-seeds", type=positive_int, default=3, help="seeds per point of the curve")
    parser.add_argument("--curve-masks", type=positive_int_list, default="200,400,1000,2000,3000",
                        help="mask counts of the curve (chunk ends: multiples of 200, or 25, 50, 100)")
    parser.add_argument("--peers", action="store_true",
                        help="also time IG, SmoothGrad and FreqRISE against the leanest implementations of the "
                             "same estimators (shipped in earmark.peers), at equal passes, quiet and beside CPU "
                             "burners; writes OUT/peers.md and OUT/peers.json")
    parser.add_argument("--burners", type=nonneg_int_list, default="0,1,2", metavar="N,N,..",
                        help="conditions of the peer runs: how many CPU-burning processes run beside them")
    parser.add_argument("--peer-methods", default="ig,smoothgrad,freqrise", help="comma list of methods with a peer")
    parser.add_argument("--peer-sizes", default="", metavar="METHOD=N,..",
                        help="passes per peer method, e.g. ig=50,smoothgrad=25,freqrise=1000")
    parser.add_argument("--precision", choices=("bfloat16", "float16"), default=None,
                        help="also time the sampling explainers with their scoring passes in this format against "
                             "float32 (speed-up and the maps' agreement; float32 stays the default)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="interleaved repetitions per row: explainer and floor (1 with --quick), Earmark and peer")
    parser.set_defaults(run=run)
    return parser


def bench_clip(source: str | None, card):
    """(wave (L,) at the model's rate and length, name) from an example name, a path, or the default."""
    from ..audio import prepare
    from ..examples import default_example
    from .common import load_input_clip

    clip = load_input_clip(source) if source else default_example()
    fitted = prepare(clip, sample_rate=card.sample_rate, num_samples=card.num_samples)
    return fitted.wave, clip.name


def run(args: argparse.Namespace) -> int:
    from ..bench import run_bench
    from ..evaluate import parse_overrides
    from ..transforms import TRANSFORMS

    check_out_dir(args.out)
    model = load_cli_model(args.model, args.device, args.window)
    wave, name = bench_clip(args.clip, model.card)
    transforms = [t.strip() for t in args.transforms.split(",") if t.strip()]
    for t in transforms:
        TRANSFORMS.get(t)
    explainers = [e.strip() for e in args.explainers.split(",") if e.strip()]
    report = run_bench(model, wave, explainers=explainers, transforms=transforms, out=args.out, quick=args.quick,
                       seed=args.seed, overrides=parse_overrides(args.settings), clip_name=name,
                       progress=lambda line: print(line, file=sys.stderr, flush=True),
                       reference=args.reference, reference_masks=args.reference_masks,
                       curve_reference=args.curve, curve_seeds=args.curve_seeds,
                       curve_counts=tuple(args.curve_masks), repeats=1 if args.quick else args.repeats,
                       precision=args.precision)
    print(report.markdown)
    print(f"wrote {report.paths['json']} and {report.paths['markdown']}")
    if args.peers:
        run_peer_table(args, model, wave, transforms)
    return 0


def run_peer_table(args: argparse.Namespace, model, wave, transforms: list[str]) -> None:
    """``--peers``: the peer table into OUT/peers.md and OUT/peers.json."""
    import json
    from pathlib import Path

    from ..errors import ConfigError
    from ..peers import PEER_METHODS, peer_rows_json, peers_markdown, run_peers
    from ..transforms import get_transform

    methods = [m.strip() for m in args.peer_methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in PEER_METHODS]
    if unknown:
        raise ConfigError(f"No peer for {', '.join(unknown)}; peers exist for {', '.join(PEER_METHODS)}.")
    sizes = {}
    for part in filter(None, (p.strip() for p in args.peer_sizes.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in PEER_METHODS or not value.strip().isdigit() or int(value) < 1:
            raise ConfigError(f"--peer-sizes takes METHOD=N with a method of {', '.join(PEER_METHODS)} and a "
                              f"whole number of at least 1; got {part!r}.")
        sizes[name.strip()] = int(value)
    built = [get_transform(t, model.card.sample_rate) for t in transforms]
    rows, meta = run_peers(model, wave, transforms=built, methods=methods, sizes=sizes, burners=args.burners,
                           repeats=args.repeats, seed=args.seed,
                           progress=lambda line: print(line, file=sys.stderr, flush=True))
    out = Path(args.out)
    (out / "peers.json").write_text(json.dumps({"meta": meta, "rows": peer_rows_json(rows)}, indent=2, default=str))
    markdown = peers_markdown(rows, meta)
    (out / "peers.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {out / 'peers.json'} and {out / 'peers.md'}")
