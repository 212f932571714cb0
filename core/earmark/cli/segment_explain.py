"""``earmark explain CLIP --segments SOURCE``: a score per segment with its standard error, and each segment heard.

SOURCE is a segment file (``words.TextGrid[:tier]``, a Raven table, an Audacity label track, a CSV
``start,end,label[,score]`` such as a scan's events), ``auto`` (energy-based activity detection) or
``grid:SECONDS`` (equal spans). ``--explainer`` is a segment method (``shapley``, ``occlusion``, ``summed``,
``energy``) or any registered map explainer, whose map is then summed per segment.

Writes into ``--out``: ``segments.csv`` (``start,end,label,score,stderr``), ``segments.json`` (settings,
the model's answer on every version, deletion/insertion by segments against random and energy orders),
``original.wav``, ``segments/NN_<label>_alone.wav`` and ``NN_<label>_without.wav`` per segment and
``top<k>.wav`` (only the best k segments).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from ..errors import ConfigError

#: The segment methods' names beside the map explainers' (a map explainer is summed per segment).
SEGMENT_HELP = "segments: a TextGrid[:tier], Raven table, Audacity labels or CSV file, 'auto', or 'grid:SECONDS'"


def segment_source(text: str, wave, rate: int):
    """The :class:`~earmark.segments.Segments` a ``--segments`` value names (see the module docstring)."""
    from ..segments import detect, grid, load

    if text == "auto":
        return detect(wave, rate)
    if text.startswith("grid:"):
        try:
            width = float(text[5:])
        except ValueError:
            raise ConfigError(f"--segments grid:SECONDS needs a number of seconds, e.g. grid:0.25; got {text!r}.") from None
        return grid(wave.numel() / rate, width)
    path, tier = text, None
    if not Path(text).exists() and ":" in text:
        path, tier = text.rsplit(":", 1)
    return load(path, tier=tier or None)


def _method(explainer: str, settings: dict) -> tuple[str, dict]:
    from ..explainers import EXPLAINERS
    from ..segments import SEGMENT_EXPLAINERS

    if explainer in SEGMENT_EXPLAINERS:
        return explainer, settings
    if explainer in EXPLAINERS:
        return "summed", {"explainer": explainer, **settings}
    raise ConfigError(f"Unknown explainer '{explainer}' for segments. Choose a segment method "
                      f"({', '.join(SEGMENT_EXPLAINERS.names())}) or a map explainer "
                      f"({', '.join(EXPLAINERS.names())}), whose map is summed per segment.")


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-")[:40] or "segment"


def run_segments(args: argparse.Namespace, *, top_k: int = 3) -> int:
    """Run the segment path of ``earmark explain`` (arguments as parsed by :mod:`earmark.cli.explain`)."""
    from .. import audio
    from ..metrics.segments import segment_deletion_insertion
    from ..params import resolve
    from ..segments import SEGMENT_EXPLAINERS, explain_segments, sounds_for
    from .common import check_out_dir, load_cli_model, load_input_clip, parse_settings

    started = time.perf_counter()
    method, settings = _method(args.explainer, parse_settings(args.settings))
    settings = resolve(SEGMENT_EXPLAINERS.get(method).params, settings, owner=f"Segment explainer '{method}'")
    out = check_out_dir(args.out)
    model = load_cli_model(args.model, args.device, args.window)
    card = model.card
    clip = load_input_clip(args.clip)
    prepared = audio.prepare(clip, sample_rate=card.sample_rate, num_samples=card.num_samples, policy=args.policy,
                             offset_seconds=args.offset)
    x = getattr(prepared, "wave", prepared).reshape(-1)
    segments = segment_source(args.segments, x, card.sample_rate)
    expl = explain_segments(model, x, segments, args.target, method=method, seed=args.seed, **settings)
    explained = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    expl.to_csv(out / "segments.csv")
    game = {k: expl.params.get(k, d) for k, d in (("replacement", "silence"), ("rest", "keep"), ("readout", "prob"))}
    faith = segment_deletion_insertion(model, x, expl.segments, expl.scores, target=expl.target, seed=args.seed,
                                       **game)
    sounds = sounds_for(model, x, expl, top_k=top_k)
    folder = out / "segments"
    folder.mkdir(parents=True, exist_ok=True)
    heard = []
    for s in sounds:
        if s.kind == "original":
            name = "original.wav"
        elif s.kind == "top":
            name = f"top{len(s.members)}.wav"
        else:
            name = f"segments/{s.index:02d}_{_safe(expl.segments.labels[s.index])}_{s.kind}.wav"
        audio.save_wav(out / name, s.wave.cpu(), card.sample_rate)
        heard.append({"file": name, "kind": s.kind, "segment": s.index, "members": list(s.members),
                      "target_score": s.score, "predicted": card.labels[s.predicted]})
    summary = {
        "clip": clip.name, "model": card.name, "target": expl.target, "target_label": card.labels[expl.target],
        "predicted": card.labels[expl.meta["predicted"]], "method": expl.method, "params": expl.params,
        "seed": expl.seed, "segments_source": args.segments, "uncertainty": expl.meta["uncertainty"],
        "value_all": float(expl.extras["value_all"]) if "value_all" in expl.extras else None,
        "value_none": float(expl.extras["value_none"]) if "value_none" in expl.extras else None,
        "segments": expl.rows(), "faithfulness": faith.rows(), "listening": heard,
        "timings": {"explain_s": explained - started, "total_s": time.perf_counter() - started},
    }
    (out / "segments.json").write_text(json.dumps(summary, indent=2))
    width = max(5, *(len(label) for label in expl.segments.labels))
    print(f"{clip.name}: class {card.labels[expl.target]} by {expl.method} over {len(expl.segments)} segments "
          f"(score ± standard error, best first)")
    for i in expl.order():
        r = expl.rows()[i]
        print(f"  {r['label']:<{width}} {r['start']:7.2f}-{r['end']:<7.2f} {r['score']:+.4f} ± {r['stderr']:.4f}")
    for row in faith.rows():
        print(f"  {row['curve']} AUC ({row['better']} is better): segments by score {row['score']:.3f}, "
              f"random {row['random']:.3f} ± {row['random_sd']:.3f}, energy {row['energy']:.3f}")
    print(f"→ {out}/segments.csv, segments.json, original.wav, top{min(top_k, len(expl.segments))}.wav, segments/")
    return 0
