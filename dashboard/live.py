"""Polling a job from the page: progress, queue position, estimate, Stop / Cancel, Pin, and the partial map.

``watch(job, ...)`` draws a fragment that reruns every half second on its own (``st.fragment(run_every=…)``),
so the rest of the page — view toggles, pinning, other pages — stays live while the job runs. When the job
ends the fragment reruns the whole app once; the page then finds the result in the service's cache (or
the job's error) and draws it as usual. Drawing stays with the page: ``draw(explanation)`` is the page's
own function, called here with the latest partial estimate.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import streamlit as st

from . import services as sv

#: Seconds between two polls (the heatmap is redrawn about twice a second) while few sessions watch jobs;
#: a classroom shares that rate (:func:`poll_interval`).
POLL_SECONDS = 0.5


def poll_interval(watchers: int, *, base: float = POLL_SECONDS, full_rate: int = 4, cap: float = 4.0) -> float:
    """Seconds between two polls of a page watching a job, given how many sessions watch jobs on the server.

    Every poll re-runs a fragment of the page (Python, under the GIL) and redraws its heatmaps, so the polls
    of a whole classroom compete with the jobs they watch: up to ``full_rate`` watchers poll every ``base``
    seconds, more share that rate (30 watchers: every 3.75 s each), at most ``cap`` seconds apart.

    >>> poll_interval(1), poll_interval(8), poll_interval(30), poll_interval(100)
    (0.5, 1.0, 3.75, 4.0)
    """
    return min(cap, base * max(1.0, watchers / full_rate))


def status_line(job) -> str:
    """One line for a person: where the job is, how far, and how long it should still take."""
    eta = job.eta()
    left = "" if eta is None else f", about {_seconds(eta)} left"
    shared = len(job.sessions) - 1
    also = f" · shared with {shared} other {'request' if shared == 1 else 'requests'}" if shared > 0 else ""
    if job.status == "queued":
        pos = job.position()
        where = f"{_ordinal(pos)} in the queue" if pos else "about to start"
        wait = "estimating the wait" if eta is None else f"about {_seconds(eta)} until the map is final"
        return f"Waiting: {where} · {wait}{also}"
    if job.status == "running":
        parts = [job.stage or "working"]
        if job.done is not None and job.total:
            parts.append(f"{job.done:,} / {job.total:,} {job.unit}")
        else:
            parts.append(f"{job.progress:.0%}")
        if job.convergence is not None:
            parts.append(f"convergence {job.convergence:.2f}")
        return " · ".join(parts) + f" · {job.elapsed:.1f} s{left}{also}"
    return job.error or job.status


def watch(job, *, key: str, draw: Callable[[Any], None] | None = None, wait: float = 0.0,
          label: str = "", stoppable: bool = False) -> None:
    """Draw the live state of ``job`` and keep it current until it ends.

    Args:
        job: an :class:`earmark.jobs.Job` that has not ended.
        key: unique per watched job on the page (widget keys).
        draw: ``draw(explanation)`` draws a partial estimate (the page's heatmap function).
        wait: seconds to wait for a first estimate before the first draw (the run right after a click).
        label: what is computed, for the status line.
        stoppable: an explanation: **Stop** ends it keeping its last estimate as a partial result (Continue
            finishes it), and **Pin** keeps it running when the page shows something else; otherwise the
            button is **Cancel**.
    """
    if wait > 0 and job.partial is None and not job.finished:
        deadline = time.monotonic() + wait
        while job.partial is None and not job.finished and time.monotonic() < deadline:
            job.wait(max(0.0, deadline - time.monotonic()), since=job.version)

    @st.fragment(run_every=poll_interval(sv.job_service().watchers(), base=POLL_SECONDS))
    def _live() -> None:
        if job.finished:
            st.rerun()  # the page draws the result (or the job's message) in a full run
        c1, c2, *c3 = st.columns([8, 2, 2] if stoppable else [5, 1])
        text = f"{label} · {status_line(job)}" if label else status_line(job)
        c1.progress(min(max(job.progress, 0.0), 1.0), text=text)
        if stoppable:
            if c2.button("Stop", key=f"stop_{key}", icon=":material/stop_circle:", width="stretch",
                         help="End it now and keep the map so far as a partial result; Continue finishes it."):
                sv.stop(job)
                st.rerun()
            pinned = job.pinned
            if c3[0].button("Unpin" if pinned else "Pin", key=f"pin_{key}", icon=":material/push_pin:",
                         width="stretch", type="primary" if pinned else "secondary",
                         help="Keep computing when you switch explainer, clip or model (otherwise it pauses "
                              "for the map on screen and stops after a grace period)."):
                sv.pin(job, not pinned)
                st.rerun()
        elif c2.button("Cancel", key=f"cancel_{key}", icon=":material/stop_circle:", width="stretch"):
            sv.cancel(job)
            st.rerun()
        partial = job.partial
        if draw is not None and partial is not None:
            draw(partial)

    _live()


def ended_message(job) -> None:
    """A cancelled job says so (info); a failed one shows its sentence (error)."""
    if job.status == "cancelled":
        st.info(f"{job.error or 'Cancelled.'} Press the button again to start over.")
    elif job.status == "stopped":
        st.info(f"{job.error or 'Stopped.'} Press Continue to finish it from where it stopped.")
    elif job.status == "failed":
        st.error(job.error or "The computation failed.")


def result_or_watch(job, *, key: str, wait: float = 0.0, label: str = "", container=None) -> Any:
    """The job's result if it is done (waiting up to ``wait`` s), else a live status and ``None``.

    A failed or cancelled job shows its message and gives ``None``.
    """
    if wait > 0 and not job.finished:
        job.wait(wait)
    if job.status == "done":
        return job.result
    with container if container is not None else st.container():
        if job.finished:
            ended_message(job)
        else:
            watch(job, key=key, label=label)
    return None


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
