"""What a job costs, from its spec alone: model passes (for the server's cap) and the work a person watches.

Each explainer declares its cost model (:attr:`~earmark.explainers.ExplainerSpec.passes`), its budget
parameters and its work units; this module only dispatches on the job's kind.
"""

from __future__ import annotations

from ..explainers import EXPLAINERS
from .spec import JobSpec


def estimate_passes(spec: JobSpec) -> int:
    """Model passes (forward + backward items) the job will need at most, from the spec alone.

    Faithfulness: deletion and insertion curves (``2 (steps + 1)``) and the single-point scores (12);
    listening: the four versions' predictions; an explanation: its explainer's cost model
    (:meth:`~earmark.explainers.ExplainerSpec.cost`, which ``tests/test_jobs.py`` checks against a run of
    every registered explainer).
    """
    if spec.kind == "faithfulness":
        return 2 * (int(dict(spec.options).get("steps", 20)) + 1) + 12
    if spec.kind == "listening":
        return 4
    return EXPLAINERS.get(spec.explainer).cost(dict(spec.eparams))


def work_units(spec: JobSpec) -> tuple[int, str] | None:
    """``(total, unit)`` of an explanation's budget for a person (``(3000, "masks")``), or ``None``."""
    if spec.kind != "explanation" or spec.explainer not in EXPLAINERS:
        return None
    return EXPLAINERS.get(spec.explainer).work_units(dict(spec.eparams))


def budget_params(spec: JobSpec) -> tuple[str, ...]:
    """The explainer's declared budget parameters (named in a refusal); none for derived jobs."""
    if spec.kind != "explanation" or spec.explainer not in EXPLAINERS:
        return ()
    return EXPLAINERS.get(spec.explainer).budget



__all__ = ["budget_params", "estimate_passes", "work_units"]
