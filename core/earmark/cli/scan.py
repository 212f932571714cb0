"""``earmark scan``: slide a model along a whole recording → timeline, events, Raven/Audacity tables, figure."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .common import add_model_arguments, check_out_dir, finite_float, load_cli_model, positive_int

DEFAULT_MODEL = "scan-digits"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan",
        help="scan a long recording: class probabilities per window, events (CSV, Raven, Audacity), timeline PNG",
        description=(
            "Slide the model's window along the whole recording (decoded block by block, any length up to "
            "$EARMARK_MAX_RECORDING_S) and write into --out: timeline.csv (window start, end, one column per "
            "label), events.csv (start,end,label,score), events.selections.txt (Raven), events.labels.txt "
            "(Audacity), timeline.png and scan.json. Then explain a moment with `earmark explain RECORDING --at T`."
        ),
    )
    p.add_argument("recording", help="audio file (wav, flac, ogg, mp3) of any length")
    add_model_arguments(p, default=DEFAULT_MODEL)
    p.add_argument("--hop", type=finite_float(1e-4, 3600, low_open=True), default=None, metavar="S",
                   help="seconds between windows (default: the card's scan_hop_s, else a quarter of the window)")
    p.add_argument("--threshold", type=finite_float(0, 1, low_open=True), default=0.5, metavar="P",
                   help="probability a window needs to count towards an event (default: %(default)s)")
    p.add_argument("--min-duration", type=finite_float(0, 3600), default=0.0, metavar="S",
                   help="drop events shorter than this (default: %(default)s)")
    p.add_argument("--merge-gap", type=finite_float(0, 3600), default=0.0, metavar="S",
                   help="join events of one class at most this far apart (default: %(default)s)")
    p.add_argument("--trim-db", type=finite_float(0, 200), default=None, metavar="DB",
                   help="trim each event to its windows within DB dB of its loudest (default: the card's "
                        "scan_trim_db, else no trimming)")
    p.add_argument("--uncentred", action="store_true",
                   help="start the first window at 0 s (default: windows centred on every hop, ends zero-padded)")
    p.add_argument("--batch", type=positive_int, default=64, help="windows per model call (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available, or $EARMARK_DEVICE)")
    p.add_argument("--out", default="earmark-scan", help="output folder (default: %(default)s)")
    p.add_argument("--bench", type=positive_int, default=None, metavar="REPEATS",
                   help="also time the scan against the model-only floor (the same windows in memory, the same "
                        "batches), best of REPEATS; written to scan.json (keep the recording short: it is "
                        "decoded whole for the floor)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=run)


class LineProgress:
    """Progress on stderr: a redrawn bar on a terminal, otherwise one line per tenth (logs, CI, pipes)."""

    def __init__(self, label: str, *, enabled: bool = True):
        from .common import ProgressBar

        self.tty = sys.stderr.isatty()
        self.bar = ProgressBar(label, enabled=enabled) if self.tty else None
        self.enabled, self.label, self.next = enabled, label, 0.0
        self.started = time.perf_counter()

    def __call__(self, fraction: float, stage: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar(fraction, stage)
            return
        if fraction >= self.next or fraction >= 1.0 and self.next <= 1.0:
            sys.stderr.write(f"{self.label}: {fraction:4.0%} {stage} ({time.perf_counter() - self.started:.1f} s)\n")
            sys.stderr.flush()
            self.next = 1.01 if fraction >= 1.0 else (int(fraction * 10) + 1) / 10


def run(args: argparse.Namespace) -> int:
    from ..timeline import scan, write_audacity, write_events, write_raven

    started = time.perf_counter()
    out = check_out_dir(args.out)
    model = load_cli_model(args.model, args.device, args.window)
    card = model.card
    progress = LineProgress(f"scan {card.name}", enabled=not args.quiet)
    timeline = scan(model, args.recording, hop=args.hop, batch=args.batch, centred=not args.uncentred,
                    progress=progress)
    seconds = time.perf_counter() - started
    trim = args.trim_db if args.trim_db is not None else (card.metrics or {}).get("scan_trim_db")
    events = timeline.events(args.threshold, min_duration=args.min_duration, merge_gap=args.merge_gap,
                             trim_db=trim)
    out.mkdir(parents=True, exist_ok=True)
    timeline.write_csv(out / "timeline.csv")
    write_events(out / "events.csv", events)
    write_raven(out / "events.selections.txt", events, high_hz=card.sample_rate / 2)
    write_audacity(out / "events.labels.txt", events)
    timeline.plot(out / "timeline.png", events=events,
                  title=f"{timeline.name} · {card.title} · hop {timeline.hop:g} s · threshold {args.threshold:g}")
    summary = {
        "recording": str(args.recording), "model": card.name, "duration_s": round(timeline.duration, 3),
        "windows": len(timeline), "window_s": timeline.window, "hop_s": timeline.hop, "centred": timeline.centred,
        "activation": "sigmoid" if timeline.multi_label else "softmax", "threshold": args.threshold,
        "trim_db": trim,
        "events": len(events), "scan_seconds": round(seconds, 3),
        "files": ["timeline.csv", "events.csv", "events.selections.txt", "events.labels.txt", "timeline.png"],
    }
    if args.bench:
        from ..timeline import bench_scan

        summary["bench"] = bench_scan(model, args.recording, hop=timeline.hop, batch=args.batch, repeats=args.bench)
        b = summary["bench"]
        print(f"bench: scan {b['scan_s']:.2f} s, model-only floor {b['floor_s']:.2f} s for {b['windows']:,} "
              f"windows: {b['ratio']:.2f}× (best of {b['repeats']})")
    (out / "scan.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{timeline.name}: {timeline.duration:,.1f} s, {len(timeline):,} windows of {timeline.window:g} s "
          f"(hop {timeline.hop:g} s) with {card.name} in {seconds:.1f} s; {len(events)} events over "
          f"{args.threshold:g} → {out}/")
    for e in events[:20]:
        print(f"  {e.start:8.2f} – {e.end:8.2f} s  {e.label:<16} {e.score:.3f}")
    if len(events) > 20:
        print(f"  … {len(events) - 20} more in {out / 'events.csv'}")
    return 0
