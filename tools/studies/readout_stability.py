"""Split-half stability of FreqRISE per readout (probability — the paper — logit, log-probability).

On the first ``--n`` FSDD test clips (``$EARMARK_DATA``, balanced order of ``earmark evaluate``, seed 0), the
bundled AudioNet, the STFT at its defaults and the app's FreqRISE setting (Sobol cells, control variate):
each clip's map at a fixed budget of ``--masks`` masks (``stop="budget"``, so every readout spends the same
masks — the same masks, at one seed) and, with ``--stops budget,auto``, at the app's ``stop="auto"``. The stability figure is the run's own
:class:`~earmark.explainers.anytime.SplitHalves`: Spearman and top-10 % overlap between the maps of two
halves of the masks, on the live cells.

    EARMARK_DATA=... python tools/studies/readout_stability.py --n 12 --rows runs/readouts.jsonl \\
        --out docs/results/readout-stability.md

Rows are appended to ``--rows`` as they finish, and a rerun skips the ones already there (resumable).
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
from pathlib import Path

import torch

from earmark.data.datasets import open_dataset
from earmark.explainers import explain
from earmark.models import load_model
from earmark.probe import READOUT_NAMES
from earmark.transforms import get_transform
from rows import add_row, load_rows  # noqa: E402  (tools/studies, the script's folder)

APP = {"sampler": "sobol", "estimator": "control_variate"}
READOUTS = ("prob", "logit", "log_prob")


def shared_logits(model) -> None:
    """Let the readouts share the model's passes: at one seed every readout scores the same masked clips, so
    the logits of a batch already seen are looked up (exactly the tensor computed before) instead of
    recomputed. The map each readout gets is the one a plain run gives."""
    plain, seen = model.forward, {}

    def forward(waves):
        key = hashlib.sha1(waves.detach().contiguous().cpu().numpy().tobytes()).hexdigest()
        if key not in seen:
            seen[key] = plain(waves)
        return seen[key]
    model.forward = forward
    model.forget = seen.clear


def run(args) -> list[dict]:
    model = load_model(args.model, "cpu")
    shared_logits(model)
    clips = open_dataset(data=os.environ.get("EARMARK_DATA"), card=model.card, split="test", n=args.n, seed=0)
    t = get_transform(args.transform, model.card.sample_rate)
    path = Path(args.rows)
    rows = load_rows(path)
    done = {(r["clip"], r["readout"], r["stop"]) for r in rows}
    for i in range(len(clips)):
        model.forget()
        item = clips.load(i)
        name, wave = item[0], item[1]
        with torch.no_grad():
            confidence = float(model(torch.as_tensor(wave)[None]).softmax(-1).max())
        for stop in args.stops.split(","):
            for readout in READOUTS:
                if (name, readout, stop) in done:
                    continue
                e = explain(model, wave, t, method="freqrise", seed=i, n_masks=args.masks if stop == "budget"
                            else 3000, stop=stop, readout=readout, **APP)
                x = e.extras
                row = {"clip": name, "readout": readout, "stop": stop, "masks": int(x["budget_used"]),
                       "spearman": float(x["stability_spearman"]), "top10": float(x["stability_top10"]),
                       "confidence": confidence}
                add_row(path, rows, row)
    return rows


def _mean_se(values: list[float]) -> str:
    m = sum(values) / len(values)
    se = math.sqrt(sum((v - m) ** 2 for v in values) / max(len(values) - 1, 1) / len(values))
    return f"{m:.2f} ± {se:.2f}"


def table(rows: list[dict], args) -> str:
    rows = list({(r["clip"], r["readout"], r["stop"]): r for r in rows}.values())   # a row written twice counts once
    lines = ["| readout | stop | clips | masks (mean) | Spearman | top-10 % overlap | Spearman − probability's "
             "(paired) | top-10 % − probability's (paired) | clips where its top-10 % overlap is the highest |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for stop in ("budget", "auto"):
        by_clip: dict[str, dict[str, float]] = {}
        for r in rows:
            if r["stop"] == stop:
                by_clip.setdefault(r["clip"], {})[r["readout"]] = r["top10"]
        full = {c: v for c, v in by_clip.items() if len(v) == len(READOUTS)}
        best = [max(v, key=v.get) for v in full.values()]
        for readout in READOUTS:
            sel = [r for r in rows if r["stop"] == stop and r["readout"] == readout and r["clip"] in full]
            if not sel:
                continue
            name = READOUT_NAMES[readout] + (" (paper)" if readout == "prob" else "")
            paper = {(r["clip"], r["stop"]): r for r in rows if r["readout"] == "prob"}
            diff = {m: [r[m] - paper[(r["clip"], stop)][m] for r in sel] for m in ("spearman", "top10")}
            lines.append(f"| {name} | {stop} | {len(sel)} | {sum(r['masks'] for r in sel) / len(sel):.0f} | "
                         f"{_mean_se([r['spearman'] for r in sel])} | {_mean_se([r['top10'] for r in sel])} | "
                         f"{_mean_se(diff['spearman'])} | {_mean_se(diff['top10'])} | {best.count(readout)} |")
    return (f"Split-half stability of FreqRISE per readout ({args.model}, {args.transform}, Sobol + control variate; "
            f"budget = {args.masks} masks, auto = the app's stop rule within 3,000), FSDD test clips, mean ± "
            "standard error over clips.\n\nCommand: `EARMARK_DATA=... python tools/studies/readout_stability.py "
            f"--n {args.n} --masks {args.masks} --rows ROWS.jsonl --out docs/results/readout-stability.md`\n\n"
            + "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--masks", type=int, default=1000)
    ap.add_argument("--model", default="audionet-digits")
    ap.add_argument("--transform", default="stft")
    ap.add_argument("--rows", default="readout-stability.jsonl")
    ap.add_argument("--stops", default="budget", help="budget, auto or both (comma-separated)")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    text = table(run(args), args)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
