"""The server's worker pool: a fair, bounded queue, merging of identical specs, a result cache, a cap on model
passes per request, and its settings from the environment."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from ..cost import check_time
from ..errors import ConfigError
from ..explanation import Explanation
from ..tape import Tape
from ..threads import ThreadBudget, apply_thread_budget
from .cache import ResultCache
from .cost import budget_params, estimate_passes
from .job import (BudgetExceeded, Job, JobCancelled, JobContext, JobError, QueueFull, _ended_message, _execute,
                  _remaining)
from .spec import JobSpec

# ---- the pool --------------------------------------------------------------------------------------

def _env_int(env: Mapping[str, str], name: str, default: int, low: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number; got {raw!r}.") from None
    if value < low:
        raise ConfigError(f"{name} must be at least {low}; got {value}.")
    return value


@dataclass(frozen=True)
class JobSettings:
    """The server's settings for jobs (environment variables in brackets).

    Attributes:
        workers: worker threads, each running at most one job (``EARMARK_WORKERS``).
        max_queue: jobs waiting, over all sessions (``EARMARK_MAX_QUEUE``).
        max_per_session: jobs waiting or running per session (``EARMARK_MAX_SESSION_JOBS``).
        max_model_passes: model passes one request may ask for (``EARMARK_MAX_MODEL_PASSES``).
        cache_entries, cache_bytes: bounds of the result cache (``EARMARK_RESULT_CACHE_MB`` for bytes).
        abandon_grace: seconds an abandoned job (nobody shows it any more, not pinned) is kept, paused while
            a watched job waits or runs, before it is cancelled (``EARMARK_ABANDON_GRACE_S``).
    """

    workers: int = 2
    max_queue: int = 64
    max_per_session: int = 8
    max_model_passes: int = 30_000
    cache_entries: int = 256
    cache_bytes: int = 512 * 2 ** 20
    abandon_grace: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "JobSettings":
        """Defaults overridden by the ``EARMARK_*`` environment variables.

        Raises:
            ConfigError: a variable that is not a whole number in range.
        """
        env = os.environ if env is None else env
        d = cls()
        return cls(workers=_env_int(env, "EARMARK_WORKERS", d.workers, 1),
                   max_queue=_env_int(env, "EARMARK_MAX_QUEUE", d.max_queue, 1),
                   max_per_session=_env_int(env, "EARMARK_MAX_SESSION_JOBS", d.max_per_session, 1),
                   max_model_passes=_env_int(env, "EARMARK_MAX_MODEL_PASSES", d.max_model_passes, 1),
                   cache_entries=d.cache_entries,
                   cache_bytes=_env_int(env, "EARMARK_RESULT_CACHE_MB", d.cache_bytes // 2 ** 20, 1) * 2 ** 20,
                   abandon_grace=float(_env_int(env, "EARMARK_ABANDON_GRACE_S", int(d.abandon_grace), 0)))


class JobService:
    """A worker pool with a fair, bounded queue, merging of identical specs and a result cache.

    Thread-safe: one instance serves every session of a server.

    Args:
        settings: :class:`JobSettings` (default: :meth:`JobSettings.from_env`).
        start: start the worker threads now (tests may start them later with :meth:`start`).

    Example:
        >>> service = JobService(JobSettings(workers=1))
        >>> spec = JobSpec.create(clip_hash="c", model="m", transform="time", explainer="energy")
        >>> job = service.submit(spec, lambda ctx: 42, session="alice")
        >>> job.wait(10) and job.result
        42
        >>> service.shutdown()
    """

    def __init__(self, settings: JobSettings | None = None, *, start: bool = True):
        self.settings = settings or JobSettings.from_env()
        self.results = ResultCache(self.settings.cache_entries, self.settings.cache_bytes)
        self._lock = threading.Condition()
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()   # session → waiting jobs, rotation order
        self._active: dict[JobSpec, Job] = {}                        # queued or running, by spec
        self._running: list[Job] = []
        self._computing = 0                                          # running jobs not paused (≤ workers)
        self._rate: dict[str, float] = {}                            # seconds per model pass, by model
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._paused = False
        #: torch threads per worker, set when the workers start (:mod:`earmark.threads`).
        self.threads: ThreadBudget | None = None
        self.stats = {"submitted": 0, "merged": 0, "cached": 0, "refused": 0, "done": 0, "failed": 0,
                      "cancelled": 0, "stopped": 0, "abandoned": 0}
        if start:
            self.start()

    # ---- life --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads (once)."""
        with self._lock:
            if self._threads:
                return
            # at most ``workers`` jobs compute at once, so they share the cores: workers × torch threads ≤ cores
            self.threads = apply_thread_budget(self.settings.workers)
            # twice the threads, at most ``workers`` computing: a job paused for the one on screen frees its
            # compute slot, and a spare thread starts the watched job
            for i in range(2 * self.settings.workers):
                t = threading.Thread(target=self._worker, name=f"earmark-job-{i + 1}", daemon=True)
                self._threads.append(t)
                t.start()

    def pause(self) -> None:
        """Workers finish what runs and take nothing new until :meth:`resume` (maintenance, tests)."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()

    def shutdown(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        """Stop the workers (cancelling what is queued and running unless ``cancel=False``)."""
        with self._lock:
            self._closed = True
            jobs = list(self._active.values()) if cancel else []
            self._lock.notify_all()
        for job in jobs:
            self.cancel(job)
        for t in self._threads:
            t.join(timeout)

    # ---- requests ----------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, work: Callable[[JobContext], Any], *, session: str = "default",
               passes: int | None = None, tape: Tape | None = None) -> Job:
        """Queue ``work`` under ``spec`` for ``session``, or attach to / answer from an identical one.

        Args:
            spec: the job's key.
            work: ``work(ctx) -> result``, run on a worker thread; it must call ``ctx.progress`` (the
                probe does, once per chunk) so that the job can be cancelled.
            session: who asks (fair order and per-session limits).
            passes: model passes, when the caller knows better than :func:`estimate_passes`.
            tape: the model's answers of a stopped run of ``spec`` (see :meth:`continue_job`).

        Returns:
            The :class:`Job` (already ``done`` when the result was in the cache).

        Raises:
            BudgetExceeded: more model passes than ``max_model_passes``.
            QueueFull: the queue or this session's share of it is full.
        """
        hit = self.results.get(spec)
        if hit is not None:
            with self._lock:
                self.stats["cached"] += 1
            job = Job(spec, None, session=session, passes=0, service=self)
            job._set_status("done", result=hit)
            return job
        with self._lock:
            if self._closed:
                raise JobError("The job service has shut down; restart the server.")
            job = self._active.get(spec)
            if job is not None and not job.cancel_requested:
                job.sessions.add(session)
                self.stats["merged"] += 1
                return job
            need = estimate_passes(spec) if passes is None else int(passes)
            need = check_time(spec, need, self.settings.max_model_passes, error=BudgetExceeded,   # × resolution
                              budget=budget_params(spec))
            self._check_budget(spec, need)
            self._check_room(session)
            job = Job(spec, work, session=session, passes=need, service=self, tape=tape)
            self._active[spec] = job
            self._reap()
            self._queues.setdefault(session, deque()).append(job)
            self.stats["submitted"] += 1
            self._lock.notify()
        return job

    def stop(self, job: Job, session: str | None = None) -> Job:
        """Stop ``job`` and keep its work (:meth:`Job.stop`); ``session`` is who asked.

        When other sessions are attached too (a classroom sharing one request), the job runs on for them and
        ``session`` gets a stopped copy of its own: the same partial result and tape, so its Continue
        attaches to the running job again.

        Returns:
            The stopped job that holds the partial result (``job`` itself, or the copy).
        """
        with self._lock:
            if job.finished:
                return job
            if session is not None and session in job.sessions and len(job.sessions) > 1:
                job.sessions.discard(session)
                copy = Job(job.spec, None, session=session, passes=0, service=self, tape=job.tape)
                copy._partial_raw, copy.target, copy.started = job._partial_raw, job.target, job.started
                copy.done, copy.total, copy.progress = job.done, job.total, job.progress
                copy._set_status("stopped", result=job.stopped_result(), error=_stopped(copy))
                job._touch()
                return copy
            if self._active.get(job.spec) is job:   # a new request for the spec starts a new job (or a resume)
                del self._active[job.spec]
            if job.status == "queued":
                self._remove_queued(job)
                self.stats["stopped"] += 1
            elif job.status == "running" and not job._paused_slot:
                # its compute slot is free at once: the next job starts while the call in flight ends (its
                # answer still lands on the tape), so Stop does not wait for a slow model's chunk
                job._paused_slot = True
                self._computing -= 1
            self._lock.notify_all()
        job._stop_now()
        return job

    def continue_job(self, job: Job, work: Callable[[JobContext], Any], *, session: str = "default") -> Job:
        """Continue a stopped job: a new job for the same spec that starts from its tape, so it finishes
        with the map an uninterrupted run gives (answered from the cache if the result is there already).

        Raises:
            JobError: ``job`` was not stopped.
        """
        if job.status != "stopped":
            raise JobError(f"Only a stopped computation can continue; this one is {job.status}.")
        return self.submit(job.spec, work, session=session, tape=job.tape)

    def show(self, session: str, jobs: "list[Job] | tuple[Job, ...]" = (), *, kind: str | None = None) -> None:
        """``session`` now shows ``jobs`` (its page's current request; none: a cached result or nothing).

        Its other unfinished jobs are abandoned once no session attached to them shows them: they yield to
        the watched ones (a queued one starts after them; a running one pauses between chunks while a
        watched job waits or runs) and are cancelled after ``abandon_grace`` seconds, unless pinned.
        Showing a job again within the grace period takes it back. With ``kind`` (e.g. ``"explanation"``)
        only jobs of that kind are concerned (the page's listening jobs are not abandoned by its map).
        """
        now = time.monotonic()
        shown = {id(j) for j in jobs}
        with self._lock:
            for job in list(self._active.values()) + list(self._running):
                if job.finished or session not in job.sessions or (kind is not None and job.spec.kind != kind):
                    continue
                if id(job) in shown:
                    job.away.discard(session)
                else:
                    job.away.add(session)
                abandoned = not job.pinned and job.sessions <= job.away
                if abandoned and job.abandoned_at is None:
                    job.abandoned_at = now
                elif not abandoned:
                    job.abandoned_at = None
            self._reap()
            self._lock.notify_all()

    def pin(self, job: Job, pinned: bool = True) -> None:
        """Keep ``job`` running at full priority whether or not anyone shows it (``pinned=False`` undoes)."""
        with self._lock:
            job.pinned = bool(pinned)
            if job.pinned:
                job.abandoned_at = None
            elif job.sessions <= job.away and job.abandoned_at is None and not job.finished:
                job.abandoned_at = time.monotonic()
            self._lock.notify_all()
        job._touch()

    def find(self, spec: JobSpec) -> Job | None:
        """The queued or running job for ``spec``, if any."""
        with self._lock:
            return self._active.get(spec)

    def result(self, spec: JobSpec) -> Any:
        """The cached result for ``spec`` or ``None``."""
        return self.results.get(spec)

    def cancel(self, job: Job, session: str | None = None) -> None:
        """Detach ``session`` from ``job``; cancel it when no session is left (always when ``None``)."""
        with self._lock:
            if job.finished:
                return
            if session is not None:
                job.sessions.discard(session)
                if job.sessions:
                    job._touch()
                    return
            queued = job.status == "queued"
            if self._active.get(job.spec) is job:
                del self._active[job.spec]
            if queued:
                self._remove_queued(job)
                self.stats["cancelled"] += 1
            self._lock.notify_all()
        job._request_cancel()
        if queued:
            job._set_status("cancelled", error="Cancelled before it started.")

    # ---- queue state -------------------------------------------------------------------------------
    def watchers(self) -> int:
        """Sessions attached to jobs that have not ended (queued or running), counted once per job."""
        with self._lock:
            jobs = list(self._running) + [j for q in self._queues.values() for j in q]
            return sum(len(j.sessions) for j in jobs)

    def order(self) -> list[Job]:
        """The waiting jobs in the order they will start (round-robin over sessions)."""
        with self._lock:
            return self._order()

    def position(self, job: Job) -> int | None:
        """1-based place of ``job`` among the waiting jobs (``None`` if it is not waiting)."""
        with self._lock:
            for i, j in enumerate(self._order()):
                if j is job:
                    return i + 1
        return None

    def eta(self, job: Job) -> float | None:
        """Estimated seconds until ``job`` has its final result (``None`` when unknown)."""
        with self._lock:
            if job.status == "running":
                return _remaining(job, self._duration(job))
            if job.status != "queued":
                return 0.0
            order = self._order()
            if job not in order:
                return None
            ahead = order[: order.index(job)]
            workers = max(1, self.settings.workers)
            free_at = [_remaining(j, self._duration(j)) or 0.0 for j in self._running]
            free_at += [0.0] * max(0, workers - len(free_at))
            for j in ahead:  # each waiting job ahead takes the worker that frees first
                d = self._duration(j)
                if d is None:
                    return None
                free_at.sort()
                free_at[0] += d
            own = self._duration(job)
            if own is None:
                return None
            return min(free_at) + own

    def snapshot(self) -> dict[str, Any]:
        """Counts for a status line or a load test: waiting, running, cached, stats."""
        with self._lock:
            return {"waiting": sum(len(q) for q in self._queues.values()), "running": len(self._running),
                    "workers": self.settings.workers, "sessions_waiting": len(self._queues),
                    "cached": len(self.results), "cached_bytes": self.results.bytes,
                    "seconds_per_pass": dict(self._rate), **self.stats}

    # ---- inside ------------------------------------------------------------------------------------
    def _check_budget(self, spec: JobSpec, need: int) -> None:
        cap = self.settings.max_model_passes
        if need <= cap:
            return
        self.stats["refused"] += 1
        budget = budget_params(spec)
        knobs = [f"{k}={v}" for k, v in spec.eparams if k in budget]
        lower = f" Lower {', '.join(knobs)}" if knobs else " Ask for less"
        raise BudgetExceeded(
            f"This request needs about {need:,} model passes, more than the {cap:,} this server allows per "
            f"request (setting max_model_passes, environment variable EARMARK_MAX_MODEL_PASSES).{lower}, or ask "
            f"whoever runs the server to raise the limit.")

    def _check_room(self, session: str) -> None:
        mine = sum(1 for j in self._active.values() if j.owner == session)
        if mine >= self.settings.max_per_session:
            self.stats["refused"] += 1
            raise QueueFull(
                f"You already have {mine} computations waiting or running (at most "
                f"{self.settings.max_per_session} per session); wait for one to finish or cancel one.")
        waiting = sum(len(q) for q in self._queues.values())
        if waiting >= self.settings.max_queue:
            self.stats["refused"] += 1
            raise QueueFull(f"The server is busy: {waiting} computations are waiting (at most "
                            f"{self.settings.max_queue}). Try again in a minute.")

    def _order(self) -> list[Job]:
        queues = [(s, list(q)) for s, q in self._queues.items() if q]
        out: list[Job] = []
        while queues:
            session, q = queues.pop(0)
            out.append(q.pop(0))
            if q:
                queues.append((session, q))
        return out

    def _next(self) -> Job | None:
        order = self._order()
        watched = next((j for j in order if j.abandoned_at is None), None)
        if watched is not None and order and order[0] is not watched:   # abandoned jobs wait for watched ones
            self._remove_queued(watched)
            return watched
        for session in list(self._queues):
            q = self._queues[session]
            if not q:
                del self._queues[session]
                continue
            job = q.popleft()
            if q:
                self._queues.move_to_end(session)
            else:
                del self._queues[session]
            return job
        return None

    # ---- abandoned jobs ----------------------------------------------------------------------------
    def _tick(self) -> float | None:
        """How long a waiting worker may sleep before an abandoned job's grace ends (``None``: no limit)."""
        ends = [j.abandoned_at + self.settings.abandon_grace for j in self._active.values()
                if j.abandoned_at is not None]
        return None if not ends else max(0.01, min(ends) - time.monotonic())

    def _reap(self) -> None:
        """Cancel the queued abandoned jobs whose grace has ended (under the lock; running ones cancel
        themselves at their next chunk, in :meth:`_yield`)."""
        now = time.monotonic()
        for job in [j for j in self._active.values() if j.status == "queued" and j.abandoned_at is not None
                    and now - j.abandoned_at >= self.settings.abandon_grace]:
            del self._active[job.spec]
            self._remove_queued(job)
            self.stats["abandoned"] += 1
            job._cancel.set()
            job._set_status("cancelled", error=_abandoned_message(self.settings.abandon_grace))

    def _wanted(self, job: Job) -> bool:
        """A watched job other than ``job`` is waiting or running (so an abandoned ``job`` should pause)."""
        return any(j is not job and j.abandoned_at is None and not j.finished
                   for j in list(self._running) + [q for qs in self._queues.values() for q in qs])

    def _yield(self, job: Job) -> None:
        """Called between chunks of an abandoned running ``job``: pause (freeing its compute slot) while a
        watched job waits or runs; raise :class:`JobCancelled` once its grace has ended."""
        grace = self.settings.abandon_grace
        with self._lock:
            paused = False
            try:
                while job.abandoned_at is not None and not job.cancel_requested:
                    left = job.abandoned_at + grace - time.monotonic()
                    if left <= 0:
                        if self._active.get(job.spec) is job:
                            del self._active[job.spec]
                        self.stats["abandoned"] += 1
                        job.error = _abandoned_message(grace)
                        job._cancel.set()
                        break
                    if not self._wanted(job):
                        break                              # nothing to yield to: keep computing until the grace ends
                    if not paused:
                        paused, job._paused_slot = True, True
                        self._computing -= 1
                        job.stage = "paused: another computation is on screen"
                        self._lock.notify_all()
                        job._touch()
                    self._lock.wait(min(left, 0.1))
            finally:
                if paused:   # take a compute slot back before computing again (or before leaving, cancelled)
                    while self._computing >= self.settings.workers and not job.cancel_requested:
                        self._lock.wait(0.1)
                    self._computing += 1
                    job._paused_slot = False
        if job.cancel_requested and job.status == "running":
            raise JobCancelled(job.error or _abandoned_message(grace))

    def _remove_queued(self, job: Job) -> None:
        for session, q in list(self._queues.items()):
            if job in q:
                q.remove(job)
                if not q:
                    del self._queues[session]
                return

    def _duration(self, job: Job) -> float | None:
        """Estimated seconds ``job`` runs: its passes × the model's seconds per pass, learned from finished
        jobs, else read off a running job of the same model (``None`` while nothing has run)."""
        rate = self._rate.get(job.spec.model)
        if rate is None:
            running = [j for j in self._running if j.spec.model == job.spec.model and j.passes > 0
                       and j.progress >= 0.05 and j.elapsed > 0.2]
            if not running:
                return None
            rate = statistics.median(j.elapsed / (j.progress * j.passes) for j in running)
        return rate * max(job.passes, 1)

    def _worker(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (self._paused or not any(self._queues.values())
                                            or self._computing >= self.settings.workers):
                    self._lock.wait(self._tick())
                    self._reap()
                if self._closed:
                    return
                job = self._next()
                if job is None:
                    continue
                self._running.append(job)
                self._computing += 1
            try:
                # every job at the budget's thread count, whatever another caller set since (a count changes
                # float sums, so a Continue and its first part must run at the same one)
                if self.threads is not None and torch.get_num_threads() != self.threads.threads:
                    torch.set_num_threads(self.threads.threads)
                _execute(job, store=lambda j, result: self.results.put(j.spec, result))
            finally:
                self._finish(job)

    def _finish(self, job: Job) -> None:
        with self._lock:
            self._running.remove(job)
            if not getattr(job, "_paused_slot", False):
                self._computing -= 1
            job._paused_slot = False
            if self._active.get(job.spec) is job:
                del self._active[job.spec]
            self.stats[job.status if job.status in ("done", "failed", "cancelled", "stopped") else "failed"] += 1
            used = job.passes
            if isinstance(job.result, Explanation):
                used = int(job.result.meta.get("forward_passes", 0)) + int(job.result.meta.get("backward_passes", 0))
            if job.status == "done" and used > 0 and job.elapsed > 0:
                rate = job.elapsed / used
                old = self._rate.get(job.spec.model)
                self._rate[job.spec.model] = rate if old is None else 0.7 * old + 0.3 * rate
            self._lock.notify_all()


def _stopped(job: Job) -> str:
    return _ended_message(job, "Stopped")


def _abandoned_message(grace: float) -> str:
    return (f"Cancelled: nobody looked at it for {grace:g} s (pin a computation to keep it running while you "
            "look at something else).")


__all__ = ["JobService", "JobSettings"]
