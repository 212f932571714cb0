"""The server's worker pool: a fair, bounded queue, merging of identical specs, a result cache, a cap on model
passes per request, and its settings from the environment."""

from __future__ import annotations

import os
import statistics
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..cost import check_time
from ..errors import ConfigError
from ..explanation import Explanation
from ..threads import ThreadBudget, apply_thread_budget
from .cache import ResultCache
from .cost import budget_params, estimate_passes
from .job import BudgetExceeded, Job, JobContext, JobError, QueueFull, _execute, _remaining
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
    """

    workers: int = 2
    max_queue: int = 64
    max_per_session: int = 8
    max_model_passes: int = 30_000
    cache_entries: int = 256
    cache_bytes: int = 512 * 2 ** 20

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
                   cache_bytes=_env_int(env, "EARMARK_RESULT_CACHE_MB", d.cache_bytes // 2 ** 20, 1) * 2 ** 20)


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
        self._rate: dict[str, float] = {}                            # seconds per model pass, by model
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._paused = False
        #: torch threads per worker, set when the workers start (:mod:`earmark.threads`).
        self.threads: ThreadBudget | None = None
        self.stats = {"submitted": 0, "merged": 0, "cached": 0, "refused": 0, "done": 0, "failed": 0,
                      "cancelled": 0}
        if start:
            self.start()

    # ---- life --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads (once)."""
        with self._lock:
            if self._threads:
                return
            self.threads = apply_thread_budget(self.settings.workers)   # workers × torch threads ≤ cores
            for i in range(self.settings.workers):
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
               passes: int | None = None) -> Job:
        """Queue ``work`` under ``spec`` for ``session``, or attach to / answer from an identical one.

        Args:
            spec: the job's key.
            work: ``work(ctx) -> result``, run on a worker thread; it must call ``ctx.progress`` (the
                probe does, once per chunk) so that the job can be cancelled.
            session: who asks (fair order and per-session limits).
            passes: model passes, when the caller knows better than :func:`estimate_passes`.

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
            job = Job(spec, work, session=session, passes=need, service=self)
            self._active[spec] = job
            self._queues.setdefault(session, deque()).append(job)
            self.stats["submitted"] += 1
            self._lock.notify()
        return job

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
                while not self._closed and (self._paused or not any(self._queues.values())):
                    self._lock.wait()
                if self._closed:
                    return
                job = self._next()
                if job is None:
                    continue
                self._running.append(job)
            try:
                _execute(job, store=lambda j, result: self.results.put(j.spec, result))
            finally:
                self._finish(job)

    def _finish(self, job: Job) -> None:
        with self._lock:
            self._running.remove(job)
            if self._active.get(job.spec) is job:
                del self._active[job.spec]
            self.stats[job.status if job.status in ("done", "failed", "cancelled") else "failed"] += 1
            used = job.passes
            if isinstance(job.result, Explanation):
                used = int(job.result.meta.get("forward_passes", 0)) + int(job.result.meta.get("backward_passes", 0))
            if job.status == "done" and used > 0 and job.elapsed > 0:
                rate = job.elapsed / used
                old = self._rate.get(job.spec.model)
                self._rate[job.spec.model] = rate if old is None else 0.7 * old + 0.3 * rate
            self._lock.notify_all()


__all__ = ["JobService", "JobSettings"]
