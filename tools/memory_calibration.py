"""Estimated against measured peak memory of one explanation (``earmark.cost``), each run in a fresh process.

    PYTHONPATH=core python tools/memory_calibration.py   # prints a Markdown table
"""

from __future__ import annotations

import json
import subprocess
import sys

CASES = [  # (method, transform, transform params, explainer params)
    ("ig", "time", {}, {"n_steps": 32}),
    ("ig", "stft", {}, {"n_steps": 32}),
    ("ig", "mel", {"n_fft": 2048, "hop": 32, "n_mels": 128}, {"n_steps": 16}),
    ("smoothgrad", "stft", {}, {"n_samples": 50}),
    ("freqrise", "stft", {}, {"n_masks": 400}),
    ("learnable_mask", "stft", {}, {"steps": 20}),
]

CHILD = r"""
import json, resource, sys, torch
from earmark import explain, get_transform, load_model, examples
from earmark.cost import check_memory, max_job_mb
from earmark.explainers import EXPLAINERS
from earmark.params import resolve
from earmark.probe import Probe
method, tname, tp, ep = json.loads(sys.argv[1])
model = load_model("audionet-digits", "cpu")
x = torch.randn(model.card.num_samples) * 0.1
t = get_transform(tname, model.card.sample_rate, **tp)
settings = resolve(EXPLAINERS.get(method).params, ep, owner=method)
estimate = check_memory(method, settings, Probe(model, t, x), cap_mb=10**9)
with torch.no_grad():
    model(torch.zeros(64, model.card.num_samples))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
explain(model, x, t, method=method, **ep)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"estimate": estimate, "measured": (after - before) / 1024}))
"""


def main() -> None:
    print("| method | domain | settings | estimated MB | measured MB (peak RSS growth) |")
    print("|---|---|---|---:|---:|")
    for method, tname, tp, ep in CASES:
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([method, tname, tp, ep])], capture_output=True,
                             text=True, env=None)
        try:
            row = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"| {method} | {tname} | failed: {out.stderr.strip().splitlines()[-1:]} | | |")
            continue
        shown = ", ".join(f"{k}={v}" for k, v in {**tp, **ep}.items())
        print(f"| {method} | {tname} | {shown} | {row['estimate']:,} | {row['measured']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
