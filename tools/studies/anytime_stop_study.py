"""What ``stop="auto"`` saves and costs on FSDD clips, from one budget run per (clip, explainer).

``auto`` ends a run at a chunk end / step of the very same run (same masks, same steps; tested bit for
bit in ``tests/test_anytime.py``), so one run at the paper's budget gives both maps: this script runs each
explainer at its budget with an ``on_partial`` listener, records every estimate and the stop rule's
statistics (top-10 % overlap, standard-error ratio, loss flatness), finds where ``auto`` stops, and scores
the map there and the final map with I, D and insertion/deletion AUC (the ``earmark evaluate`` metrics,
same seeds). One JSON line per (clip, explainer) in OUT/stop.jsonl (resumable).

    EARMARK_DATA=... python tools/studies/anytime_stop_study.py --n 4 --explainers freqrise,relax --out runs/stop
    EARMARK_DATA=... python tools/studies/anytime_stop_study.py --table runs/stop [--jaccard 0.9 --se 0.6 --step-jaccard 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from earmark.explainers import anytime, explain
from earmark.metrics import MetricContext, compute_metrics
from earmark.models import load_model
from earmark.probe import Probe
from earmark.transforms import get_transform

try:
    from earmark.data.datasets import open_dataset
except ImportError:  # before the data/ move
    from earmark.data.datasets import open_dataset
from earmark.evaluate import clip_seed

METRICS = ["I", "D", "insertion_auc", "deletion_auc", "faithfulness"]


#: the sampling rule's thresholds; ``--table --jaccard J --se S`` scores a looser (or stricter) rule post hoc
RULE = {"jaccard": anytime.JACCARD_MIN, "se": anytime.SE_RATIO_MAX, "step-jaccard": anytime.STEP_JACCARD_MIN}


def stop_point(row: dict) -> int:
    """Where the ``stop="auto"`` rule (:data:`RULE` for sampling) ends this run (the budget if it never does)."""
    a = anytime
    total, sampling = row["budget"], row["explainer"] in ("freqrise", "relax")
    for key, st in sorted(((int(k), v) for k, v in row["stats"].items())):
        if key >= total or st["conv"] is None:
            continue
        if sampling and key >= a.MIN_MASKS and st["conv"] >= RULE["jaccard"] and st["se"] <= RULE["se"]:
            return key
        if not sampling and key >= a.MIN_STEPS and st["conv"] >= RULE["step-jaccard"] and st["flat"]:
            return key
    return total


def score_stops(out: Path, model_name: str = "audionet-digits", transform_name: str = "stft") -> list[dict]:
    """Score the saved map where the current rule stops, for every row of OUT/stop.jsonl (cached by step)."""
    model = load_model(model_name, "cpu")
    transform = get_transform(transform_name, model.card.sample_rate)
    rows = [json.loads(line) for line in (out / "stop.jsonl").read_text().splitlines()]
    scored_path = out / "scored.json"                     # {clip|explainer|step: metrics}, beside the rows
    scored = json.loads(scored_path.read_text()) if scored_path.exists() else {}
    clips = {}
    result = []
    for row in rows:
        n = stop_point(row)
        key = f"{row['clip']}|{row['explainer']}|{n}"
        if key not in scored:
            if not clips:
                ds = open_dataset(card=model.card, split="test", n=200, seed=0)
                clips.update({name: i for i, name in enumerate(ds.names())})
                clips["_ds"] = ds
            item = clips["_ds"].load(clips[row["clip"]])
            probe = Probe(model, transform, item.wave, target=int(item.label))
            maps = torch.load(out / "maps" / f"{row['clip']}-{row['explainer']}.pt")
            saliency = maps[n].float()
            scored[key] = (row["full"] if n == row["budget"] else
                           compute_metrics(METRICS, MetricContext(probe, saliency, seed=clip_seed(0, row["clip"]))))
            scored_path.write_text(json.dumps(scored))
        result.append({"clip": row["clip"], "explainer": row["explainer"], "budget": row["budget"], "used": n,
                       "auto": scored[key], "full": row["full"]})
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--skip", type=int, default=0, help="start at this clip of the balanced order")
    ap.add_argument("--explainers", default="freqrise,relax,learnable_mask,minimal_mask")
    ap.add_argument("--transform", default="stft")
    ap.add_argument("--model", default="audionet-digits")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="EXPLAINER.K=V")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "stop.jsonl"
    done = {(r["clip"], r["explainer"]) for r in map(json.loads, path.read_text().splitlines())} \
        if path.exists() else set()
    model = load_model(args.model, "cpu")
    clips = open_dataset(card=model.card, split="test", n=args.n + args.skip, seed=0)
    transform = get_transform(args.transform, model.card.sample_rate)
    extra: dict[str, dict[str, str]] = {}
    for s in args.sets:
        k, v = s.split("=", 1)
        owner, name = k.split(".", 1)
        extra.setdefault(owner, {})[name] = v

    stats: dict[int, dict] = {}
    orig_update, orig_step = anytime.SamplingMonitor.update, anytime.StepMonitor.step

    def update(self, n, estimate, std_error):                       # record the rule's statistics
        stop = orig_update(self, n, estimate, std_error)
        stats[n] = {"conv": self.convergence, "se": anytime.se_ratio(estimate(), std_error())}
        return stop

    def step(self, n, masks, loss):
        stop = orig_step(self, n, masks, loss)
        stats[n] = {"conv": self.convergence, "flat": self.loss_flat(), "loss": float(loss)}
        return stop

    anytime.SamplingMonitor.update, anytime.StepMonitor.step = update, step
    for i in range(args.skip, len(clips)):
        item = clips.load(i)
        seed = clip_seed(0, item.name)
        for name in args.explainers.split(","):
            if (item.name, name) in done:
                continue
            stats.clear()
            maps: dict[int, torch.Tensor] = {}
            keep = lambda s, n, total, c: maps.__setitem__(n, s)  # noqa: E731
            started = time.perf_counter()
            exp = explain(model, item.wave, transform, int(item.label), method=name, seed=seed, on_partial=keep,
                          **extra.get(name, {}))
            seconds = time.perf_counter() - started
            probe = Probe(model, transform, item.wave, target=int(item.label))

            def score(saliency):
                return compute_metrics(METRICS, MetricContext(probe, saliency, seed=seed))

            total = exp.meta["budget_total"]
            row = {"clip": item.name, "explainer": name, "transform": args.transform, "budget": total,
                   "seconds": seconds, "stats": {str(k): v for k, v in sorted(stats.items())},
                   "full": score(exp.saliency)}
            # every estimate, so that the map where a rule stops can be scored afterwards (score_stops)
            (out / "maps").mkdir(exist_ok=True)
            torch.save(maps,
                       out / "maps" / f"{item.name}-{name}.pt")
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(item.name, name, f"{seconds:.0f}s", row["full"], flush=True)




def table(outs: list[str]) -> str:
    """Markdown: per explainer (and variant folder), masks/steps used by ``auto`` against the budget, and
    I, D, insertion/deletion AUC of the full-budget and the ``auto`` maps (means over the clips)."""
    lines = ["| explainer | settings | clips | budget | auto used (mean) | saved | I full → auto | D full → auto | "
             "insertion AUC full → auto | deletion AUC full → auto |",
             "|---|---|---:|---:|---:|---:|---|---|---|---|"]
    for out in outs:
        rows = score_stops(Path(out))
        note = json.loads((Path(out) / "settings.json").read_text()) if (Path(out) / "settings.json").exists() else {}
        for name in dict.fromkeys(r["explainer"] for r in rows):
            mine = [r for r in rows if r["explainer"] == name]
            mean = lambda key, part: sum(r[part][key] for r in mine) / len(mine)  # noqa: E731
            used = sum(r["used"] for r in mine) / len(mine)
            budget = mine[0]["budget"]
            cells = " | ".join(f"{mean(k, 'full'):.3f} → {mean(k, 'auto'):.3f}"
                               for k in ("I", "D", "insertion_auc", "deletion_auc"))
            lines.append(f"| {name} | {note.get(name, 'paper defaults')} | {len(mine)} | {budget:,} | {used:,.0f} | "
                         f"{1 - used / budget:.0%} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--table"]:
        rest = sys.argv[2:]
        for flag in ("--jaccard", "--se", "--step-jaccard"):
            if flag in rest:
                i = rest.index(flag)
                RULE[flag[2:]] = float(rest[i + 1])
                del rest[i:i + 2]
        print(table(rest))
    else:
        main()
