"""Is ``torch.compile`` worth it for a bundled model on this machine? Eager against compiled forward passes.

Times ``--calls`` forward calls of the model on a batch of ``--batch`` random clips (inference mode), eager
and after ``torch.compile`` (its first call, which compiles, timed on its own), and the largest difference
between the two outputs.

Usage:
    python tools/studies/compile_gain.py --model audionet-digits --batch 8 --calls 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def timed_calls(fn, x: torch.Tensor, calls: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(calls):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from earmark.models import load_model
    from earmark.threads import apply_thread_budget

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="audionet-digits")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)
    budget = apply_thread_budget(1)
    model = load_model(args.model)
    x = torch.randn(args.batch, model.card.num_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    eager = timed_calls(model, x, args.calls)
    compiled_model = torch.compile(model)
    start = time.perf_counter()
    with torch.inference_mode():
        compiled_model(x)
    compile_s = time.perf_counter() - start
    compiled = timed_calls(compiled_model, x, args.calls)
    with torch.inference_mode():
        gap = float((compiled_model(x) - model(x)).abs().max())
    print(f"{args.model}, batch {args.batch}, {budget.describe()}: eager {eager * 1e3:.1f} ms a call, compiled "
          f"{compiled * 1e3:.1f} ms ({eager / compiled:.2f}×), first call (compiling) {compile_s:.1f} s, "
          f"largest output difference {gap:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
