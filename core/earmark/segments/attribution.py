"""Segment attributions: a score and a standard error per segment, registered by name.

* ``occlusion`` — leave-one-out: ``f(all) − f(all without segment i)`` with a declared replacement;
  with a random replacement (noise, background) the drop is averaged over ``repeats`` draws and the standard
  error is over the draws.
* ``shapley`` — Shapley values of the segments: exact for up to ``exact_max`` players (all ``2ⁿ``
  coalitions as batches of masks through the probe); beyond that, permutation sampling with antithetic
  pairs (a permutation and its reverse), the standard error over pairs. Both are efficient:
  ``Σ φ_i = f(all) − f(none)`` (exactly for the sampled values too: each permutation telescopes).
* ``summed`` — any registered fine-grained explainer's map summed within each segment (IG's completeness
  carries over: the segment sums plus the rest add up to ``f(x) − f(baseline)``).
* ``energy`` — the segments' own energy (reference, no model).

``bands=2`` (occlusion, shapley) splits every segment into its low and high halves of the spectrum; the
per-(segment, band) scores are in ``extras["band_scores"]`` (n, 2) and each segment's score is their sum.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ..device import make_generator
from ..errors import ConfigError
from ..params import Param, Registry, resolve
from ..probe import READOUTS, Probe, ProgressFn
from ..transforms import get_transform
from ..validate import check_seed, check_target, check_wave
from .base import Segments
from .game import REPLACEMENTS, SegmentGame, players_for, replacement_wave


@dataclass(frozen=True)
class SegmentAttribution:
    """What a segment method computes: ``scores`` and ``stderr`` (n,) float64, method ``extras``, resolved
    settings."""

    scores: Tensor
    stderr: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentExplainerSpec:
    """A registered segment method: ``fn(probe, segments, *, generator, **params) -> SegmentAttribution``."""

    name: str
    title: str
    fn: Callable[..., SegmentAttribution]
    params: tuple[Param, ...]
    uncertainty: str
    needs_model: bool = True


@dataclass(frozen=True)
class SegmentExplanation:
    """A score per segment with its standard error.

    Attributes:
        segments: the explained spans.  scores, stderr: (n,) float64 on the CPU.
        target: explained class.  method: registered name.  params: settings as used.  seed: the seed.
        extras: method tensors (``band_scores`` (n, 2), ``value_all``, ``value_none``, ``alone``).
        meta: seconds, model evaluations, the model's probabilities on the clip.
    """

    segments: Segments
    scores: Tensor
    stderr: Tensor
    target: int
    method: str
    params: dict[str, Any]
    seed: int | None
    extras: dict[str, Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def order(self) -> list[int]:
        """Segment indices by score, highest first (ties: earlier segment first)."""
        return sorted(range(len(self.segments)), key=lambda i: (-float(self.scores[i]), i))

    def rows(self) -> list[dict]:
        """One ``{start, end, label, score, stderr}`` per segment, in time order."""
        return [{**row, "score": float(self.scores[i]), "stderr": float(self.stderr[i])}
                for i, row in enumerate({k: v for k, v in r.items() if k != "score"} for r in self.segments.rows())]

    def to_csv(self, path: str | Path) -> Path:
        """Write ``start,end,label,score,stderr`` (one row per segment, time order)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["start", "end", "label", "score", "stderr"])
            for r in self.rows():
                w.writerow([f"{r['start']:.4f}", f"{r['end']:.4f}", r["label"], f"{r['score']:.6g}",
                            f"{r['stderr']:.6g}"])
        return path


SEGMENT_EXPLAINERS = Registry("segment explainer")

_REPLACEMENT = Param("replacement", "silence", "what replaces a removed segment", choices=REPLACEMENTS)
_REST = Param("rest", "keep", "the part outside every segment: kept in every coalition, or replaced",
              choices=("keep", "replace"))
_READOUT = Param("readout", "prob", "the target's score that is attributed", choices=tuple(READOUTS))
_BANDS = Param("bands", 1, "1: whole segments; 2: each segment's low and high halves", choices=(1, 2))


# ---------------------------------------------------------------------------------------------- the game
def _game(probe: Probe, segments: Segments, *, replacement: str, rest: str, readout: str, bands: int,
          generator: torch.Generator) -> SegmentGame:
    rate = probe.transform.sample_rate
    transform, masks = players_for(segments, rate, probe.length, bands=bands)
    if transform.name != probe.transform.name:
        probe = Probe(probe.model, transform, probe.x[0], target=probe.target,
                      batch_size=probe._batch, progress=probe.progress)
    wave = replacement_wave(probe.x[0], segments, rate, replacement, generator)
    base = probe.transform.analyze(wave[None])[0]
    return SegmentGame(probe, masks, base, rest=rest, readout=readout)


def _fold_bands(values: Tensor, bands: int) -> Tensor:
    """(..., n·bands) player values → (..., n) per segment (sum over each segment's bands)."""
    return values.reshape(*values.shape[:-1], -1, bands).sum(-1)


def _extras(values: Tensor, bands: int, **more: Tensor) -> dict[str, Tensor]:
    out = {k: v.detach().cpu() for k, v in more.items()}
    if bands > 1:
        out["band_scores"] = values.reshape(-1, bands).cpu()
    return out


# ---------------------------------------------------------------------------------------------- occlusion
def occlusion(probe: Probe, segments: Segments, *, generator: torch.Generator, replacement: str = "silence",
              rest: str = "keep", readout: str = "prob", bands: int = 1, repeats: int = 8) -> SegmentAttribution:
    """Leave-one-out: the drop of the target score when each player is replaced."""
    draws = 1 if replacement == "silence" else repeats
    per_draw, alone = [], []
    for _ in range(draws):
        game = _game(probe, segments, replacement=replacement, rest=rest, readout=readout, bands=bands,
                     generator=generator)
        p = game.size
        full = torch.ones(1, p)
        drops = full - torch.eye(p)
        singles = torch.eye(p)
        v = game.value(torch.cat([full, torch.zeros(1, p), drops, singles]), stage="leave-one-out")
        per_draw.append(v[0] - v[2:2 + p])
        alone.append(v[2 + p:] - v[1])
    drops_t = torch.stack(per_draw)                        # (draws, players)
    seg = _fold_bands(drops_t, bands)
    scores = seg.mean(0)
    stderr = seg.std(0, unbiased=True) / math.sqrt(draws) if draws > 1 else torch.zeros_like(scores)
    return SegmentAttribution(scores, stderr, _extras(drops_t.mean(0), bands, alone=_fold_bands(
        torch.stack(alone).mean(0), bands), value_all=v[0], value_none=v[1]), {"evaluations": game.evaluations * draws})


# ---------------------------------------------------------------------------------------------- Shapley
def shapley_weights(n: int) -> Tensor:
    """(n,) float64: ``|S|!(n−|S|−1)!/n!`` for ``|S| = 0 … n−1``."""
    return torch.tensor([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)],
                        dtype=torch.float64)


def exact_shapley(values: Tensor, n: int) -> Tensor:
    """(2ⁿ,) values of the coalitions (bit i of the index = player i) → (n,) Shapley values (float64)."""
    idx = torch.arange(1 << n, device=values.device)
    sizes = torch.zeros_like(idx)
    for i in range(n):
        sizes += (idx >> i) & 1
    weights = shapley_weights(n).to(values.device)
    out = torch.empty(n, dtype=torch.float64, device=values.device)
    for i in range(n):
        without = idx[((idx >> i) & 1) == 0]
        out[i] = (weights[sizes[without]] * (values[without | (1 << i)] - values[without])).sum()
    return out


def all_coalitions(n: int) -> Tensor:
    """(2ⁿ, n) 0/1: row k holds the bits of k (player i ∈ coalition k ⇔ bit i set)."""
    idx = torch.arange(1 << n)
    return ((idx[:, None] >> torch.arange(n)[None, :]) & 1).to(torch.float32)


def permutation_shapley(value: Callable[[Tensor], Tensor], n: int, pairs: int, generator: torch.Generator
                        ) -> tuple[Tensor, Tensor, Tensor]:
    """Shapley values by antithetic permutation sampling.

    ``pairs`` permutations are drawn up front (``torch.randperm`` with ``generator``, one block whatever the
    chunking), each with its reverse. Every permutation's prefixes are scored in one batch; the marginal
    contributions of a permutation and its reverse are averaged into one sample per pair.

    Returns:
        ``(phi (n,), stderr (n,), samples (pairs, n))``, float64 on the CPU.
    """
    perms = torch.stack([torch.randperm(n, generator=generator, device=generator.device) for _ in range(pairs)]).cpu()
    perms = torch.cat([perms, perms.flip(1)])                              # (2·pairs, n): antithetic
    ranks = torch.argsort(perms, dim=1)                                    # position of each player
    steps = torch.arange(1, n)                                             # prefixes of size 1 … n−1
    prefixes = (ranks[:, None, :] < steps[None, :, None]).float()          # (2P, n−1, n)
    ends = torch.stack([torch.zeros(n), torch.ones(n)])
    v = value(torch.cat([ends, prefixes.reshape(-1, n)])).cpu()
    v_none, v_all, v_mid = v[0], v[1], v[2:].reshape(-1, n - 1)
    chain = torch.cat([v_none.expand(len(perms), 1), v_mid, v_all.expand(len(perms), 1)], dim=1)   # (2P, n+1)
    marginal = chain[:, 1:] - chain[:, :-1]                                # by position
    contrib = torch.gather(marginal, 1, ranks)                             # by player
    samples = 0.5 * (contrib[:pairs] + contrib[pairs:])
    phi = samples.mean(0)
    stderr = samples.std(0, unbiased=True) / math.sqrt(pairs) if pairs > 1 else torch.full_like(phi, float("nan"))
    return phi, stderr, samples


def shapley(probe: Probe, segments: Segments, *, generator: torch.Generator, replacement: str = "silence",
            rest: str = "keep", readout: str = "prob", bands: int = 1, exact_max: int = 10,
            permutations: int = 64) -> SegmentAttribution:
    """Shapley values of the players: exact for ``players ≤ exact_max``, else ``permutations`` antithetic
    pairs."""
    game = _game(probe, segments, replacement=replacement, rest=rest, readout=readout, bands=bands,
                 generator=generator)
    n = game.size
    if n <= exact_max:
        v = game.value(all_coalitions(n), stage="all coalitions").cpu()
        phi = exact_shapley(v, n)
        seg_phi, seg_se = _fold_bands(phi, bands), torch.zeros(len(segments), dtype=torch.float64)
        v_none, v_all, how = v[0], v[-1], "exact"
    else:
        phi, _, samples = permutation_shapley(lambda c: game.value(c, stage="permutations"), n, permutations,
                                              generator)
        seg_samples = _fold_bands(samples, bands)
        seg_phi = seg_samples.mean(0)
        seg_se = seg_samples.std(0, unbiased=True) / math.sqrt(permutations)
        ends = game.value(torch.stack([torch.zeros(n), torch.ones(n)])).cpu()
        v_none, v_all, how = ends[0], ends[1], "permutation"
    return SegmentAttribution(seg_phi, seg_se, _extras(phi, bands, value_all=v_all, value_none=v_none),
                              {"estimator": how, "evaluations": game.evaluations})


# ---------------------------------------------------------------------------------------------- summed map
def summed(probe: Probe, segments: Segments, *, generator: torch.Generator, explainer: str = "ig",
           domain: str = "time", settings: str = "") -> SegmentAttribution:
    """A fine-grained explainer's map (``explainer`` in ``domain``) summed within each segment: the map's
    display columns whose centre time falls in the span; its uncertainty combined as independent cells
    (root of the summed squares)."""
    from ..explainers import EXPLAINERS

    spec = EXPLAINERS.get(explainer)
    if not spec.supports(domain):
        raise ConfigError(f"{spec.title} does not work in the '{domain}' domain; choose one of {spec.domains}.")
    transform = get_transform(domain, probe.transform.sample_rate)
    fine = Probe(probe.model, transform, probe.x[0], target=probe.target, batch_size=probe._batch,
                 progress=probe.progress)
    result = spec.fn(fine, generator=generator, progress=probe.progress, **resolve(spec.params, _pairs(settings), owner=f"Explainer '{explainer}'"))
    length = probe.length
    sal = transform.to_image(result.saliency[None].double(), length=length)[0].sum(0)       # (T,)
    var = transform.to_image(result.uncertainty[None].double() ** 2, length=length)[0].sum(0)
    times = transform.axes(length).times.to(sal.device)
    inside = torch.stack([(times >= s) & (times < e) for s, e in zip(segments.start, segments.end)]).double()
    scores = (inside @ sal).cpu()
    stderr = (inside @ var).sqrt().cpu()
    return SegmentAttribution(scores, stderr, {"map_total": sal.sum().cpu()},
                              {"evaluations": fine.forward_passes})


def _pairs(text: str) -> dict[str, str]:
    """``"n_steps=32,baselines=zero"`` → ``{"n_steps": "32", "baselines": "zero"}``."""
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Map explainer settings are written NAME=VALUE separated by commas; got '{pair}'.")
        out[key.strip()] = value.strip()
    return out


def energy(probe: Probe, segments: Segments, *, generator: torch.Generator) -> SegmentAttribution:
    """Each segment's share of the clip's energy (Σx² in the span / Σx²); no model."""
    x = probe.x[0].double()
    masks = segments.masks(probe.transform.sample_rate, probe.length, device=x.device, dtype=torch.float64)
    e = masks @ (x ** 2)
    scores = (e / (x ** 2).sum().clamp(min=1e-30)).cpu()
    return SegmentAttribution(scores, torch.zeros_like(scores))


for _spec in (
    SegmentExplainerSpec("occlusion", "Occlusion (leave one segment out)", occlusion,
                         (_REPLACEMENT, _REST, _READOUT, _BANDS,
                          Param("repeats", 8, "draws of a random replacement (noise, background)", 1, 256)),
                         "Standard error of the drop over draws of a random replacement (0 for silence)."),
    SegmentExplainerSpec("shapley", "Shapley values of the segments", shapley,
                         (_REPLACEMENT, _REST, _READOUT, _BANDS,
                          Param("exact_max", 10, "exact over all 2^n coalitions up to this many players", 1, 14),
                          Param("permutations", 64, "antithetic permutation pairs beyond exact_max", 2, 4096,
                                log=True)),
                         "Standard error of the permutation estimate over antithetic pairs (0 when exact)."),
    SegmentExplainerSpec("summed", "Fine-grained map summed per segment", summed,
                         (Param("explainer", "ig", "the registered map explainer whose map is summed"),
                          Param("domain", "time", "the domain of that map"),
                          Param("settings", "", "that explainer's settings, NAME=VALUE separated by commas")),
                         "The map's own uncertainty, summed over the segment's cells as if independent."),
    SegmentExplainerSpec("energy", "Segment energy (reference, no model)", energy, (),
                         "None: the clip's energy in each segment.", needs_model=False),
):
    SEGMENT_EXPLAINERS.register(_spec.name, _spec)


def explain_segments(model, x: ArrayLike, segments: Segments, target: int | None = None, *, method: str = "shapley",
                     seed: int | None = 0, generator: torch.Generator | None = None,
                     progress: ProgressFn | None = None, batch_size: int | None = None,
                     **params: Any) -> SegmentExplanation:
    """Score every segment of ``x`` for ``model``'s class ``target`` with the segment method ``method``.

    Args:
        model: an :class:`~earmark.models.EarmarkModel`.
        x: (L,) waveform at the model's rate and length.
        segments: the spans (seconds); spans past the clip's end are cut or dropped.
        target: class index; ``None`` = the predicted class.
        method: a name in :data:`SEGMENT_EXPLAINERS` (``occlusion``, ``shapley``, ``summed``, ``energy``).
        seed / generator: the random draws (permutations, noise, background offset).
        **params: the method's declared settings.

    Returns:
        :class:`SegmentExplanation` (scores and standard errors on the CPU).

    Raises:
        ConfigError: unknown method or setting, a bad target or seed, a waveform that does not fit.
    """
    spec: SegmentExplainerSpec = SEGMENT_EXPLAINERS.get(method)
    settings = resolve(spec.params, params, owner=f"Segment explainer '{method}'")
    target, seed = check_target(target), check_seed(seed)
    rate = int(model.card.sample_rate)
    x = check_wave(x, model, get_transform("time", rate))
    segments = segments.within(x.numel() / rate)
    probe = Probe(model, get_transform("time", rate), x, target=target, batch_size=batch_size, progress=progress)
    if generator is None:
        generator = make_generator(seed, probe.device)
    started = time.perf_counter()
    result = spec.fn(probe, segments, generator=generator, **settings)
    scores, stderr = result.scores.detach().double().cpu(), result.stderr.detach().double().cpu()
    if not (torch.isfinite(scores).all() and torch.isfinite(stderr).all()):
        raise ConfigError(f"The {spec.title} scores are not finite; the model returned NaN or infinity.")
    return SegmentExplanation(
        segments=segments, scores=scores, stderr=stderr, target=probe.target, method=spec.name,
        params={**settings, **{k: v for k, v in result.resolved.items() if k != "evaluations"}}, seed=seed,
        extras=result.extras,
        meta={"seconds": time.perf_counter() - started, "evaluations": int(result.resolved.get("evaluations", 0)),
              "predicted": int(probe.logits.argmax()), "probabilities": probe.probs.detach().cpu().tolist(),
              "uncertainty": spec.uncertainty},
    )


__all__ = ["SEGMENT_EXPLAINERS", "SegmentAttribution", "SegmentExplainerSpec", "SegmentExplanation",
           "all_coalitions", "exact_shapley", "explain_segments", "occlusion", "permutation_shapley", "shapley",
           "shapley_weights", "summed"]
