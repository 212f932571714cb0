"""Measure a scan model on generated phone-number recordings and on pure noise.

For each seed a recording of FSDD **test-split** digits is generated (:mod:`earmark.data.recording`), scanned,
and its events are matched to the words (IoU ≥ 0.5 = found; found by an event of the word's label = named).
Then ``--noise-minutes`` of generated noise without speech (pink/white/brown beds, hum, clicks, breath-like
bursts, level changes every 30 s) are scanned and its events counted per minute. Writes JSON to ``--out``.

    EARMARK_DATA=/path/to/fsdd python tools/eval_recording.py --model scan-digits --hop 0.05 --trim-db 20 \\
        --seeds 0,1,2,3,4 --explained --out docs/results/recordings.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "core"), str(ROOT)]

from earmark.data.recording import background, make_recording  # noqa: E402
from earmark.models import load_model  # noqa: E402
from earmark.timeline import explain_timeline, match_events, scan  # noqa: E402


def explained_mass(model, rec, *, hop: float = 0.5, n_steps: int = 8) -> dict:
    """Share of the stitched IG map (zero baseline) of each class spoken in ``rec`` that lies inside that
    class's words, and inside any word, for |IG| and for its positive part (evidence *for* the class); the
    words cover ``word_share_of_time`` of the recording."""
    rate = rec.sample_rate
    t = np.arange(rec.wave.shape[0]) / rate
    in_any = np.zeros_like(t, dtype=bool)
    for w in rec.words:
        in_any |= (t >= w.start) & (t < w.end)
    own, anyw, pos_own, pos_any = [], [], [], []
    for label in sorted({w.label for w in rec.words}):
        st = explain_timeline(model, (rec.wave, rate), method="ig", target=label, hop=hop, baselines="zero",
                              n_steps=n_steps)
        signed = st.saliency[: t.shape[0]]
        mass, positive = np.abs(signed), np.clip(signed, 0, None)
        inside = np.zeros_like(in_any)
        for w in rec.words:
            if w.label == label:
                inside |= (t >= w.start) & (t < w.end)
        own.append(float(mass[inside].sum() / mass.sum()))
        anyw.append(float(mass[in_any].sum() / mass.sum()))
        pos_own.append(float(positive[inside].sum() / max(positive.sum(), 1e-30)))
        pos_any.append(float(positive[in_any].sum() / max(positive.sum(), 1e-30)))
    return {"abs_mass_in_own_words": float(np.mean(own)), "abs_mass_in_any_word": float(np.mean(anyw)),
            "positive_mass_in_own_words": float(np.mean(pos_own)), "positive_mass_in_any_word": float(np.mean(pos_any)),
            "word_share_of_time": float(in_any.mean()), "classes": len(own), "method": f"ig (zero baseline, {n_steps} steps)",
            "hop_s": hop}


def noise_recording(minutes: float, seed: int, rate: int = 8000) -> np.ndarray:
    """Speech-free noise: 30 s sections, each a bed (white, pink, brown or hum) at a random level, with
    clicks and breath-like bursts in half of them."""
    rng = np.random.default_rng(10_000 + seed)
    parts = []
    for _ in range(int(np.ceil(minutes * 2))):
        n = 30 * rate
        level = 10 ** (rng.uniform(-60, -20) / 20)
        x = background(str(rng.choice(["white", "pink", "brown", "hum"])), n, rng, rate) * level
        for sparse in ("clicks", "breath"):
            if rng.random() < 0.5:
                x += background(sparse, n, rng, rate) * level * rng.uniform(1, 10)
        parts.append(x)
    out = np.concatenate(parts)[: int(minutes * 60 * rate)]
    return (out * (0.9 / max(0.9, np.abs(out).max()))).astype(np.float32)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="scan-digits")
    p.add_argument("--hop", type=float, default=0.05)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--min-duration", type=float, default=0.0)
    p.add_argument("--trim-db", type=float, default=None)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--digits", type=int, default=15)
    p.add_argument("--noise-minutes", type=float, default=10.0)
    p.add_argument("--explained", action="store_true", help="also measure the explained timeline's mass in words "
                   "(first seed)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    model = load_model(args.model, "cpu")
    rows, totals = [], {"words": 0, "found": 0, "named": 0, "events": 0, "false_events": 0}
    for seed in (int(s) for s in args.seeds.split(",")):
        rec = make_recording(seed=seed, digits=args.digits)
        started = time.perf_counter()
        tl = scan(model, (rec.wave, rec.sample_rate), hop=args.hop)
        events = tl.events(args.threshold, min_duration=args.min_duration, trim_db=args.trim_db)
        m = match_events(events, rec.words)
        m.update(seed=seed, seconds=round(rec.duration, 2), scan_s=round(time.perf_counter() - started, 2))
        rows.append(m)
        for k in totals:
            totals[k] += m[k]
        print(json.dumps(m), flush=True)
    explained = None
    if args.explained:
        explained = explained_mass(model, make_recording(seed=int(args.seeds.split(",")[0]), digits=args.digits))
        print(json.dumps(explained), flush=True)
    noise = noise_recording(args.noise_minutes, 0)
    tl = scan(model, (noise, 8000), hop=args.hop)
    noise_events = tl.events(args.threshold, min_duration=args.min_duration, trim_db=args.trim_db)
    result = {
        "model": args.model, "hop_s": args.hop, "threshold": args.threshold, "min_duration_s": args.min_duration,
        "trim_db": args.trim_db,
        "recordings": rows,
        "found_share": totals["found"] / totals["words"], "named_share": totals["named"] / totals["words"],
        "words": totals["words"], "events": totals["events"], "false_events_in_recordings": totals["false_events"],
        "noise_minutes": args.noise_minutes, "noise_events": len(noise_events),
        "noise_false_events_per_minute": len(noise_events) / args.noise_minutes,
        "explained_timeline": explained,
        "command": "python tools/eval_recording.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "recordings"}, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
