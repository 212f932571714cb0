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
(``st.cache_resource``) and each session's jobs in its own state, and paces its polls itself
(``dashboard.live.poll_interval``); ``earmark explain`` runs the same job in the foreground with
:func:`run_foreground`.

The package, by idea: :mod:`~earmark.jobs.spec` (the key), :mod:`~earmark.jobs.cost` (passes and work
units from a spec), :mod:`~earmark.jobs.cache` (the bounded result cache), :mod:`~earmark.jobs.job` (one
job, its callbacks, running it to its end), :mod:`~earmark.jobs.service` (the pool and its settings) and
:mod:`~earmark.jobs.work` (what explanation and listening jobs run).
"""
from .cache import ResultCache, nbytes
from .cost import budget_params, estimate_passes, work_units
from .job import (FINISHED, STATUSES, BudgetExceeded, Job, JobCancelled, JobContext, JobError, QueueFull,
                  run_foreground)
from .service import JobService, JobSettings
from .spec import KINDS, Items, JobSpec
from .work import explanation_work, listening_work

__all__ = ["BudgetExceeded", "FINISHED", "Items", "Job", "JobCancelled", "JobContext", "JobError", "JobService",
           "JobSettings", "JobSpec", "KINDS", "QueueFull", "ResultCache", "STATUSES", "budget_params",
           "estimate_passes", "explanation_work", "listening_work", "nbytes", "run_foreground", "work_units"]
