"""A record of a run's model calls, so that a stopped run can continue where it stopped, bit for bit.

Stop and Continue (:meth:`earmark.jobs.Job.stop`, :meth:`earmark.jobs.JobService.continue_job`) need the
continuation to end with exactly the map an uninterrupted run gives at the same seed. Two ways lead there:

* save each explainer's own state (running sums, counts, the random generator's position, a Sobol
  engine, the control variate's running mean, the auto-stop tracker...) at every chunk end and restore it;
* record what the model answered, and on Continue run the explainer again from its seed, answering every
  model call already made from the record.

Earmark does the second. The model calls are what costs (>90 % of a sampling run's time); everything
between them — drawing masks and noise from the seeded generator, the running moments, the stop rules —
is cheap, deterministic and recomputed by the very same code, so the continuation passes through the
same generator positions, the same sums and the same chunk boundaries as the first run and cannot
disagree with it. No explainer needs resume code of its own (every method that scores through
:meth:`earmark.probe.Probe.score` or :meth:`~earmark.probe.Probe.grad` continues: FreqRISE, RELAX,
SmoothGrad, IG, occlusion...), and a piece of state forgotten in a hand-written snapshot cannot break the
bits. Each recorded answer carries a fingerprint of its input (shape and sum); a continuation that asks
something else — another clip, another chunk size — is refused rather than answered wrongly.

The record is one entry per model sub-call (the probe's chunk), kept in memory on the job; an answer that
lands after the Stop click (the call in flight) is recorded too, so no model pass is thrown away. Mask
optimisations (learnable and minimal masks) differentiate through the model at every step and are not
recorded: their Continue recomputes from the start (same bits, no time saved).
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import Tensor

from .errors import EarmarkError


class TapeMismatch(EarmarkError):
    """A continuation asked the model something other than the stopped run did at the same point."""


def fingerprint(t: Tensor) -> tuple[tuple[int, ...], float]:
    """(shape, sum in float64) of a real or complex tensor: what a recorded answer was the answer to."""
    t = t.detach()
    if t.is_complex():
        t = torch.view_as_real(t)
    return tuple(t.shape), float(t.double().sum())


class Tape:
    """The model's answers of one run, by (call, sub-call): written as the run goes, read by a continuation.

    Attributes:
        replayed: model items answered from the record so far (a gradient item counts once).
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[tuple, Any]] = {}
        self._lock = threading.Lock()
        self.replayed = 0

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> int:
        """Model items (masks, points) whose answers are recorded."""
        with self._lock:
            return sum(fp[0][0] for fp, _ in self._entries.values())

    def take(self, call: int, part: int, query: Tensor) -> Any | None:
        """The recorded answer to sub-call ``part`` of call ``call`` (``None`` if there is none).

        Raises:
            TapeMismatch: the record holds an answer to another question at this place.
        """
        with self._lock:
            got = self._entries.get((call, part))
        if got is None:
            return None
        if got[0] != fingerprint(query):
            raise TapeMismatch("The continuation asked the model something other than the stopped run did "
                               "(another clip, setting or chunk size); start the computation over.")
        self.replayed += int(query.shape[0])
        return got[1]

    def put(self, call: int, part: int, query: Tensor, answer: Any) -> None:
        """Record ``answer`` to sub-call ``part`` of call ``call`` asked with ``query``."""
        with self._lock:
            self._entries[(call, part)] = (fingerprint(query), answer)


__all__ = ["Tape", "TapeMismatch", "fingerprint"]
