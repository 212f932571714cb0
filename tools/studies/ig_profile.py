"""Where IG's time goes: Earmark's IG against the minimal batched IG, under the PyTorch profiler.

Three runs at equal passes (the zero path, 50 steps + f(x) and f(0) = 52 items forward and backward) on
the bundled AudioNet and the default clip, in each domain:

* ``earmark, chunk 32`` — the fixed chunk before this round's change (2^18 samples with a gradient: 32
  items of 1 s at 8 kHz);
* ``earmark`` — today's chunk (2^15 samples with a gradient: 4 items of 1 s at 8 kHz);
* ``minimal`` — :func:`earmark.peers.minimal_ig`, all 52 points in one call.

Writes a Markdown table of wall times (median of ``--repeats``) and the profiler's top operators per run.

Usage:
    python tools/studies/ig_profile.py --out docs/results/ig-profile.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


def run_once(kind: str, model, wave, transform, target: int):
    from earmark.explainers import explain
    from earmark.peers import minimal_ig

    if kind == "minimal":
        return minimal_ig(model, wave, transform, target, n_steps=52)
    batch = 32 if kind == "earmark, chunk 32" else None
    return explain(model, wave, transform, target, method="ig", seed=0, n_steps=50, baselines="zero",
                   spacing="uniform", batch_size=batch).saliency


def top_ops(kind, model, wave, transform, target, rows: int = 6) -> list[tuple[str, float, int]]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_once(kind, model, wave, transform, target)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in events]


def main(argv: list[str] | None = None) -> int:
    from earmark.audio import prepare
    from earmark.examples import default_example
    from earmark.models import load_model
    from earmark.threads import apply_thread_budget
    from earmark.transforms import get_transform

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="audionet-digits")
    parser.add_argument("--domains", default="time,fourier,stft,mel,dwt")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="docs/results/ig-profile.md")
    args = parser.parse_args(argv)
    budget = apply_thread_budget(1)
    model = load_model(args.model)
    wave = prepare(default_example(), sample_rate=model.card.sample_rate, num_samples=model.card.num_samples).wave
    with torch.no_grad():
        target = int(model(wave[None]).argmax())
    kinds = ("earmark, chunk 32", "earmark", "minimal")
    lines = [f"IG at equal passes (52 items forward + backward), `{args.model}`, default clip, CPU, "
             f"{budget.describe()}; median of {args.repeats} interleaved runs "
             f"(`python tools/studies/ig_profile.py --out {args.out}`).", "",
             "| domain | " + " | ".join(f"{k} s" for k in kinds) + " | earmark / minimal |",
             "|---|" + "---:|" * (len(kinds) + 1)]
    profiles = []
    for name in args.domains.split(","):
        transform = get_transform(name, model.card.sample_rate)
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for kind in kinds:
            run_once(kind, model, wave, transform, target)                       # warm
        for rep in range(args.repeats):
            for kind in (kinds if rep % 2 == 0 else kinds[::-1]):
                start = time.perf_counter()
                run_once(kind, model, wave, transform, target)
                times[kind].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        lines.append(f"| {name} | " + " | ".join(f"{med[k]:.3f}" for k in kinds)
                     + f" | {med['earmark'] / med['minimal']:.2f} |")
        print(lines[-1], flush=True)
        if name in ("fourier", "stft"):
            profiles.append((name, {k: top_ops(k, model, wave, transform, target) for k in kinds}))
    for name, per_kind in profiles:
        lines += ["", f"Top operators by own CPU time, {name} (one run each):", "",
                  "| run | operator | ms | calls |", "|---|---|---:|---:|"]
        for kind, ops in per_kind.items():
            lines += [f"| {kind} | `{op}` | {ms:.1f} | {count} |" for op, ms, count in ops]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out} (pid {os.getpid()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
