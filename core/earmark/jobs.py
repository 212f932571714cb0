"""Computations as jobs: a spec that names one, a small worker pool that runs them, a cache of results.

The app and the CLI never run an explanation (or a faithfulness or listening computation) on the thread
that draws: they describe it as a :class:`JobSpec`, hand it with the function that computes it to
:meth:`JobService.submit`, and read the :class:`Job` back — status, progress, queue position, an estimate
of the time left, the latest partial :class:`~earmark.explanation.Explanation` and the final result.

* **One key.** A :class:`JobSpec` (kind, clip hash, model, transform and its parameters, explainer and
  its parameters, target, seed, kind-specific options) is the key for the result cache, for merging
  identical requests and for provenance. Parameters are resolved against their declarations when the
  spec is made, so ``n_masks="3000"`` from the CLI and ``n_masks=3000`` from a slider are the same key.
* **Merged.** An identical spec that arrives while one is queued or running attaches to it (the model
  runs once); one that arrives after it finished is answered from the cache.
* **Fair and bounded.** At most one running job per worker thread (torch releases the GIL in its
  kernels); a bounded queue, at most ``max_per_session`` jobs waiting or running per session, and the
  next job is taken round-robin over the sessions that are waiting, so one person's ten clicks do not
  hold back everyone else.
* **Capped.** Every request's model passes (forward + backward items) are estimated from the spec
  before it is queued (:func:`estimate_passes`); above the server setting ``max_model_passes`` it is
  refused with a sentence that names the setting.
* **Cancellable.** :meth:`Job.cancel` sets a flag that the job's ``progress`` callback checks; the probe
  calls it once per chunk, so a job stops within one chunk.
* **Landed.** A finished result goes into a bounded in-memory cache (entries and bytes) keyed by the
  spec, whether or not anyone is still looking.

``core`` never imports Streamlit: the dashboard keeps one :class:`JobService` per server
(``st.cache_resource``) and each session's jobs in its own state; ``earmark explain`` runs the same job in
the foreground with :func:`run_foreground`.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import logging
import os
import statistics
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError, EarmarkError
from .explanation import Explanation
from .device import model_device
from .params import resolve

log = logging.getLogger(__name__)

#: What a job computes.
KINDS: tuple[str, ...] = ("explanation", "faithfulness", "listening")
#: ``queued → running → done | failed | cancelled`` (a queued job can be cancelled before it starts).
STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})


class JobError(EarmarkError):
    """A request the job service cannot take (see the subclasses); the message says what to do."""


class BudgetExceeded(JobError):
    """The request needs more model passes than the server's ``max_model_passes`` allows."""


class QueueFull(JobError):
    """The server's queue, or this session's share of it, is full."""


class JobCancelled(JobError):
    """Raised inside a running job when it was cancelled (ends the work at the next chunk)."""


Items = tuple[tuple[str, Any], ...]


def _items(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Items:
    """A hashable, order-independent form of a parameter dict."""
    return tuple(sorted(dict(params or {}).items()))


# ---- the key ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobSpec:
    """Everything that determines a job's result: the key for caching, merging and provenance.

    Make one with :meth:`create` (which validates and fills in the declared defaults); the fields are
    plain hashable values.

    Attributes:
        kind: ``"explanation"``, ``"faithfulness"`` (curves and scores of the explanation the other fields
            name) or ``"listening"`` (keep / remove / soft audio of that explanation).
        clip_hash: identifies the waveform exactly as the model hears it (rate, length, window).
        model: registered model name (or a path a loader understands).
        transform, tparams: the domain and its resolved parameters (sorted ``(name, value)`` pairs).
        explainer, eparams: the method and its resolved hyperparameters.
        target: explained class (``None`` = the predicted class).  seed: seed of the random generator.
        options: kind-specific settings (faithfulness: ``steps``; listening: ``fraction``, ``match``).
    """

    kind: str
    clip_hash: str
    model: str
    transform: str
    tparams: Items
    explainer: str
    eparams: Items
    target: int | None = None
    seed: int | None = 0
    options: Items = ()

    @classmethod
    def create(cls, kind: str = "explanation", *, clip_hash: str, model: str, transform: str,
               tparams: Mapping[str, Any] | Items | None = None, explainer: str,
               eparams: Mapping[str, Any] | Items | None = None, target: int | None = None,
               seed: int | None = 0, options: Mapping[str, Any] | Items | None = None) -> "JobSpec":
        """A validated spec with every declared parameter filled in.

        Raises:
            ConfigError: unknown kind, transform, explainer or parameter, or a value out of its range.
        """
        from .explainers import EXPLAINERS
        from .transforms import TRANSFORMS

        if kind not in KINDS:
            raise ConfigError(f"Unknown job kind '{kind}'. Use one of: {', '.join(KINDS)}.")
        tcls = TRANSFORMS.get(transform)
        espec = EXPLAINERS.get(explainer)
        tp = resolve(tcls.params, dict(tparams or {}), owner=f"Transform '{transform}'")
        ep = resolve(espec.params, dict(eparams or {}), owner=f"Explainer '{explainer}'")
        return cls(kind=kind, clip_hash=str(clip_hash), model=str(model), transform=transform, tparams=_items(tp),
                   explainer=explainer, eparams=_items(ep), target=None if target is None else int(target),
                   seed=None if seed is None else int(seed), options=_items(options))

    def derived(self, kind: str, **options: Any) -> "JobSpec":
        """A job on this spec's explanation: ``spec.derived("faithfulness", steps=20)``."""
        if kind not in KINDS:
            raise ConfigError(f"Unknown job kind '{kind}'. Use one of: {', '.join(KINDS)}.")
        return dataclasses.replace(self, kind=kind, options=_items(options))

    @property
    def explanation(self) -> "JobSpec":
        """The explanation job this spec is about (itself for an explanation)."""
        return self if self.kind == "explanation" else dataclasses.replace(self, kind="explanation", options=())

    def provenance(self) -> dict[str, Any]:
        """A JSON-ready record of the request (what produced a result)."""
        return {"kind": self.kind, "clip_hash": self.clip_hash, "model": self.model, "transform": self.transform,
                "transform_params": dict(self.tparams), "explainer": self.explainer,
                "explainer_params": dict(self.eparams), "target": self.target, "seed": self.seed,
                **({"options": dict(self.options)} if self.options else {})}

    def describe(self) -> str:
        """One short line for a person: ``freqrise in stft (seed 0)``."""
        what = {"explanation": "", "faithfulness": "faithfulness of ", "listening": "listening to "}[self.kind]
        return f"{what}{self.explainer} in {self.transform} (seed {self.seed})"


# ---- cost ------------------------------------------------------------------------------------------

def estimate_passes(spec: JobSpec) -> int:
    """Model passes (forward + backward items) the job will need at most, from the spec alone.

    Faithfulness: deletion and insertion curves (``2 (steps + 1)``) and the single-point scores (12);
    listening: the four versions' predictions; an explanation: its explainer's cost model
    (:meth:`~earmark.explainers.ExplainerSpec.cost`, which ``tests/test_jobs.py`` checks against a run of
    every registered explainer).
    """
    from .explainers import EXPLAINERS

    if spec.kind == "faithfulness":
        return 2 * (int(dict(spec.options).get("steps", 20)) + 1) + 12
    if spec.kind == "listening":
        return 4
    return EXPLAINERS.get(spec.explainer).cost(dict(spec.eparams))


def work_units(spec: JobSpec) -> tuple[int, str] | None:
    """``(total, unit)`` of an explanation's budget for a person (``(3000, "masks")``), or ``None``."""
    from .explainers import EXPLAINERS

    if spec.kind != "explanation" or spec.explainer not in EXPLAINERS:
        return None
    return EXPLAINERS.get(spec.explainer).work_units(dict(spec.eparams))


# ---- sizes of results (for the byte-bounded cache) --------------------------------------------------

def nbytes(obj: Any) -> int:
    """Approximate memory held by a result: tensors, arrays, and the containers around them."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj)
    if isinstance(obj, Explanation):
        return nbytes(obj.saliency) + nbytes(obj.uncertainty) + nbytes(obj.extras) + 1024
    if isinstance(obj, Mapping):
        return sum(nbytes(v) for v in obj.values()) + 64 * len(obj)
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj) + 16 * len(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(nbytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return 64


class ResultCache:
    """A thread-safe LRU of finished results, bounded in entries and in bytes (see :func:`nbytes`).

    The newest entry is always kept, so memory stays below ``max(max_bytes, largest result)``.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 512 * 2 ** 20):
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any) -> None:
        size = nbytes(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes


# ---- a job -----------------------------------------------------------------------------------------

_ids = itertools.count(1)


def _cpu(exp: Explanation) -> Explanation:
    """The explanation with every tensor on the CPU (cached results free the device)."""
    return dataclasses.replace(exp, saliency=exp.saliency.detach().cpu(), uncertainty=exp.uncertainty.detach().cpu(),
                               extras={k: v.detach().cpu() for k, v in exp.extras.items()})


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
    """

    def __init__(self, spec: JobSpec, work: Callable[["JobContext"], Any] | None, *, session: str = "default",
                 passes: int = 0, service: "JobService | None" = None):
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

    def _set_status(self, status: str, *, error: str | None = None, result: Any = None) -> None:
        if status == "running":
            self.started = time.monotonic()
        if status in FINISHED:
            self.ended = time.monotonic()
        if status == "done":
            self.result, self.progress = result, 1.0
            if self.total is not None and self._partial_raw is None:
                self.done = self.total  # with estimates, ``done`` is what the last one said (stop="auto")
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
        """``progress(fraction, stage)``, the probe's callback (once per chunk)."""
        self.check()
        job = self.job
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
        job._set_status("cancelled", error="Cancelled before it started.")
        return
    job._set_status("running")
    try:
        result = job._work(JobContext(job))
    except JobCancelled:
        job._set_status("cancelled", error=_cancelled_message(job))
    except EarmarkError as exc:
        job._set_status("failed", error=str(exc))
    except Exception as exc:  # a bug, not the person's mistake: keep the worker alive, say what happened
        log.exception("job %s failed", job)
        job._set_status("failed", error=f"The computation failed ({type(exc).__name__}: {exc}).")
    else:
        if job.cancel_requested:
            job._set_status("cancelled", error=_cancelled_message(job))
        else:
            if store is not None:
                store(job, result)
            job._set_status("done", result=result)


def _cancelled_message(job: Job) -> str:
    if job.done is not None and job.total:
        return f"Cancelled after {job.done:,} of {job.total:,} {job.unit or 'units'}."
    return f"Cancelled at {job.progress:.0%}."


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


def poll_interval(watchers: int, *, base: float = 0.5, full_rate: int = 4, cap: float = 4.0) -> float:
    """Seconds between two polls of a page watching a job, given how many sessions watch jobs on the server.

    Every poll re-runs a fragment of the page (Python, under the GIL) and redraws its heatmaps, so the polls
    of a whole classroom compete with the jobs they watch: up to ``full_rate`` watchers poll every ``base``
    seconds, more share that rate (30 watchers: every 3.75 s each), at most ``cap`` seconds apart.

    >>> poll_interval(1), poll_interval(8), poll_interval(30), poll_interval(100)
    (0.5, 1.0, 3.75, 4.0)
    """
    return min(cap, base * max(1.0, watchers / full_rate))


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
        budget = _budget_params(spec)
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


def _budget_params(spec: JobSpec) -> tuple[str, ...]:
    """The explainer's declared budget parameters (named in a refusal); none for derived jobs."""
    from .explainers import EXPLAINERS

    if spec.kind != "explanation" or spec.explainer not in EXPLAINERS:
        return ()
    return EXPLAINERS.get(spec.explainer).budget


# ---- what an explanation job runs --------------------------------------------------------------------

def _accepts(fn: Callable, name: str) -> bool:
    """``fn`` declares the keyword ``name`` (not just ``**kwargs``, which explain() checks against the spec)."""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def explanation_work(spec: JobSpec, model, x: Tensor, transform, *, batch_size: int | None = None
                     ) -> Callable[[JobContext], Explanation]:
    """The work of an explanation job: :func:`earmark.explainers.explain` with the job's callbacks.

    ``progress`` (per chunk: progress and cancellation), ``first_look`` (IG's early map) and, where
    :func:`~earmark.explainers.explain` takes it, ``on_partial`` (estimates of sampling and mask methods
    as they go) are the job's. The result's tensors are moved to the CPU and ``meta["job"]`` holds the
    spec's provenance.

    Args:
        spec: an ``"explanation"`` spec.  model: the loaded model.  x: (L,) waveform at the model's rate
        and length (the clip ``spec.clip_hash`` names).  transform: the spec's transform, built.
    """
    from .explainers import EXPLAINERS, explain

    if spec.kind != "explanation":
        raise ConfigError(f"explanation_work runs explanation jobs, not '{spec.kind}'.")
    partial_ok = _accepts(explain, "on_partial")
    meaning = EXPLAINERS.get(spec.explainer).uncertainty

    def predicted() -> int:  # one forward pass, only when a partial estimate is published
        with torch.no_grad():
            return int(model(x.reshape(1, -1).to(model_device(model), torch.float32))[0].argmax())

    def work(ctx: JobContext) -> Explanation:
        ctx.job.uncertainty_meaning = meaning
        ctx.target_fn = predicted
        extra: dict[str, Any] = {"first_look": ctx.first_look}
        if partial_ok:
            extra["on_partial"] = ctx.partial
        exp = explain(model, x, transform, spec.target, method=spec.explainer, seed=spec.seed,
                      progress=ctx.progress, batch_size=batch_size, **extra, **dict(spec.eparams))
        ctx.check()
        exp = _cpu(exp)
        return dataclasses.replace(exp, meta={**exp.meta, "job": spec.provenance()})

    return work


def listening_work(spec: JobSpec, model, x: Tensor, transform, saliency: Tensor
                   ) -> Callable[[JobContext], dict[str, tuple[Tensor, Tensor]]]:
    """The work of a listening job: :func:`earmark.workflow.listening` with the spec's ``fraction`` and
    ``match``; the result is ``{version: (wave (L,), probabilities (C,))}`` by the card's activation."""
    from .workflow import listening

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


__all__ = ["BudgetExceeded", "Job", "JobCancelled", "JobContext", "JobError", "JobService",
           "JobSettings", "JobSpec", "KINDS", "QueueFull", "ResultCache", "estimate_passes", "explanation_work", "listening_work",
           "nbytes", "poll_interval", "run_foreground", "work_units"]
