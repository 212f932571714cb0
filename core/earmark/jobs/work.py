"""What the jobs run: the explanation and the listening of a :class:`~earmark.jobs.JobSpec`, with the job's
callbacks (progress, cancellation, partial estimates) wired to :mod:`earmark.explainers` and
:mod:`earmark.workflow`."""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import Tensor

from ..device import model_device
from ..errors import ConfigError
from ..explainers import EXPLAINERS, explain
from ..explanation import Explanation
from ..workflow import listening
from .interrupt import interruptible
from .job import JobContext
from .spec import JobSpec


def _cpu(exp: Explanation) -> Explanation:
    """The explanation with every tensor on the CPU (cached results free the device)."""
    return dataclasses.replace(exp, saliency=exp.saliency.detach().cpu(), uncertainty=exp.uncertainty.detach().cpu(),
                               extras={k: v.detach().cpu() for k, v in exp.extras.items()})


def explanation_work(spec: JobSpec, model, x: Tensor, transform, *, batch_size: int | None = None
                     ) -> Callable[[JobContext], Explanation]:
    """The work of an explanation job: :func:`earmark.explainers.explain` with the job's callbacks.

    ``progress`` (per chunk: progress, cancellation, yielding), ``first_look`` (IG's early map),
    ``on_partial`` (estimates of sampling and mask methods as they go) and the tape (the model's answers,
    kept by a stopped job for Continue) are the job's. The result's tensors are moved to the
    CPU and ``meta["job"]`` holds the spec's provenance.

    Args:
        spec: an ``"explanation"`` spec.  model: the loaded model.  x: (L,) waveform at the model's rate
        and length (the clip ``spec.clip_hash`` names).  transform: the spec's transform, built.
    """
    if spec.kind != "explanation":
        raise ConfigError(f"explanation_work runs explanation jobs, not '{spec.kind}'.")
    meaning = EXPLAINERS.get(spec.explainer).uncertainty

    def predicted() -> int:  # one forward pass, only when a partial estimate is published
        with torch.no_grad():
            return int(model(x.reshape(1, -1).to(model_device(model), torch.float32))[0].argmax())

    def work(ctx: JobContext) -> Explanation:
        ctx.job.uncertainty_meaning = meaning
        ctx.target_fn = predicted
        with interruptible(model, ctx.check):   # Stop lands between two layers, not only between chunks
            exp = explain(model, x, transform, spec.target, method=spec.explainer, seed=spec.seed,
                          progress=ctx.progress, batch_size=batch_size, first_look=ctx.first_look,
                          on_partial=ctx.partial, contrast=dict(spec.options).get("contrast"), tape=ctx.job.tape,
                          **dict(spec.eparams))   # contrast: "A rather than B" (an option of the explanation)
        ctx.check()
        exp = _cpu(exp)
        return dataclasses.replace(exp, meta={**exp.meta, "job": spec.provenance()})

    return work


def listening_work(spec: JobSpec, model, x: Tensor, transform, saliency: Tensor
                   ) -> Callable[[JobContext], dict[str, tuple[Tensor, Tensor]]]:
    """The work of a listening job: :func:`earmark.workflow.listening` with the spec's ``fraction`` and
    ``match``; the result is ``{version: (wave (L,), probabilities (C,))}`` by the card's activation."""
    if spec.kind != "listening":
        raise ConfigError(f"listening_work runs listening jobs, not '{spec.kind}'.")
    options = dict(spec.options)

    def work(ctx: JobContext) -> dict[str, tuple[Tensor, Tensor]]:
        ctx.progress(0.0, "rendering the masked audio")
        out = listening(model, transform, x, saliency, float(options["fraction"]),
                        match=bool(options.get("match", True)))
        ctx.progress(1.0, "predicting")
        return out

    return work


__all__ = ["explanation_work", "listening_work"]
