"""Where ``earmark evaluate`` computes its units of work: in this process, or as Ray tasks on a cluster.

A *unit* is one (clip, explainer, domain): explain the clip's true class and score the map
(:func:`earmark.workflow.evaluate_one`). The driver (:func:`earmark.evaluate.run_evaluation`) decides
which units are missing from ``results.jsonl``, hands them to an engine, and appends each row the
moment the engine yields it — so whichever engine ran, a row is written once, by the driver, and an
interrupted run resumes from the file.

* :class:`LocalEngine` — one unit after the other in this process (the default).
* :class:`RayEngine` — one Ray task per unit. Each worker process loads the model once (the model is
  named, not shipped: :func:`earmark.models.load_model` caches it per process) and receives only the
  waveform and the unit's settings. A worker that dies mid-task has its unit retried on another worker
  (Ray's ``max_retries``); its row reaches the driver once. A worker or node lost beyond the retries stops
  the run with :class:`WorkerLost` once the tasks already running have finished (their rows are kept), and
  the driver says which rows ``results.jsonl`` holds; running the same command again finishes the rest.

Both engines run :func:`~earmark.workflow.evaluate_one` with the same arguments and seeds, so their rows
are identical (``tests/test_engines.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

import torch

from . import workflow
from .errors import ConfigError, EarmarkError
from .models import load_model
from .transforms import get_transform

EngineName = Literal["local", "ray"]


@dataclass(frozen=True)
class Unit:
    """One (clip, explainer, domain) to compute.

    Attributes:
        order: position in the run's plan (rows are sorted by it at the end).
        clip: clip name.  label: true class.  wave: (L,) waveform at the model's rate and length.
        explainer: explainer name.  transform: domain name.  seed: the clip's seed.
        true_mask: (*M) ground truth, or ``None``.  cell_scorer: the task's cell scorer, or ``None``.
    """

    order: int
    clip: str
    label: int
    wave: torch.Tensor
    explainer: str
    transform: str
    seed: int
    true_mask: torch.Tensor | None = None
    cell_scorer: Callable[[torch.Tensor], float] | None = None


@dataclass(frozen=True)
class Work:
    """What every unit of one run shares.

    Attributes:
        model: the classifier, for the local engine.
        model_source: the name or path :func:`earmark.models.load_model` takes to rebuild it in a worker.
        transforms: ``{domain: transform settings}``.  params: ``{explainer: settings}``.
        metrics: metric names.  options: :class:`earmark.metrics.MetricOptions`.
        batch_size: items per model call (``None`` = sized to the device).
        compute: ``compute(model, unit, work, transform) -> row``, a module-level function that replaces the
            evaluation's explain-and-score (class profiles reduce each map instead); ``None``: evaluate.
    """

    model: Any
    model_source: str | None
    transforms: Mapping[str, Mapping[str, Any]]
    params: Mapping[str, Mapping[str, Any]]
    metrics: Sequence[str]
    options: Any
    batch_size: int | None = None
    compute: Callable[..., dict] | None = None


#: What an engine yields per unit: the unit, its row (``None`` on failure) and a failure sentence.
Outcome = tuple[Unit, "dict[str, Any] | None", "str | None"]


def compute_unit(model, unit: Unit, work: Work, transform=None) -> dict[str, Any]:
    """Explain and score one unit with ``model`` (the same call in every engine)."""
    if transform is None:
        transform = get_transform(unit.transform, model.card.sample_rate, **work.transforms[unit.transform])
    if work.compute is not None:
        return work.compute(model, unit, work, transform)
    return workflow.evaluate_one(model, unit.wave, unit.label, transform, unit.explainer, work.params[unit.explainer],
                        metrics=work.metrics, seed=unit.seed, options=work.options, true_mask=unit.true_mask,
                        cell_scorer=unit.cell_scorer, batch_size=work.batch_size)


class WorkerLost(EarmarkError):
    """Ray lost the worker or node that ran a unit (after its retries): the run stops, finished rows stay.

    Attributes:
        unit: the unit whose worker was lost.  kind: Ray's name for the loss (``WorkerCrashedError``, ...).
    """

    def __init__(self, unit: Unit, kind: str, retries: int):
        self.unit, self.kind, self.retries = unit, kind, retries
        tried = f" and {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        super().__init__(f"Ray lost the worker running {unit.clip} · {unit.explainer} × {unit.transform} "
                         f"({kind}{tried})")


#: Ray's exceptions for a worker, node, object or the raylet lost, not for a unit's own error.
_LOSSES = ("WorkerCrashedError", "NodeDiedError", "ActorDiedError", "ActorUnavailableError", "ObjectLostError",
           "OwnerDiedError", "ObjectReconstructionFailedError", "ObjectFetchTimedOutError", "LocalRayletDiedError",
           "RaySystemError", "OutOfMemoryError", "TaskUnschedulableError")


def _is_loss(ray, exc: BaseException) -> bool:
    kinds = tuple(k for k in (getattr(ray.exceptions, n, None) for n in _LOSSES) if isinstance(k, type))
    return isinstance(exc, kinds)


def _failure(unit: Unit, exc: BaseException) -> str:
    return f"{unit.clip} · {unit.explainer} × {unit.transform}: {type(exc).__name__}: {exc}"


@dataclass
class LocalEngine:
    """Units one after the other in this process."""

    name: str = "local"

    def run(self, units: Iterable[Unit], work: Work) -> Iterator[Outcome]:
        card = work.model.card
        domains = {t: get_transform(t, card.sample_rate, **s) for t, s in work.transforms.items()}
        for unit in units:
            try:
                row = compute_unit(work.model, unit, work, domains[unit.transform])
            except EarmarkError:
                raise
            except Exception as exc:  # an explainer or metric failed on this unit: report, go on
                yield unit, None, _failure(unit, exc)
                continue
            yield unit, row, None


def _ray_task(model_source: str, device: str, threads: int, unit: Unit, work: Work) -> dict[str, Any]:
    """Body of one Ray task: the worker's cached model, then the same call as the local engine."""
    torch.set_num_threads(max(1, int(threads)))
    return compute_unit(load_model(model_source, device), unit, work)


@dataclass
class RayEngine:
    """One Ray task per unit, results streamed back as they finish.

    Attributes:
        address: ``None`` starts a local Ray instance in this process; ``"auto"`` joins the cluster this
            machine belongs to; ``"HOST:PORT"`` joins that one.
        cpus_per_task: CPU cores per task (also the task's torch threads).
        gpus_per_task: GPUs per task (fractions share a GPU); > 0 runs the model on ``cuda`` in the worker.
        max_retries: how often a unit whose worker died is tried again elsewhere.
        in_flight: at most this many tasks submitted and not yet collected (default: 2 × the cluster's
            task slots), so a large run does not put every waveform into the object store at once.
    """

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 3
    in_flight: int | None = None
    name: str = "ray"
    _started: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpus_per_task) and self.cpus_per_task > 0):
            raise ConfigError(f"--cpus-per-task must be above 0 (and finite), got {self.cpus_per_task}.")
        if not (math.isfinite(self.gpus_per_task) and self.gpus_per_task >= 0):
            raise ConfigError(f"--gpus-per-task must be 0 or more (and finite), got {self.gpus_per_task}.")

    def _connect(self):
        try:
            import ray
        except ModuleNotFoundError as exc:
            raise ConfigError("--engine ray needs Ray: pip install 'earmark[ray]'.") from exc
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise ConfigError(f"Could not reach a Ray cluster at '{self.address}': {exc}. Start one with "
                                  "'ray start --head' or leave --address out to start a local one.") from exc
            self._started = True
        return ray

    def shutdown(self) -> None:
        """Stop the Ray instance this engine started (a joined cluster keeps running)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def run(self, units: Iterable[Unit], work: Work) -> Iterator[Outcome]:
        if not work.model_source:
            raise ConfigError("--engine ray rebuilds the model in each worker from its name or path; this model "
                              "was built in Python (from_module). Register it, save it to disk, or use --engine local.")
        ray = self._connect()
        device = "cuda" if self.gpus_per_task > 0 else "cpu"
        threads = max(1, int(self.cpus_per_task))
        task = ray.remote(_ray_task).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
                                             max_retries=self.max_retries, retry_exceptions=False)
        slots = self.in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_task))
        shared = ray.put(work_without_model(work))
        pending: dict[Any, Unit] = {}
        queue = iter(units)
        exhausted = False
        lost: WorkerLost | None = None
        while pending or not exhausted:
            while not exhausted and len(pending) < slots:
                unit = next(queue, None)
                if unit is None:
                    exhausted = True
                    break
                pending[task.remote(work.model_source, device, threads, unit, shared)] = unit
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(ready[0])
            try:
                row = ray.get(ready[0])
            except Exception as exc:  # RayTaskError wraps the worker's exception
                if _is_loss(ray, exc):   # a worker or node is gone: submit nothing more, keep what finishes
                    lost = lost or WorkerLost(unit, type(exc).__name__, self.max_retries)
                    exhausted = True
                    continue
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, EarmarkError):
                    raise cause
                yield unit, None, _failure(unit, cause)
                continue
            yield unit, row, None
        if lost is not None:
            raise lost


def work_without_model(work: Work) -> Work:
    """The shared settings without the driver's model object (workers load their own)."""
    return Work(model=None, model_source=work.model_source, transforms=work.transforms, params=work.params,
                metrics=work.metrics, options=work.options, batch_size=work.batch_size, compute=work.compute)


def make_engine(name: EngineName = "local", *, address: str | None = None, cpus_per_task: float = 1.0,
                gpus_per_task: float = 0.0) -> LocalEngine | RayEngine:
    """An engine by ``--engine`` name.

    Raises:
        ConfigError: an unknown name, or Ray options given to the local engine.
    """
    if name == "local":
        if address is not None or gpus_per_task:
            raise ConfigError("--address and --gpus-per-task belong to --engine ray.")
        return LocalEngine()
    if name == "ray":
        return RayEngine(address=address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task)
    raise ConfigError(f"--engine is 'local' or 'ray', not '{name}'.")


__all__ = ["EngineName", "LocalEngine", "Outcome", "RayEngine", "Unit", "Work", "WorkerLost", "compute_unit", "make_engine"]
