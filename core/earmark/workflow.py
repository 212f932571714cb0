"""One workflow for a clip: explanation → listening versions → the model's answer on each → faithfulness.

``earmark explain``, the dashboard and the job workers call these functions, so that the CLI and the app give
the same answers: every probability here goes through the model card's activation (softmax for one class per
clip, a sigmoid per class for a multi-label model), never a hard-coded softmax. Provenance is
:func:`earmark.command.provenance` (the same JSON for the CLI's ``explanation.json`` and the app's export).

* :func:`answers`: (N, L) waveforms → (N, C) probabilities by the card's activation.
* :func:`listening`: the four listening versions of an explanation (original, keep, remove, soft) and the
  model's answer on each.
* :func:`faithfulness`: deletion / insertion curves of a map and the scores built on them.
* :func:`evaluate_one`: one unit of ``earmark evaluate`` (explain a clip's true class, score the map), the
  same call in every engine (:mod:`earmark.engines`).

The job wrappers (progress, cancellation, caching by :class:`~earmark.jobs.JobSpec`) are in
:mod:`earmark.jobs`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from .device import make_generator, model_device
from .explainers import explain
from .metrics import MetricContext, MetricOptions, compute_metrics
from .metrics import curves as metric_curves
from .outputs import activation
from .probe import Probe, ProgressFn
from .sonify import listen
from .transforms import Transform

def probabilities(model, logits: Tensor) -> Tensor:
    """(..., C) logits → probabilities by ``model``'s card (softmax, or sigmoid when multi-label)."""
    card = getattr(model, "card", None)
    return activation(logits, multi_label=bool(getattr(card, "multi_label", False)))


def answers(model, waves: Tensor) -> Tensor:
    """The model's probabilities (N, C) on (N, L) waveforms, on the model's device, by the card's activation."""
    device = model_device(model)
    with torch.no_grad():
        return probabilities(model, model(waves.to(device, torch.float32)))


def listening(model, transform: Transform, x: Tensor, saliency: Tensor, fraction: float, *,
              match: bool = True) -> dict[str, tuple[Tensor, Tensor]]:
    """The listening versions of an explanation and the model's answer on each.

    Args:
        model: the model.  transform: the explanation's domain.  x: (L,) the clip as the model hears it.
        saliency: (*M) the map.  fraction: share of cells kept / removed, in (0, 1].
        match: match the loudness of keep / remove to the original (see :func:`earmark.sonify.listen`).

    Returns:
        ``{"original" | "keep" | "remove" | "soft": (wave (L,), probabilities (C,))}`` on the model's device.
    """
    device = model_device(model)
    versions = listen(transform, x.to(device), saliency.to(device), fraction, match=match)
    probs = answers(model, torch.stack([w.reshape(-1) for w in versions.values()]))
    return {name: (w.reshape(-1), p) for (name, w), p in zip(versions.items(), probs)}


def faithfulness(model, transform: Transform, x: Tensor, saliency: Tensor, target: int, *, seed: int | None,
                 metrics: Sequence[str], options=None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Deletion / insertion curves of one map and the scores ``metrics`` built on them.

    The random rankings of RI / RD are drawn from ``seed`` (the explanation's).

    Returns:
        ``{"fractions": (K,), "deletion": (K,), "insertion": (K,)`` (tensors), ``"scores": {metric: float}}``.
    """
    options = options or MetricOptions()
    probe = Probe(model, transform, x, target=target, progress=progress)
    sal = saliency.to(probe.device)
    ctx = MetricContext(probe, sal, seed=seed, options=options)
    c = ctx.curves()
    ctx.cache["single_point"] = metric_curves.single_point(probe, sal, fraction=options.fraction,
                                                           generator=make_generator(seed, probe.device))
    scores = compute_metrics(list(metrics), ctx)
    return {"fractions": c.fractions, "deletion": c.deletion, "insertion": c.insertion,
            "scores": {k: float(v) for k, v in scores.items()}}


def evaluate_one(model, wave: torch.Tensor, label: int, transform, explainer: str, params: Mapping[str, Any], *,
                 metrics: Sequence[str], seed: int, options: MetricOptions = MetricOptions(),
                 true_mask: torch.Tensor | None = None, cell_scorer: Callable[[torch.Tensor], float] | None = None,
                 batch_size: int | None = None) -> dict[str, Any]:
    """Explain ``label`` on one clip in one domain and score the map.

    Args:
        model: the classifier.  wave: (L,) clip at the model's rate and length.  label: its true class.
        transform: the domain.  explainer: registered name.  params: its settings.
        metrics: metric names.  seed: seeds the explainer and every metric's random draws.
        true_mask: (*M) ground truth (synthetic tasks) for localisation.
        cell_scorer: ``score(saliency)`` on a task's own cells (time–frequency task), for localisation.

    Returns:
        A JSON-ready row: target, predicted, cost, every metric, and the curves (lists).
    """
    exp = explain(model, wave, transform, int(label), method=explainer, seed=seed, batch_size=batch_size, **params)
    probe = Probe(model, transform, wave, target=int(label), batch_size=batch_size)

    def reexplain(other):
        return explain(other, wave, transform, int(label), method=explainer, seed=seed,
                       batch_size=batch_size, **params).saliency

    ctx = MetricContext(probe, exp.saliency, seed=seed, options=options, true_mask=true_mask, reexplain=reexplain,
                        cell_scorer=cell_scorer)
    values = compute_metrics(list(metrics), ctx)
    row: dict[str, Any] = {
        "target": int(label), "predicted": int(exp.meta["predicted"]),
        "correct": int(exp.meta["predicted"]) == int(label),
        "seconds": round(float(exp.meta["seconds"]), 6),
        "forward_passes": int(exp.meta["forward_passes"]), "backward_passes": int(exp.meta["backward_passes"]),
        **values,
    }
    if (check := exp.completeness()) is not None:                 # IG: does the map add up to Δf?
        row["completeness_gap"] = check["gap"]
        row["completeness_relative"] = check["relative_gap"]
    if "curves" in ctx.cache:
        c = ctx.cache["curves"]
        row["curve_fractions"] = c.fractions.tolist()
        row["deletion_curve"] = c.deletion.tolist()
        row["insertion_curve"] = c.insertion.tolist()
    if "randomisation" in ctx.cache:
        r = ctx.cache["randomisation"]
        row["randomisation_layers"] = list(r.layers)
        row["randomisation_curve"] = r.correlations.tolist()
    return row


__all__ = ["answers", "evaluate_one", "faithfulness", "listening", "probabilities"]
