"""``earmark bench``: each explainer's wall time against the model-only floor, measured in the same run.

For one clip, every explainer × domain runs at its default settings (or tiny budgets with ``quick``).
Its cost is the number of model passes it made (``forward_passes`` / ``backward_passes`` from
:func:`earmark.explainers.explain`). The **floor** is the time the model alone needs for the same passes —
forward only for the sampling part, forward + backward (gradient with respect to the input) for the
gradient part — at its best batch size (several are tried), timed in the same process on the same
device. ``ratio = wall / floor`` is the overhead of the method: transforms, masks, bookkeeping.
Targets: ≤ 1.3 for sampling methods, ≤ 1.5 for gradient and mask-optimisation methods.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from .device import model_device
from .errors import ConfigError
from .explainers import EXPLAINERS, explain
from .explainers.anytime import top_overlap
from .metrics.randomisation import spearman
from .params import resolve
from .probe import Probe, default_batch_size, measured_chunks
from .threads import current_budget
from .transforms import get_transform

#: ratio targets per explainer family.
TARGETS = {"sampling": 1.3, "gradient": 1.5, "optimisation": 1.5}


@dataclass(frozen=True)
class BenchRow:
    """One explainer × domain measurement.

    Attributes:
        explainer, transform, family: what ran.
        forward_passes, backward_passes: model passes the explainer made (backward ⊂ forward).
        wall_s: explainer wall time.  floor_s: model-only time for the same passes.
        ratio: wall / floor.  target: the family's ratio target.  ok: ratio ≤ target.
        floor_batch: best batch size found for the floor.  settings: the explainer's settings used.
    """

    explainer: str
    transform: str
    family: str
    forward_passes: int
    backward_passes: int
    wall_s: float
    floor_s: float
    ratio: float
    target: float
    ok: bool
    floor_batch: int
    settings: dict[str, Any]

    @property
    def passes(self) -> str:
        fwd_only = self.forward_passes - self.backward_passes
        parts = ([f"{self.backward_passes} fwd+bwd"] if self.backward_passes else []) + \
                ([f"{fwd_only} fwd"] if fwd_only or not self.backward_passes else [])
        return " + ".join(parts)


def quick_settings(name: str) -> dict[str, Any]:
    """Tiny budgets for a smoke run: every budget-like setting cut to a few items (within its range)."""
    out = {}
    spec = EXPLAINERS.get(name)
    for p in spec.params:
        if p.name in spec.budget and isinstance(p.default, int) and not isinstance(p.default, bool):
            small = 32 if "mask" in p.name else 4
            out[p.name] = int(max(p.low if p.low is not None else 1, min(p.default, small)))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_passes(model, count: int, *, batch: int, backward: bool, num_samples: int, device: torch.device,
                repeats: int = 1) -> float:
    """Seconds for ``count`` model passes in batches of ``batch`` on random clips (no transform).

    With ``repeats`` > 1 the fastest of that many runs is returned (short timings are noisy).
    """
    if count <= 0:
        return 0.0
    if repeats > 1:
        return min(time_passes(model, count, batch=batch, backward=backward, num_samples=num_samples,
                               device=device) for _ in range(repeats))
    gen = torch.Generator(device=device).manual_seed(0)
    waves = torch.randn(min(batch, count), num_samples, generator=gen, device=device) * 0.1
    _sync(device)
    start = time.perf_counter()
    left = count
    while left > 0:
        x = waves[:min(batch, left)]
        if backward:
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(model(x)[:, 0].sum(), x)
        else:
            with torch.no_grad():
                model(x)
        left -= x.shape[0]
    _sync(device)
    return time.perf_counter() - start


def best_batch(model, *, backward: bool, num_samples: int, device: torch.device, limit: int,
               candidates: Sequence[int] = (1, 8, 32, 128, 512)) -> int:
    """The batch size with the lowest time per item (one timed batch each after a warm-up)."""
    cap = max(1, min(limit, default_batch_size(device, num_samples, backward=backward)))
    sizes = sorted({min(c, cap) for c in candidates} | {cap})
    best, best_per_item = sizes[0], math.inf
    for b in sizes:
        time_passes(model, b, batch=b, backward=backward, num_samples=num_samples, device=device)  # warm-up
        per_item = time_passes(model, b, batch=b, backward=backward, num_samples=num_samples, device=device) / b
        if per_item < best_per_item:
            best, best_per_item = b, per_item
    return best


class Floor:
    """Model-only time for a given number of passes; batch-size searches are cached per pass kind."""

    def __init__(self, model, *, num_samples: int, device: torch.device):
        self.model, self.num_samples, self.device = model, num_samples, device
        self._batch: dict[bool, int] = {}

    def batch(self, backward: bool, count: int) -> int:
        if backward not in self._batch:
            self._batch[backward] = best_batch(self.model, backward=backward, num_samples=self.num_samples,
                                               device=self.device, limit=max(count, 512))
        return min(self._batch[backward], max(1, count))

    def seconds(self, *, forward: int, backward: int) -> tuple[float, int]:
        """Floor time of ``backward`` forward+backward passes plus ``forward − backward`` forward passes."""
        total, batch = 0.0, 1
        if backward:
            batch = self.batch(True, backward)
            total += time_passes(self.model, backward, batch=batch, backward=True, num_samples=self.num_samples,
                                 device=self.device, repeats=3 if backward <= 256 else 1)
        if forward - backward > 0:
            b = self.batch(False, forward - backward)
            batch = batch if backward else b
            total += time_passes(self.model, forward - backward, batch=b, backward=False,
                                 num_samples=self.num_samples, device=self.device,
                                 repeats=3 if forward - backward <= 256 else 1)
        return total, batch


@dataclass(frozen=True)
class BenchReport:
    """Rows, skipped pairs, and where the JSON and Markdown went."""

    rows: list[BenchRow]
    skipped: list[str]
    meta: dict[str, Any]
    markdown: str
    paths: dict[str, Path]


def run_bench(model, wave: torch.Tensor, *, explainers: Sequence[str], transforms: Sequence[str], out: str | Path,
              quick: bool = False, seed: int = 0, overrides: Mapping[str, Mapping[str, Any]] | None = None,
              clip_name: str = "clip", progress: Callable[[str], None] | None = None,
              reference: bool = False, reference_masks: int = 3000, curve_reference: int = 0, curve_seeds: int = 3,
              curve_counts: Sequence[int] = (200, 400, 1000, 2000, 3000), repeats: int = 1,
              precision: str | None = None) -> BenchReport:
    """Time every explainer × domain on ``wave`` against the model-only floor; write JSON + Markdown.

    Args:
        model: the classifier.  wave: (L,) clip at the model's rate and length.
        explainers: names (``["all"]`` = every registered one but the model-free references).
        transforms: domain names.
        out: output folder.  quick: tiny budgets (a smoke test, not a measurement).
        seed: explainer seed.  overrides: ``{explainer: {setting: value}}`` on top of the defaults.
        progress: ``progress(line)`` for a person.
        reference: also time FreqRISE against :func:`freqrise_reference` (the paper's estimator, batches of
            500) on the same model, in the first domain (:func:`side_by_side`), with ``reference_masks`` masks.
        curve_reference: > 0: a masks-to-quality curve (:func:`quality_curve`) against a map of this many
            plain-Bernoulli masks, in the first domain, with ``curve_seeds`` seeds at ``curve_counts``.
        repeats: timed (explainer, floor) pairs per row, interleaved so that a change of the machine's load
            hits both; the row reports the median wall and floor times and the median of the pairs' ratios.
        precision: also run the sampling explainers with reduced-precision scoring (``bfloat16`` /
            ``float16``) against float32 (:mod:`earmark.precision`): speed-up and the maps' agreement.

    Returns:
        :class:`BenchReport`.
    """
    names = ([n for n in EXPLAINERS.names() if EXPLAINERS.get(n).family != "reference"]  # no model passes to time
             if list(explainers) in (["all"], []) else list(explainers))
    overrides = dict(overrides or {})
    for owner in overrides:
        if owner not in names:
            raise ConfigError(f"--set names '{owner}', which is not among the benchmarked explainers ({', '.join(names)}).")
    device = model_device(model)
    card = model.card
    floor = Floor(model, num_samples=card.num_samples, device=device)
    say = progress or (lambda line: None)
    time_passes(model, 4, batch=4, backward=True, num_samples=card.num_samples, device=device)  # wake the device
    rows, skipped = [], []
    for name in names:
        spec = EXPLAINERS.get(name)
        given = {**(quick_settings(name) if quick else {}), **overrides.get(name, {})}
        settings = resolve(spec.params, given, owner=f"Explainer '{name}'")
        for t in transforms:
            if not spec.supports(t):
                skipped.append(f"{name} × {t}: {spec.title} works in {', '.join(spec.domains or ())} only")
                continue
            transform = get_transform(t, card.sample_rate)
            say(f"{name} × {t}: warm-up")
            warm = {**settings, **quick_settings(name)}
            explain(model, wave, transform, None, method=name, seed=seed, **warm)
            walls, floors = [], []
            for i in range(max(1, int(repeats))):
                say(f"{name} × {t}: timing" + (f" ({i + 1} of {repeats})" if repeats > 1 else ""))
                exp = explain(model, wave, transform, None, method=name, seed=seed, **settings)
                fwd, bwd = int(exp.meta["forward_passes"]), int(exp.meta["backward_passes"])
                floor_s, batch = floor.seconds(forward=fwd, backward=bwd)
                walls.append(float(exp.meta["seconds"]))
                floors.append(floor_s)
            wall, floor_s = statistics.median(walls), statistics.median(floors)
            ratio = (statistics.median(w / f for w, f in zip(walls, floors)) if min(floors) > 0 else math.inf)
            target = TARGETS.get(spec.family, 1.5)
            rows.append(BenchRow(name, t, spec.family, fwd, bwd, wall, floor_s, ratio, target,
                                 floor_s == 0 or ratio <= target,
                                 batch, settings))
            say(f"{name} × {t}: {wall:.3f} s vs floor {floor_s:.3f} s (×{ratio:.2f})")
    meta = {"model": card.name, "clip": clip_name, "device": str(device), "quick": quick, "seed": seed,
            "num_samples": card.num_samples, "sample_rate": card.sample_rate, "torch": torch.__version__,
            "targets": TARGETS, "threads": torch.get_num_threads(), "repeats": max(1, int(repeats)), "thread_budget": current_budget().describe(),
            "chunks": {("fwd+bwd" if k[3] else "fwd"): v for k, v in measured_chunks(model).items()
                       if k[2] == card.num_samples}}
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
    extra_md = []
    if precision:
        from .precision import precision_markdown, precision_rows

        resolved = {n: {**(quick_settings(n) if quick else {}), **overrides.get(n, {})} for n in names}
        prows = precision_rows(model, wave, explainers=names, transforms=transforms, precision=precision,
                               settings=resolved, repeats=repeats, seed=seed, progress=say)
        meta["precision"] = [asdict(r) for r in prows]
        extra_md.append(precision_markdown(prows, meta.get("gpu") or str(device)))
    if reference and transforms:
        t0 = get_transform(transforms[0], card.sample_rate)
        n = 32 if quick else int(reference_masks)
        say(f"side by side: Earmark FreqRISE vs the paper's estimator, {n} masks in {t0.name}")
        meta["side_by_side"] = {"transform": t0.name, **side_by_side(model, wave, t0, n_masks=n, seed=seed)}
        extra_md.append(side_by_side_markdown(meta["side_by_side"]))
    if curve_reference > 0 and transforms:
        t0 = get_transform(transforms[0], card.sample_rate)
        points, cmeta = quality_curve(model, wave, t0, reference_masks=curve_reference,
                                      seeds=tuple(range(curve_seeds)), counts=tuple(curve_counts), progress=say)
        meta["curve"] = {**cmeta, "transform": t0.name, "points": [asdict(p) for p in points]}
        extra_md.append("## Masks to quality (FreqRISE)\n\n" + curve_markdown(points, cmeta))
    markdown = bench_markdown(rows, meta=meta, skipped=skipped) + "".join("\n" + m for m in extra_md)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md"}
    paths["json"].write_text(json.dumps({"meta": meta, "skipped": skipped,
                                         "rows": [asdict(r) | {"passes": r.passes} for r in rows]},
                                        indent=2, default=str))
    paths["markdown"].write_text(markdown, encoding="utf-8")
    return BenchReport(rows, skipped, meta, markdown, paths)


def bench_markdown(rows: Sequence[BenchRow], *, meta: Mapping[str, Any], skipped: Sequence[str] = ()) -> str:
    """The table: explainer, transform, passes, wall s, floor s, ratio, target, and a flag for misses."""
    lines = ["# Earmark bench", ""]
    where = meta.get("gpu") or meta.get("device")
    lines.append(f"- model `{meta.get('model')}` on clip `{meta.get('clip')}` "
                 f"({meta.get('num_samples')} samples at {meta.get('sample_rate')} Hz); device: {where}; "
                 f"torch {meta.get('torch')}")
    lines.append("- floor: the model alone for the same passes at its best batch size, timed in the same run; "
                 "targets: ratio ≤ 1.3 (sampling), ≤ 1.5 (gradient, mask optimisation)")
    if int(meta.get("repeats", 1)) > 1:
        lines.append(f"- {meta['repeats']} interleaved (explainer, floor) repetitions per row: median times, "
                     "and the ratio is the median of the repetitions' ratios")
    lines.append(f"- threads: {meta.get('thread_budget', meta.get('threads'))}")
    if meta.get("chunks"):
        lines.append(f"- chunk sizes used (fixed per clip length and pass kind) ({meta.get('threads')} thread(s)): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(meta["chunks"].items())))
    if meta.get("quick"):
        lines.append("- **quick run: tiny budgets, a smoke test; the ratios are not representative**")
    lines += ["", "| explainer | transform | passes | wall s | floor s | ratio | target | |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        flag = "ok" if r.ok else "**miss**"
        lines.append(f"| {r.explainer} | {r.transform} | {r.passes} | {r.wall_s:.3f} | {r.floor_s:.3f} | "
                     f"{r.ratio:.2f} | ≤ {r.target:g} | {flag} |")
    misses = [r for r in rows if not r.ok]
    lines += ["", f"{len(rows) - len(misses)} of {len(rows)} within target."]
    if skipped:
        lines += ["", "Not run:"] + [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"




# ---- a FreqRISE reference estimator, written from the paper's description -------------------------------
def freqrise_reference(model, wave: torch.Tensor, transform, target: int, *, n_masks: int = 3000, batch: int = 500,
                       cells: int = 200, p: float = 0.5, generator: torch.Generator) -> torch.Tensor:
    """FreqRISE as the paper describes it, independent of Earmark's explainer code: batches of ``batch``
    masks, each a Bernoulli(1 − p) grid of about ``cells`` cells, bilinearly upsampled and randomly shifted
    (RISE), applied to the clip's coefficients (dropped = 0), synthesised, scored by the target's
    probability; importance = Σ s·M / (N·(1 − p)). No chunk schedule, no probe, no anytime machinery.

    Returns:
        (*M) importance map on the model's device.
    """
    import torch.nn.functional as F

    from .explainers.masks import grid_for

    device = wave.device
    length = wave.shape[-1]
    z = transform.analyze(wave.reshape(1, -1))[0]
    f, t = (int(v) for v in transform.image_shape(length))
    gf, gt = grid_for((f, t), cells)
    cf, ct = math.ceil(f / gf), math.ceil(t / gt)
    size = (f if gf == f else (gf + 1) * cf, t if gt == t else (gt + 1) * ct)
    total = torch.zeros(transform.map_shape(length), device=device)
    done = 0
    with torch.inference_mode():
        while done < n_masks:
            b = min(batch, n_masks - done)
            grid = (torch.rand((b, 1, gf, gt), generator=generator, device=device) >= p).float()
            up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0]
            dy = torch.randint(0, 1 if gf == f else cf, (b,), generator=generator, device=device)
            dx = torch.randint(0, 1 if gt == t else ct, (b,), generator=generator, device=device)
            image = torch.stack([up[i, dy[i]:dy[i] + f, dx[i]:dx[i] + t] for i in range(b)])
            masks = transform.from_image(image, length=length)
            x = transform.synthesize(z * transform.lift(masks), length)
            s = model(x).softmax(-1)[:, target]
            total += (s.view(-1, *(1,) * (masks.ndim - 1)) * masks).sum(0)
            done += b
    return total / (n_masks * (1 - p))


def side_by_side_markdown(r: Mapping[str, Any]) -> str:
    """One-row table: Earmark's FreqRISE vs the paper's estimator on the same model."""
    return ("## Side by side: FreqRISE, Earmark vs the paper's estimator\n\n"
            "| masks | domain | Earmark s (chunk) | reference s (batch 500) | ratio | Spearman of the maps |\n"
            "|---:|---|---:|---:|---:|---:|\n"
            f"| {r['n_masks']:,} | {r.get('transform', '')} | {r['earmark_s']:.2f} ({r['earmark_chunk']}) | "
            f"{r['reference_s']:.2f} | {r['ratio']:.2f} | {r['spearman']:.3f} |\n")


def side_by_side(model, wave: torch.Tensor, transform, *, n_masks: int = 3000, seed: int = 0,
                 repeats: int = 1) -> dict[str, Any]:
    """Wall time of Earmark's FreqRISE and of :func:`freqrise_reference` (batches of 500) on the same model,
    clip and domain, and the Spearman agreement of their maps (both estimate the same expectation)."""
    device = model_device(model)
    wave = wave.to(device)
    ours = explain(model, wave, transform, None, method="freqrise", seed=seed, n_masks=n_masks)  # warm
    target = ours.target
    t_ours, t_ref = [], []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        ours = explain(model, wave, transform, target, method="freqrise", seed=seed, n_masks=n_masks)
        _sync(device)
        t_ours.append(time.perf_counter() - start)
        gen = torch.Generator(device=device).manual_seed(seed)
        start = time.perf_counter()
        ref = freqrise_reference(model, wave, transform, target, n_masks=n_masks, generator=gen)
        _sync(device)
        t_ref.append(time.perf_counter() - start)
    return {"n_masks": n_masks, "earmark_s": min(t_ours), "reference_s": min(t_ref),
            "ratio": min(t_ours) / min(t_ref), "spearman": spearman(ours.saliency, ref),
            "earmark_chunk": int(Probe(model, transform, wave).batch_size(backward=False)),
            "reference_batch": 500}


# ---- masks-to-quality curve -----------------------------------------------------------------------
#: Variants compared by :func:`quality_curve`: the paper's estimator first (the reference kind).
CURVE_VARIANTS: dict[str, dict[str, Any]] = {
    "bernoulli (paper)": {"sampler": "bernoulli", "estimator": "plain"},
    "bernoulli + control variate": {"sampler": "bernoulli", "estimator": "control_variate"},
    "antithetic": {"sampler": "antithetic", "estimator": "plain"},
    "antithetic + control variate": {"sampler": "antithetic", "estimator": "control_variate"},
    "sobol": {"sampler": "sobol", "estimator": "plain"},
    "sobol + control variate": {"sampler": "sobol", "estimator": "control_variate"},
}


@dataclass(frozen=True)
class CurvePoint:
    """Agreement of one variant's map after ``masks`` masks with the reference map (mean ± std over seeds)."""

    variant: str
    masks: int
    spearman: float
    spearman_std: float
    top10: float
    top10_std: float
    seeds: int


def quality_curve(model, wave: torch.Tensor, transform, *, method: str = "freqrise", target: int | None = None,
                  reference_masks: int = 30000, counts: Sequence[int] = (200, 400, 1000, 2000, 3000),
                  variants: Mapping[str, Mapping[str, Any]] | None = None, seeds: Sequence[int] = (0, 1, 2),
                  reference_seed: int = 10_000, settings: Mapping[str, Any] | None = None,
                  others_up_to: int | None = None,
                  progress: Callable[[str], None] | None = None) -> tuple[list[CurvePoint], dict[str, Any]]:
    """Masks-to-quality curve: each variant's agreement with a ``reference_masks`` plain-Bernoulli map.

    Every (variant, seed) runs once with ``max(counts)`` masks; the maps after fewer masks are its anytime
    estimates at those chunk ends (a run of ``k`` masks draws the first ``k`` masks of a longer one, so
    they are the ``k``-mask maps). Agreement: Spearman over all cells and the top-10 % overlap.

    ``others_up_to`` caps the counts of every variant but the first (the paper's, which sets the bar at
    ``max(counts)``), to save time when only the small counts of the others matter.

    Returns:
        points, and meta (reference seconds, settings).
    """
    say = progress or (lambda line: None)
    variants = dict(variants or (CURVE_VARIANTS if method == "freqrise" else
                                 {k: {"sampler": v["sampler"]} for k, v in CURVE_VARIANTS.items()
                                  if v["estimator"] == "plain"}))
    base = dict(settings or {})
    say(f"reference: {method}, {reference_masks} plain Bernoulli masks")
    started = time.perf_counter()
    ref = explain(model, wave, transform, target, method=method, seed=reference_seed,
                  **{**base, "n_masks": reference_masks, "sampler": "bernoulli",
                     **({"estimator": "plain"} if method == "freqrise" else {})}).saliency
    ref_seconds = time.perf_counter() - started
    points = []
    for i, (name, extra) in enumerate(variants.items()):
        mine = [c for c in counts if i == 0 or others_up_to is None or c <= others_up_to]
        top = max(mine)
        per_count: dict[int, list[tuple[float, float]]] = {c: [] for c in mine}
        for seed in seeds:
            maps: dict[int, torch.Tensor] = {}
            explain(model, wave, transform, target, method=method, seed=seed,
                    on_partial=lambda s, done, total, conv: maps.__setitem__(done, s),
                    **{**base, **extra, "n_masks": top})
            for c in mine:
                if c not in maps:
                    raise ConfigError(f"{c} masks is not a chunk end of a {top}-mask run; use multiples of 200.")
                per_count[c].append((spearman(maps[c], ref), top_overlap(maps[c], ref)))
        for c in mine:
            rho = torch.tensor([v[0] for v in per_count[c]])
            ov = torch.tensor([v[1] for v in per_count[c]])
            sd = (lambda v: float(v.std()) if v.numel() > 1 else 0.0)
            points.append(CurvePoint(name, c, float(rho.mean()), sd(rho), float(ov.mean()), sd(ov), len(seeds)))
        say(f"{name}: " + ", ".join(f"{p.masks}: ρ {p.spearman:.3f} top10 {p.top10:.3f}"
                                    for p in points if p.variant == name))
    return points, {"reference_masks": reference_masks, "reference_seconds": ref_seconds, "method": method,
                    "seeds": list(seeds), "settings": base}


def curve_markdown(points: Sequence[CurvePoint], meta: Mapping[str, Any]) -> str:
    """Table: one row per variant, Spearman / top-10 % overlap per mask count; the masks a variant needs
    to match the paper estimator's agreement at its largest count."""
    counts = sorted({p.masks for p in points})
    names = list(dict.fromkeys(p.variant for p in points))
    at = {(p.variant, p.masks): p for p in points}
    bar_name, top = names[0], counts[-1]
    bar = at[(bar_name, top)]
    lines = [f"Agreement with a {meta['reference_masks']:,}-mask plain-Bernoulli {meta['method']} map "
             f"(Spearman / top-10 % overlap, mean of {len(meta['seeds'])} seeds); bar = {bar_name} at {top:,} "
             f"masks: ρ {bar.spearman:.3f}, top-10 % {bar.top10:.3f}", "",
             "| variant | " + " | ".join(f"{c:,} masks" for c in counts) + " | masks to reach the bar |",
             "|---|" + "---:|" * (len(counts) + 1)]
    for name in names:
        mine = [c for c in counts if (name, c) in at]
        reach = next((c for c in mine if at[(name, c)].spearman >= bar.spearman - 1e-9
                      and at[(name, c)].top10 >= bar.top10 - 1e-9), None)
        cells = " | ".join(f"{at[(name, c)].spearman:.3f} / {at[(name, c)].top10:.3f}" if (name, c) in at else "—"
                           for c in counts)
        lines.append(f"| {name} | {cells} | {f'{reach:,}' if reach else f'> {max(mine):,}'} |")
    return "\n".join(lines) + "\n"


__all__ = ["BenchReport", "BenchRow", "CURVE_VARIANTS", "CurvePoint", "Floor", "TARGETS", "bench_markdown",
           "best_batch", "curve_markdown", "quality_curve", "quick_settings", "run_bench", "spearman",
           "time_passes", "top_overlap"]
