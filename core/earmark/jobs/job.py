"""One job: its state (status, progress, partial estimate, result), the callbacks its work gets, and how it
runs to its end on a thread (:func:`run_foreground` for the CLI; the pool in :mod:`earmark.jobs.service`)."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from ..errors import EarmarkError
from ..explanation import Explanation
from ..tape import Tape
from .cost import estimate_passes, work_units
from .spec import JobSpec

if TYPE_CHECKING:
    from .service import JobService

log = logging.getLogger(__name__)

#: ``queued → running → done | failed | cancelled | stopped`` (a queued job can be cancelled or stopped before
#: it starts). ``stopped``: ended by Stop, keeping its last estimate as ``result`` (or ``None`` before the first
#: one) and its tape, so that :meth:`JobService.continue_job <earmark.jobs.JobService.continue_job>` can finish it.
STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled", "stopped")
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled", "stopped"})


class JobError(EarmarkError):
    """A request the job service cannot take (see the subclasses); the message says what to do."""


class BudgetExceeded(JobError):
    """The request needs more model passes than the server's ``max_model_passes`` allows."""


class QueueFull(JobError):
    """The server's queue, or this session's share of it, is full."""


class JobCancelled(JobError):
    """Raised inside a running job when it was cancelled (ends the work at the next chunk)."""



_ids = itertools.count(1)

class Job:
    """One computation: its state, read by any thread; changed only by the thread that runs it.

    Attributes:
        id: unique number.  spec: the :class:`JobSpec`.  passes: estimated model passes.
        status: one of :data:`STATUSES`.  progress: fraction in [0, 1].  stage: what runs now, for a person.
        done, total: masks / steps so far and in all (from ``on_partial``, else from the progress
            fraction and the spec's budget; ``None`` when unknown).  unit: ``"masks"``, ``"steps"``...
        convergence: the explainer's last convergence figure (``None`` until it reports one).
        result: the final result (``status == "done"``).  error: the sentence for a failed job.
        sessions: the sessions attached to it (the first one submitted it).
        version: increases with every update (a poller redraws only when it changed).
        created, started, ended, first_at: ``time.monotonic()`` stamps (``None`` until reached); ``first_at``
            is when the first estimate arrived.
        tape: the model's answers so far (:class:`~earmark.tape.Tape`); a continuation starts from the
            stopped job's tape. Dropped when the job ends any other way than ``stopped``.
        pinned: the job keeps running at full priority when nobody watches it (see
            :meth:`JobService.show <earmark.jobs.JobService.show>`).
        abandoned_at: when every session attached to it turned to something else (``None`` while watched).
    """

    def __init__(self, spec: JobSpec, work: Callable[["JobContext"], Any] | None, *, session: str = "default",
                 passes: int = 0, service: "JobService | None" = None, tape: Tape | None = None):
        self.id = next(_ids)
        self.spec, self.passes = spec, int(passes)
        self.status = "queued"
        self.progress, self.stage = 0.0, "waiting"
        units = work_units(spec)
        self.total, self.unit = (units if units else (None, ""))
        self.done: int | None = None
        self.convergence: float | None = None
        self.result: Any = None
        self.error: str | None = None
        self.owner = session
        self.sessions: set[str] = {session}
        self.version = 0
        self.created, self.started, self.ended = time.monotonic(), None, None
        self.first_at: float | None = None   # when the first estimate (or IG's first look) was published
        self.target: int | None = spec.target
        self.uncertainty_meaning = ""
        self.tape: Tape | None = Tape() if tape is None else tape
        self.pinned = False
        self.abandoned_at: float | None = None
        self.away: set[str] = set()        # sessions that show something else now
        self._paused_slot = False          # paused for a watched job: its compute slot is free
        self._work = work
        self._service = service
        self._partial_raw: tuple[Tensor, int | None, int | None, float | None, float] | None = None
        self._partial_exp: tuple[float, Explanation] | None = None
        self._cancel = threading.Event()
        self._cond = threading.Condition()
        self._observers: list[Callable[[Job], None]] = []

    # ---- reading -------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds since it started running (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    @property
    def partial(self) -> Explanation | None:
        """The latest estimate as an :class:`Explanation` (``meta["partial"] = True``, zero uncertainty).

        ``meta`` holds ``done``, ``total``, ``convergence`` and ``seconds`` since the job started. ``None``
        until the explainer publishes one (``on_partial``, or IG's ``first_look``).
        """
        raw = self._partial_raw
        if raw is None:
            return None
        saliency, done, total, conv, stamp = raw
        cached = self._partial_exp
        if cached is not None and cached[0] == stamp:
            return cached[1]
        spec = self.spec
        exp = Explanation(
            saliency=saliency, uncertainty=torch.zeros_like(saliency),
            target=-1 if self.target is None else int(self.target), method=spec.explainer, transform=spec.transform,
            uncertainty_meaning="not known yet: this is a partial estimate", params=dict(spec.eparams),
            seed=spec.seed,
            meta={"partial": True, "done": done, "total": total, "convergence": conv, "unit": self.unit,
                  "seconds": stamp - (self.started or stamp)})
        self._partial_exp = (stamp, exp)
        return exp

    @property
    def latest(self) -> Any:
        """The final result when there is one, else the partial estimate (or ``None``)."""
        return self.result if self.status == "done" else self.partial

    def position(self) -> int | None:
        """1 = the next job to start; ``None`` when it is not waiting."""
        if self.status != "queued" or self._service is None:
            return None
        return self._service.position(self)

    def eta(self) -> float | None:
        """Estimated seconds until the final result (``None`` when there is nothing to go on)."""
        if self.finished:
            return 0.0
        if self._service is not None:
            return self._service.eta(self)
        return _remaining(self, None)

    def wait(self, timeout: float | None = None, *, since: int | None = None) -> bool:
        """Block until the job finished (or, with ``since=version``, until anything changed).

        Returns:
            ``True`` if that happened within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self.finished and (since is None or self.version <= since):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def cancel(self, session: str | None = None) -> None:
        """Stop watching this job from ``session``; when nobody is left (or ``session`` is ``None``),
        cancel it: a queued job is dropped, a running one stops at its next chunk."""
        if self._service is not None:
            self._service.cancel(self, session)
        else:
            self._request_cancel()

    def stop(self, session: str | None = None) -> "Job":
        """End the job now and keep its work: the status reads ``stopped`` at once, ``result`` is the last
        estimate labelled partial (:meth:`stopped_result`; ``None`` before the first one), and the tape keeps
        the model's answers so that a continuation finishes with the uninterrupted run's map. The running
        thread leaves within a layer of the model (:mod:`earmark.jobs.interrupt`); every completed model call
        is on the tape. With a service and other sessions still attached, the job runs on for them and
        ``session`` gets a stopped copy (see :meth:`JobService.stop <earmark.jobs.JobService.stop>`).

        Returns:
            The stopped job that holds the partial result."""
        if self._service is not None:
            return self._service.stop(self, session)
        self._stop_now()
        return self

    def stopped_result(self) -> Explanation | None:
        """The latest estimate as a result of its own: :attr:`partial` with ``meta["stopped"]``, the masks or
        steps used (``budget_used`` / ``budget_total`` / ``budget_unit``) and the job's provenance."""
        exp = self.partial
        if exp is None:
            return None
        meta = dict(exp.meta)
        done, total = meta.get("done"), meta.get("total")
        meta.update(stopped=True, job=self.spec.provenance(), uncertainty="not computed: the run was stopped")
        if done is not None and total:
            meta.update(budget_used=int(done), budget_total=int(total), budget_unit=self.unit)
        return dataclasses.replace(exp, meta=meta, uncertainty_meaning=(
            f"not computed: stopped after {done:,} of {total:,} {self.unit or 'units'}" if done is not None and total
            else "not computed: the run was stopped"))

    def add_observer(self, fn: Callable[["Job"], None]) -> None:
        """``fn(job)`` is called (on the running thread) after every update."""
        self._observers.append(fn)

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.spec.describe()}, {self.status}, {self.progress:.0%})"

    # ---- changing (the service and the running thread) ------------------------------------------
    def _touch(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()
        for fn in self._observers:
            fn(self)

    def _request_cancel(self) -> None:
        self._cancel.set()
        self._touch()

    def _stop_now(self) -> None:
        with self._cond:      # re-entrant: _set_status notifies under the same lock
            if self.finished:
                return
            self._cancel.set()
            self._set_status("stopped", result=self.stopped_result(), error=_ended_message(self, "Stopped"))

    def _set_status(self, status: str, *, error: str | None = None, result: Any = None) -> None:
        if status == "running":
            self.started = time.monotonic()
        if status in FINISHED:
            self.ended = time.monotonic()
        if status == "done":
            self.result, self.progress = result, 1.0
            if self.total is not None and self._partial_raw is None:
                self.done = self.total  # with estimates, ``done`` is what the last one said (stop="auto")
        if status == "stopped":
            self.result = result
        elif status in FINISHED:
            self.tape = None            # only a stopped job is continued: free the answers
        self.error = error
        self.status = status
        self._touch()


class JobContext:
    """What the work function of a job gets: callbacks that report, publish and stop it.

    ``progress``, ``partial`` and ``first_look`` raise :class:`JobCancelled` once the job was cancelled,
    which ends the work at the next chunk.
    """

    def __init__(self, job: Job):
        self.job = job
        #: ``() -> int``: the explained class, asked for the first time a partial estimate needs it.
        self.target_fn: Callable[[], int] | None = None

    @property
    def spec(self) -> JobSpec:
        return self.job.spec

    def check(self) -> None:
        """Raise :class:`JobCancelled` if the job was cancelled."""
        if self.job.cancel_requested:
            raise JobCancelled("Cancelled.")

    def progress(self, fraction: float, stage: str = "") -> None:
        """``progress(fraction, stage)``, the probe's callback (once per chunk): also where an abandoned job
        yields to the one on screen (:meth:`JobService.show <earmark.jobs.JobService.show>`)."""
        self.check()
        job = self.job
        if job._service is not None and job.abandoned_at is not None:
            job._service._yield(job)
            self.check()
        job.progress = min(max(float(fraction), 0.0), 1.0)
        job.stage = stage or job.stage
        if job.total is not None and job._partial_raw is None:
            job.done = int(round(job.progress * job.total))
        job._touch()

    def partial(self, saliency: Tensor, done: int, total: int, convergence: float | None = None) -> None:
        """``on_partial(saliency, done, total, convergence)``: the current estimate (*M)."""
        self.check()
        job = self.job
        self._resolve_target()
        job.done, job.total = int(done), int(total)
        if convergence is not None:
            job.convergence = float(convergence)
        job._partial_raw = (saliency.detach().to("cpu", copy=True), int(done), int(total),
                            None if convergence is None else float(convergence), time.monotonic())
        job.first_at = job.first_at or job._partial_raw[4]
        job._touch()

    def first_look(self, saliency: Tensor) -> None:
        """IG's early map (already the final saliency): published as the partial estimate."""
        self.check()
        job = self.job
        self._resolve_target()
        job._partial_raw = (saliency.detach().to("cpu", copy=True), job.done, job.total, None, time.monotonic())
        job.first_at = job.first_at or job._partial_raw[4]
        job._touch()

    def _resolve_target(self) -> None:
        if self.job.target is None and self.target_fn is not None:
            self.job.target = int(self.target_fn())


def _execute(job: Job, store: Callable[[Job, Any], None] | None = None) -> None:
    """Run ``job`` on this thread to its end; every outcome is recorded on the job, nothing is raised
    except ``KeyboardInterrupt``/``SystemExit``. ``store(job, result)`` runs before the job reads as done
    (so whoever waits on it finds the result cached)."""
    if job.cancel_requested:
        if not job.finished:
            job._set_status("cancelled", error="Cancelled before it started.")
        return
    job._set_status("running")
    try:
        result = job._work(JobContext(job))
    except JobCancelled:
        if job.status != "stopped":     # Stop already recorded its result; an abandoned job says why it ended
            job._set_status("cancelled", error=job.error or _ended_message(job, "Cancelled"))
    except EarmarkError as exc:
        if job.status != "stopped":
            job._set_status("failed", error=str(exc))
    except Exception as exc:  # a bug, not the person's mistake: keep the worker alive, say what happened
        log.exception("job %s failed", job)
        if job.status != "stopped":
            job._set_status("failed", error=f"The computation failed ({type(exc).__name__}: {exc}).")
    else:
        if store is not None and (not job.cancel_requested or job.status == "stopped"):
            store(job, result)         # the final result (even when Stop came during the last chunk)
        if not job.cancel_requested:
            job._set_status("done", result=result)
        elif job.status != "stopped":
            job._set_status("cancelled", error=_ended_message(job, "Cancelled"))


def _ended_message(job: Job, what: str) -> str:
    if job.done is not None and job.total:
        return f"{what} after {job.done:,} of {job.total:,} {job.unit or 'units'}."
    return f"{what} at {job.progress:.0%}."


def _remaining(job: Job, estimate: float | None) -> float | None:
    """Seconds left for a running job: from its progress, else from an estimate of its duration."""
    if job.status == "running":
        f, spent = job.progress, job.elapsed
        if f >= 0.02 and spent > 0.2:
            return spent * (1 - f) / f
        if estimate is not None:
            return max(estimate - spent, 0.0)
        return None
    return estimate


def run_foreground(spec: JobSpec, work: Callable[[JobContext], Any], *,
                   observer: Callable[[Job], None] | None = None) -> Any:
    """Run a job on this thread (the CLI): the same job as a worker runs, with an optional observer.

    Returns:
        The result.

    Raises:
        EarmarkError: the job failed with a message for a person (or was cancelled).
    """
    job = Job(spec, work, passes=estimate_passes(spec))
    if observer is not None:
        job.add_observer(observer)
    _execute(job)
    if job.status != "done":
        raise JobError(job.error or f"The job ended as {job.status}.")
    return job.result



__all__ = ["BudgetExceeded", "FINISHED", "Job", "JobCancelled", "JobContext", "JobError", "QueueFull", "STATUSES",
           "run_foreground"]
