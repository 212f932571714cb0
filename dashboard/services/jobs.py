"""Jobs: every slow computation (explanation, listening, faithfulness) runs on the server's worker pool
(:mod:`earmark.jobs`); each session remembers its own jobs in its state."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import streamlit as st
import torch

from earmark.errors import EarmarkError
from earmark.metrics import METRICS, MetricOptions

from .common import ProgressFn, Settings, to_numpy
from .models import _model_and_transform


@st.cache_resource(show_spinner=False)
def job_service():
    """The one :class:`earmark.jobs.JobService` of this server (shared, thread-safe; settings from
    ``EARMARK_WORKERS``, ``EARMARK_MAX_MODEL_PASSES``, ``EARMARK_MAX_QUEUE``...)."""
    from earmark.jobs import JobService, JobSettings
    return JobService(JobSettings.from_env())


#: Jobs a session remembers (its latest requests; finished results stay in the server's cache).
SESSION_JOBS = 16


def session_id() -> str:
    """This browser session's id (fair order and per-session limits in the queue)."""
    if "_session_id" not in st.session_state:
        import uuid
        st.session_state["_session_id"] = uuid.uuid4().hex
    return st.session_state["_session_id"]


def job_spec(settings: Settings, kind: str = "explanation", **options):
    """The :class:`earmark.jobs.JobSpec` of ``settings`` (raises ConfigError for a bad setting)."""
    from earmark.jobs import JobSpec
    spec = JobSpec.create(clip_hash=settings.clip_hash, model=settings.model, transform=settings.transform,
                          tparams=dict(settings.tparams), explainer=settings.explainer,
                          eparams=dict(settings.eparams), target=settings.target, seed=settings.seed)
    return spec if kind == "explanation" else spec.derived(kind, **options)


def _session_jobs() -> dict:
    return st.session_state.setdefault("_jobs", {})


def _remember(job):
    jobs = _session_jobs()
    jobs.pop(job.spec, None)
    jobs[job.spec] = job
    while len(jobs) > SESSION_JOBS:
        oldest = next((k for k, j in jobs.items() if j.finished), next(iter(jobs)))
        jobs.pop(oldest)
    return job


def submit(spec, work: Callable):
    """Queue ``work`` as this session's job for ``spec`` (or attach to an identical one); remembered in
    the session so that reruns, other pages and widget changes find it again."""
    return _remember(job_service().submit(spec, work, session=session_id()))


def session_job(spec):
    """This session's job for ``spec`` (any status), or ``None``."""
    return _session_jobs().get(spec)


def cancel(job) -> None:
    job.cancel(session_id())


def stop(job) -> None:
    """Stop ``job`` and keep its last estimate as a partial result (and its model answers, for Continue)."""
    _remember(job.stop(session_id()))   # a shared job runs on for the others; this session keeps a stopped copy


def pin(job, pinned: bool = True) -> None:
    """Keep ``job`` running at full priority when this page shows something else."""
    job_service().pin(job, pinned)


def show_jobs(*jobs) -> None:
    """The explanation jobs this session's page shows now (none: a finished result or nothing). The
    session's other unfinished explanation jobs yield to them and are cancelled after the server's grace
    period (``EARMARK_ABANDON_GRACE_S``) unless pinned."""
    job_service().show(session_id(), [j for j in jobs if j is not None], kind="explanation")


def _spec_or_none(settings: Settings, kind: str = "explanation", **options):
    try:
        return job_spec(settings, kind, **options)
    except EarmarkError:
        return None


def has_result(settings: Settings) -> bool:
    return explanation(settings) is not None


def explanation(settings: Settings):
    """The final explanation for ``settings``: from the server's cache (any session computed it) or this
    session's finished job; ``None`` if there is none yet."""
    spec = _spec_or_none(settings)
    if spec is None:
        return None
    hit = job_service().result(spec)
    if hit is not None:
        return hit
    job = session_job(spec)
    # a stopped job's last estimate is a result too, labelled partial (meta["stopped"])
    return job.result if job is not None and job.status in ("done", "stopped") else None


def explanation_job(settings: Settings):
    """This session's job for the explanation of ``settings`` (queued, running or ended), or ``None``."""
    spec = _spec_or_none(settings)
    return None if spec is None else session_job(spec)


def submit_explanation(settings: Settings, wave: np.ndarray):
    """Queue the explanation (the slow part) on the worker pool; returns the :class:`earmark.jobs.Job`.

    Raises:
        EarmarkError: a bad setting, a request above ``max_model_passes``, or a full queue.
    """
    from earmark.jobs import explanation_work

    spec = job_spec(settings)
    model, transform = _model_and_transform(settings)
    work = explanation_work(spec, model, torch.as_tensor(wave, dtype=torch.float32), transform)
    stopped = session_job(spec)
    if stopped is not None and stopped.status == "stopped":   # Continue (or Explain again): from its tape
        return _remember(job_service().continue_job(stopped, work, session=session_id()))
    return submit(spec, work)


def partial_key(exp) -> dict:
    """``{"partial": masks or steps done}`` for a stopped run's partial result, else ``{}``: an option
    that keeps the listening and faithfulness of a partial map apart from the final map's."""
    return {"partial": int(exp.meta.get("done") or 0)} if exp.meta.get("partial") else {}


def job_result(job, wait: float = 0.0):
    """``job.result`` once it is done (waiting up to ``wait`` s), else ``None``.

    Raises:
        EarmarkError: the job failed or was cancelled (its sentence).
    """
    if wait > 0 and not job.finished:
        job.wait(wait)
    if job.status == "done":
        return job.result
    if job.finished:
        raise EarmarkError(job.error or f"The computation ended as {job.status}.")
    return None


# ---- listening -----------------------------------------------------------------------------------

def listen_job(settings: Settings, wave: np.ndarray, exp, fraction: float, match: bool = True):
    """Queue the listening versions of ``exp``; the job's result is ``{kind: (wave (L,), probabilities (C,))}``
    for original / keep / remove / soft, the probabilities by the model card's activation
    (:func:`earmark.workflow.listening`, the same as ``earmark explain``)."""
    from earmark.jobs import listening_work

    model, transform = _model_and_transform(settings)
    spec = job_spec(settings, "listening", fraction=float(fraction), match=bool(match), **partial_key(exp))
    heard = listening_work(spec, model, torch.as_tensor(wave, dtype=torch.float32), transform, exp.saliency)

    def work(ctx) -> dict:
        return {kind: (to_numpy(w).reshape(-1), to_numpy(p)) for kind, (w, p) in heard(ctx).items()}

    return submit(spec, work)


# ---- faithfulness --------------------------------------------------------------------------------

#: The metrics shown beside the curves, in this order; labels and directions come from their MetricSpec.
CURVE_METRICS = ("insertion_auc", "deletion_auc", "faithfulness", "I", "D", "RI", "RD")
METRIC_OPTIONS = MetricOptions()


def _curve_scores(model, transform, settings: Settings, wave: np.ndarray, saliency, target: int, steps: int,
                  progress: ProgressFn | None = None) -> dict:
    """Deletion / insertion curves and the scores built on them for one map (see :func:`faithfulness_job`),
    with the metrics' titles as keys."""
    from earmark.workflow import faithfulness

    options = dataclasses.replace(METRIC_OPTIONS, steps=steps)
    # the random rankings are drawn from the explanation's seed itself
    out = faithfulness(model, transform, torch.as_tensor(wave, dtype=torch.float32), saliency, target,
                       seed=settings.seed, metrics=CURVE_METRICS, options=options, progress=progress)
    return {"fractions": to_numpy(out["fractions"]), "deletion": to_numpy(out["deletion"]),
            "insertion": to_numpy(out["insertion"]),
            "scores": {METRICS.get(m).title(options): v for m, v in out["scores"].items()}}


def faithfulness_job(settings: Settings, wave: np.ndarray, exp, steps: int = 20):
    """Queue the deletion / insertion curves and scores of ``exp`` (``earmark.metrics.curves``); the job's
    result is ``{"fractions": (K,), "deletion": (K,), "insertion": (K,), "scores": {name: float}}``."""
    saliency, target = exp.saliency, exp.target
    model, transform = _model_and_transform(settings)
    return submit(job_spec(settings, "faithfulness", steps=int(steps), **partial_key(exp)),
                  lambda ctx: _curve_scores(model, transform, settings, wave, saliency, target, steps,
                                            progress=ctx.progress))


def energy_reference_job(settings: Settings, wave: np.ndarray, target: int, steps: int = 20):
    """The same curves and scores for the model-free ``energy`` map of the clip in the same domain.

    Keyed on the clip, model, transform, target and seed, not on the explainer (the map ignores it).
    """
    ref = dataclasses.replace(settings, explainer="energy", eparams=())
    model, transform = _model_and_transform(ref)

    def work(ctx) -> dict:
        from earmark.explainers import explain as core_explain

        e = core_explain(model, torch.as_tensor(wave, dtype=torch.float32), transform, target, method="energy")
        return _curve_scores(model, transform, ref, wave, e.saliency, target, steps, progress=ctx.progress)

    return submit(job_spec(ref, "faithfulness", steps=int(steps), target=int(target)), work)
