"""CPU thread budget: workers × torch threads ≤ the cores this process may use.

PyTorch's intra-op thread count is one setting for the whole process, while every Python thread that calls
into it runs its own parallel regions. A job service with two worker threads of two torch threads each on
a two-core machine runs four busy threads on two cores: each call stalls whenever the other takes a core.
So the budget is set once, for the process, from the number of workers that will call torch at the same
time: ``threads = max(1, cores // workers)``, with one core kept free on small machines (≤ 4 cores);
``$EARMARK_THREADS`` (or ``OMP_NUM_THREADS``) overrides it. The job service applies it when its workers
start, the ``earmark`` command when it starts; ``earmark bench`` shows it. The count is a fixed function
of the machine and the pool, never of the load, so the same seed keeps giving the same bits.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from typing import Mapping

import torch

from .errors import ConfigError


#: On a machine of at most this many cores one core is left to the rest of the machine (the OS, the
#: server, another user): a parallel region split over every core stalls whenever another process takes
#: one. Measured on 2 cores (docs/results/bench-peers.md): 1 torch thread instead of 2 costs 9–22 % when
#: the machine is idle and saves 35–40 % beside one CPU-burning process.
SMALL_MACHINE = 4
RESERVE = 1
RULE = "cores // workers, one core kept free on ≤ 4 cores"


@dataclass(frozen=True)
class ThreadBudget:
    """What the process runs with.

    Attributes:
        cores: CPU cores this process may run on (its affinity mask).
        workers: threads that call torch at the same time (the job service's workers; 1 for the CLI).
        threads: torch intra-op threads (process-wide).
        source: ``"EARMARK_THREADS"`` / ``"OMP_NUM_THREADS"`` when set by a variable, else the rule.
    """

    cores: int
    workers: int
    threads: int
    source: str

    def describe(self) -> str:
        """One line: ``2 cores, 2 workers × 1 torch thread (cores // workers)``."""
        plural = "s" if self.threads != 1 else ""
        return (f"{self.cores} core{'s' if self.cores != 1 else ''}, {self.workers} worker"
                f"{'s' if self.workers != 1 else ''} × {self.threads} torch thread{plural} ({self.source})")

    def as_dict(self) -> dict:
        return asdict(self)


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS says, else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_budget(workers: int, *, cores: int | None = None, env: Mapping[str, str] | None = None) -> ThreadBudget:
    """The torch threads for ``workers`` concurrent callers: ``$EARMARK_THREADS``, else ``cores // workers``.

    Raises:
        ConfigError: ``EARMARK_THREADS`` that is not a whole number of at least 1.
    """
    env = os.environ if env is None else env
    cores = available_cores() if cores is None else max(1, int(cores))
    workers = max(1, int(workers))
    raw = (env.get("EARMARK_THREADS") or "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"EARMARK_THREADS must be a whole number of at least 1 (torch threads per "
                              f"process); got {raw!r}. Unset it to share the cores among the workers.")
        return ThreadBudget(cores, workers, int(raw), "EARMARK_THREADS")
    omp = (env.get("OMP_NUM_THREADS") or "").strip()
    if omp.isdigit() and int(omp) >= 1:                      # the person running it chose: respected
        return ThreadBudget(cores, workers, int(omp), "OMP_NUM_THREADS")
    usable = cores - RESERVE if 2 <= cores <= SMALL_MACHINE else cores
    return ThreadBudget(cores, workers, max(1, usable // workers), RULE)


_APPLIED: ThreadBudget | None = None
_LOCK = threading.Lock()


def apply_thread_budget(workers: int, *, env: Mapping[str, str] | None = None) -> ThreadBudget:
    """Set torch's thread count for ``workers`` concurrent callers, for the whole process.

    Called again with more workers (a second service in the same process) it lowers the count to fit the
    larger pool; it never raises it, so workers × threads stays within the cores.
    """
    global _APPLIED
    budget = thread_budget(workers, env=env)
    with _LOCK:
        if _APPLIED is not None and _APPLIED.threads < budget.threads and budget.source != "EARMARK_THREADS":
            budget = ThreadBudget(budget.cores, max(budget.workers, _APPLIED.workers), _APPLIED.threads,
                                  _APPLIED.source)
        if torch.get_num_threads() != budget.threads:
            torch.set_num_threads(budget.threads)
        _APPLIED = budget
    return budget


def current_budget() -> ThreadBudget:
    """The budget set by :func:`apply_thread_budget`, or what the process runs with (one worker)."""
    with _LOCK:
        if _APPLIED is not None:
            return _APPLIED
    return ThreadBudget(available_cores(), 1, torch.get_num_threads(), "torch default")
