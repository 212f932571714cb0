"""``earmark bench --precision``: reduced-precision scoring, measured against float32 before anyone uses it.

The sampling methods spend nearly all their time in forward passes, which a GPU (and a CPU with bfloat16
matrix units) can run in 16 bits under ``torch.autocast`` (:data:`earmark.probe.PRECISIONS`). Whether it pays,
and whether the map survives, depends on the hardware and the model, so Earmark keeps float32 as the default
and measures the option on the machine at hand: each sampling explainer × domain runs interleaved in
float32 and in the reduced format, and the row gives the speed-up and the reduced map's agreement with the
float32 map of the same seed (Spearman and top-10 % overlap). A row is within tolerance when Spearman ≥
:data:`MIN_SPEARMAN` and the overlap ≥ :data:`MIN_TOP10` (the thresholds the speed issue set).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .explainers import EXPLAINERS, explain
from .explainers.anytime import top_overlap
from .metrics.randomisation import spearman
from .probe import check_precision
from .transforms import get_transform

#: Agreement a reduced-precision map needs with the float32 map of the same seed to be usable.
MIN_SPEARMAN = 0.99
MIN_TOP10 = 0.95


@dataclass(frozen=True)
class PrecisionRow:
    """One explainer × domain: float32 against ``precision``, median seconds over interleaved repeats."""

    explainer: str
    transform: str
    precision: str
    float32_s: float
    reduced_s: float
    speedup: float
    spearman: float
    top10: float
    ok: bool


def top10_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of ``a``'s top-10 % cells that are among ``b``'s (equal-size sets)."""
    return top_overlap(a, b, 0.1)


def precision_rows(model, wave: torch.Tensor, *, explainers: Sequence[str], transforms: Sequence[str],
                   precision: str, settings: dict[str, dict[str, Any]], repeats: int = 3, seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> list[PrecisionRow]:
    """Time the sampling explainers among ``explainers`` in float32 and in ``precision``, interleaved.

    Args:
        settings: each explainer's resolved settings (the bench's).
        repeats: pairs per row (median times; the maps are the same every repeat: same seed).
    """
    precision = check_precision(precision)
    say = progress or (lambda line: None)
    rows = []
    for name in explainers:
        spec = EXPLAINERS.get(name)
        if spec.family != "sampling":
            continue
        for t in transforms:
            if not spec.supports(t):
                continue
            transform = get_transform(t, model.card.sample_rate)
            run = lambda p: explain(model, wave, transform, None, method=name, seed=seed,  # noqa: E731
                                    precision=p, **settings.get(name, {}))
            times: dict[str, list[float]] = {"float32": [], precision: []}
            maps = {}
            for i in range(max(1, int(repeats))):
                for p in (("float32", precision) if i % 2 == 0 else (precision, "float32")):
                    exp = run(p)
                    times[p].append(float(exp.meta["seconds"]))
                    maps[p] = exp.saliency
            full, reduced = statistics.median(times["float32"]), statistics.median(times[precision])
            rho, top = spearman(maps[precision], maps["float32"]), top10_overlap(maps[precision], maps["float32"])
            rows.append(PrecisionRow(name, t, precision, full, reduced, full / reduced if reduced > 0 else 0.0,
                                     rho, top, rho >= MIN_SPEARMAN and top >= MIN_TOP10))
            say(f"{name} × {t}: float32 {full:.3f} s, {precision} {reduced:.3f} s (×{rows[-1].speedup:.2f}), "
                f"Spearman {rho:.4f}, top-10 % {top:.3f}")
    return rows


def precision_markdown(rows: Sequence[PrecisionRow], device: str) -> str:
    """The table: speed-up and agreement with float32, and whether the row keeps the tolerance."""
    lines = ["## Reduced-precision scoring", "",
             f"- device {device}; speed-up = float32 s / reduced s (above 1: reduced faster); agreement with the "
             f"float32 map of the same seed; tolerance: Spearman ≥ {MIN_SPEARMAN}, top-10 % ≥ {MIN_TOP10}", "",
             "| explainer | transform | precision | float32 s | reduced s | speed-up | Spearman | top-10 % | |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.explainer} | {r.transform} | {r.precision} | {r.float32_s:.3f} | {r.reduced_s:.3f} | "
                     f"{r.speedup:.2f} | {r.spearman:.4f} | {r.top10:.3f} | {'ok' if r.ok else '**outside**'} |")
    wins = [r for r in rows if r.ok and r.speedup > 1.05]
    lines += ["", f"{len(wins)} of {len(rows)} rows both faster (> 5 %) and within tolerance."]
    return "\n".join(lines) + "\n"
