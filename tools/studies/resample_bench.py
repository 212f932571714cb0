"""Time and peak memory of resampling one clip to a model's rate, each case in a fresh process.

    python tools/studies/resample_bench.py --impl soxr          # earmark.audio.resample (now)
    python tools/studies/resample_bench.py --impl torchaudio    # torchaudio.functional.resample (before)

Each case: 1 s of noise (or one sample, ``--samples 1``) at the odd or ordinary input rate, resampled to
8 kHz and 16 kHz, in a child process under an address-space cap (``--cap-gb``, default 8); prints a
Markdown table of wall seconds and the child's peak resident memory above the interpreter's baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

RATES = (16000, 22050, 44100, 48000, 22051, 44101, 96001, 191999)

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
impl, rate, target, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
cap = int(float(sys.argv[5]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
x = torch.from_numpy(np.random.default_rng(0).standard_normal(samples).astype(np.float32) * 0.1)
if impl == "torchaudio":
    import torchaudio
    fn = lambda w: torchaudio.functional.resample(w, rate, target)
else:
    from earmark.audio import resample
    fn = lambda w: resample(w, rate, target)
fn(torch.zeros(8))  if rate == target else None
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    y = fn(x); ok = f"{tuple(y.shape)}"
except Exception as exc:
    ok = f"{type(exc).__name__}"
print(json.dumps({"s": time.perf_counter() - t, "peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, "out": ok}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("soxr", "torchaudio"), default="soxr")
    ap.add_argument("--samples", default="rate", help="'rate' (1 s) or a number of input samples")
    ap.add_argument("--cap-gb", type=float, default=8.0)
    ap.add_argument("--targets", default="8000,16000")
    args = ap.parse_args()
    print(f"| {args.impl} | input rate | to | input samples | wall s | peak MB above baseline | output |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for rate in RATES:
        for target in map(int, args.targets.split(",")):
            n = rate if args.samples == "rate" else int(args.samples)
            proc = subprocess.run([sys.executable, "-c", CHILD, args.impl, str(rate), str(target), str(n),
                                   str(args.cap_gb)], capture_output=True, text=True)
            try:
                r = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                r = {"s": float("nan"), "peak_mb": float("nan"), "out": f"killed ({proc.returncode})"}
            print(f"| | {rate} | {target} | {n} | {r['s']:.3f} | {r['peak_mb']:.0f} | {r['out']} |", flush=True)


if __name__ == "__main__":
    main()
