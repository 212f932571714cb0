"""``earmark explain``: one clip, one model, one domain, one explainer → maps, figure, audio, summary."""

from __future__ import annotations

import argparse
import json
import sys
import time


from ..command import ExplainCommand, provenance
from ..errors import ConfigError
from .common import (ProgressBar, add_model_arguments, check_out_dir, class_index, finite_float,
                     load_cli_model, load_input_clip, parse_settings, seed_arg)
from .segment_explain import SEGMENT_HELP, run_segments


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain one clip: saliency + uncertainty maps, heatmap PNG, keep/remove WAVs, JSON summary",
        description=(
            "Explain a model's prediction on one clip in a chosen domain. Writes into --out: "
            "explanation.npz (saliency, uncertainty and method extras), explanation.json (prediction, "
            "probabilities, settings, seed, timings), heatmap.png, and original/keep/remove/soft WAVs."
        ),
    )
    p.add_argument("clip", help="audio file (wav, flac, ogg, mp3) or the name of a bundled example")
    add_model_arguments(p)
    p.add_argument("--transform", default=ExplainCommand.default("transform"), help="domain: time, fourier, stft, mel, dwt (default: %(default)s)")
    p.add_argument("--explainer", default=ExplainCommand.default("explainer"), help="explainer name (default: %(default)s); `earmark list explainers`")
    p.add_argument("--target", type=class_index, default=None,
                   help="class to explain: an index or a label name (default: the prediction)")
    p.add_argument("--contrast", type=class_index, default=None, metavar="B",
                   help="explain the target rather than class B: the difference of the two classes' scores")
    p.add_argument("--seed", type=seed_arg, default=ExplainCommand.default("seed"), help="seed of the random generator (default: %(default)s)")
    p.add_argument("--set", dest="settings", action="append", metavar="NAME=VALUE",
                   help="explainer hyperparameter, repeatable (e.g. --set n_steps=64)")
    p.add_argument("--tset", dest="tsettings", action="append", metavar="NAME=VALUE",
                   help="transform parameter, repeatable (e.g. --tset n_fft=512)")
    p.add_argument("--topk", type=finite_float(0, 100, low_open=True), default=ExplainCommand.default("topk"), help="percent of cells kept/removed for listening (default: %(default)s)")
    p.add_argument("--policy", default=ExplainCommand.default("policy"), choices=("center", "start", "end"),
                   help="how a clip of another length is fitted to the model's input (default: %(default)s)")
    p.add_argument("--offset", type=finite_float(0, 1e9), default=None, metavar="SECONDS",
                   help="take the model-length window starting here (for clips longer than the model's input)")
    p.add_argument("--at", type=finite_float(0, 1e9), default=None, metavar="SECONDS",
                   help="explain the model's window centred at this time of a long recording (as `earmark scan` "
                        "scored it); also writes moment.png, the map on the recording's time axis")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available, or $EARMARK_DEVICE)")
    p.add_argument("--segments", default=None, metavar="SOURCE", help=SEGMENT_HELP + " (see earmark.cli.segment_explain)")
    p.add_argument("--out", default=ExplainCommand.default("out"), help="output folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def command_from_args(args: argparse.Namespace) -> ExplainCommand:
    """The parsed arguments as an :class:`ExplainCommand`."""
    return ExplainCommand(str(args.clip), model=str(args.model), transform=args.transform, explainer=args.explainer,
                          target=args.target, seed=args.seed, settings=parse_settings(args.settings),
                          tsettings=parse_settings(args.tsettings), topk=args.topk, policy=args.policy,
                          offset=args.offset, window=getattr(args, "window", None), out=str(args.out),
                          at=getattr(args, "at", None))


def run(args: argparse.Namespace) -> int:
    from .. import audio, workflow
    from ..explainers import EXPLAINERS
    from ..jobs import JobSpec, explanation_work, run_foreground
    from ..params import resolve
    from ..plots import explanation_figure, save_figure
    from ..transforms import TRANSFORMS, get_transform

    if getattr(args, "segments", None):
        return run_segments(args)
    if not 0 < args.topk <= 100:
        raise ConfigError(f"--topk is a percentage in (0, 100]; got {args.topk}.")
    started = time.perf_counter()
    # Everything a person typed is checked before the model is loaded or a clip decoded.
    settings, tsettings = parse_settings(args.settings), parse_settings(args.tsettings)
    resolve(EXPLAINERS.get(args.explainer).params, settings, owner=f"Explainer '{args.explainer}'")
    resolve(TRANSFORMS.get(args.transform).params, tsettings, owner=f"Transform '{args.transform}'")
    out = check_out_dir(args.out)
    model = load_cli_model(args.model, args.device, args.window)
    card = model.card
    if isinstance(args.target, str):   # a label name
        from ..models.adapt import label_index
        args.target = label_index(card.labels, args.target)
    at = getattr(args, "at", None)
    if at is not None and args.offset is not None:
        raise ConfigError("Give either --at (a moment of a long recording) or --offset (a window's start), not both.")
    if at is not None:   # a moment of a long recording: the scan's window around it, decoded block by block
        from ..moment import clip_at
        clip, window_start = clip_at(args.clip, card, at)
    else:
        clip = load_input_clip(args.clip)
    prepared = audio.prepare(clip, sample_rate=card.sample_rate, num_samples=card.num_samples, policy=args.policy,
                             offset_seconds=args.offset)
    x = prepared.wave
    transform = get_transform(args.transform, card.sample_rate, **tsettings)
    bar = ProgressBar(f"{args.explainer}/{args.transform}", enabled=False if args.quiet else None)
    bar.unit = EXPLAINERS.get(args.explainer).budget_unit
    loaded = time.perf_counter()
    # the same job the app's workers run (spec = cache key and provenance), here in the foreground
    spec = JobSpec.create(clip_hash=audio.clip_hash(prepared),
                          model=card.name, transform=transform.name, tparams=transform.settings,
                          explainer=args.explainer, eparams=settings, target=args.target,
                          seed=args.seed, options={"contrast": args.contrast} if args.contrast is not None else None)
    expl = run_foreground(spec, explanation_work(spec, model, x, transform), observer=bar.job)
    explained = time.perf_counter()

    command = command_from_args(args)
    files = expl.save(out, axes=transform.axes(x.shape[-1]),
                      provenance=provenance(command, labels=card.labels, explanation=expl, clip_name=clip.name))
    if expl.meta.get("map_check") == "all-zero":   # no evidence: saved for inspection, not reported as a success
        for warning in expl.meta.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{clip.name}: the {expl.method} map is zero everywhere; maps saved to {out}/, no listening files.",
              file=sys.stderr)
        return 3
    heard = {}
    for name, (wave, p) in workflow.listening(model, transform, x, expl.saliency, args.topk / 100).items():
        path = out / f"{name}.wav"
        audio.save_wav(path, wave.cpu(), card.sample_rate)
        heard[name] = {"file": path.name, "predicted": card.labels[int(p.argmax())],
                       "target_probability": float(p[expl.target])}
    fig = explanation_figure(transform, x.cpu(), expl, spec=EXPLAINERS.get(expl.method),
                             title=f"{card.title} · {clip.name} · predicted {card.labels[expl.meta['predicted']]}")
    save_figure(fig, out / "heatmap.png")

    summary = json.loads(files["json"].read_text())
    if at is not None:
        from ..moment import moment_figure
        save_figure(moment_figure(args.clip, card, window_start, transform, expl), out / "moment.png")
        summary["recording_window"] = {"at": at, "start": window_start, "end": window_start + card.num_samples
                                       / card.sample_rate, "figure": "moment.png"}
    summary.update({
        "listening": {"top_percent": args.topk, **heard},
        "timings": {"load_s": loaded - started, "explain_s": explained - loaded,
                    "total_s": time.perf_counter() - started},
    })
    files["json"].write_text(json.dumps(summary, indent=2))
    if card.multi_label:
        probs_now = expl.meta["probabilities"]
        top = sorted(range(len(probs_now)), key=lambda i: -probs_now[i])[:5]
        summary["top_labels"] = [{"label": card.labels[i], "probability": probs_now[i]} for i in top]
        files["json"].write_text(json.dumps(summary, indent=2))
        print("top labels (sigmoid, each on its own): "
              + ", ".join(f"{card.labels[i]} {probs_now[i]:.3f}" for i in top))
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{clip.name}: predicted {summary['prediction']} "
          f"(p={expl.meta['probabilities'][expl.meta['predicted']]:.3f}); explained class {summary['target_label']} "
          + (f"rather than {card.labels[args.contrast]} " if args.contrast is not None else "") +
          f"with {expl.method} in {transform.name} in {summary['timings']['explain_s']:.2f}s → {out}/")
    return 0
