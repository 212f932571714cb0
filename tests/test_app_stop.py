"""The Explore page's Stop, Pin and Continue: Stop leaves a partial map with its label (exportable, pinnable),
Continue finishes it with the map an uninterrupted run gives, and switching away abandons the job.

The job is held at its first estimate by an observer on the worker thread (released by Stop), so the test
does not race a fast model: what it checks is what the page does, not how fast the machine is.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from apptest_jobs import TIMEOUT, run, settle
from test_app import _service, make_app, texts

pytestmark = pytest.mark.timeout(900)


def _job(at):
    jobs = [j for j in at.session_state["_jobs"].values() if j.spec.kind == "explanation"]
    return jobs[-1]


def _hold_at_first_estimate(job) -> None:
    """The worker thread waits after the first estimate until the job is stopped or cancelled."""
    def hold(j):
        if threading.current_thread().name.startswith("earmark-job") and j.partial is not None:
            while not j.cancel_requested:
                time.sleep(0.01)
    job.add_observer(hold)


def _start(seed: int):
    """Explore with FreqRISE (800 masks, the whole budget), Explain clicked, the job held at its first estimate."""
    at = run(make_app(w_seed=seed, w_explainer="freqrise", p_explainer_freqrise_n_masks=800,
                      p_explainer_freqrise_stop="budget", p_explainer_freqrise_stop_at_stability=0.0))
    at.button(key="explain").click()
    run(at)
    job = _job(at)
    _hold_at_first_estimate(job)
    return at, job


def test_stop_leaves_a_labelled_partial_map_and_continue_finishes_it():
    _service()
    at, job = _start(7171)
    while job.partial is None and not job.finished:
        job.wait(5, since=job.version)
    assert job.status == "running" and job.partial is not None
    run(at)
    assert at.button(key="pin_explain") is not None            # Pin is drawn while the job runs
    at.button(key="stop_explain").click()
    run(at)
    assert job.status == "stopped"
    run(at)
    page = texts(at)
    done = job.result.meta["budget_used"]
    assert "Partial result" in page and f"stopped after {done:,} of 800 masks" in page
    titles = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert f"(partial, {done:,} of 800)" in titles
    # exported like any result: the JSON says partial, with the masks used
    summary = json.loads(_json_of(at))
    assert summary["stopped"] and summary["partial"] and summary["budget_used"] == done
    # listened to and pinned like any result: its listening job is keyed apart from the final map's
    heard = [j for j in at.session_state["_jobs"].values() if j.spec.kind == "listening"]
    assert heard and all(dict(j.spec.options)["partial"] == done for j in heard)
    at.button(key="pin").click()
    run(at)
    assert at.session_state["slots"][-1]["title"].endswith(f"partial ({done:,} masks)")
    at.button(key="continue").click()
    run(at)
    more = _job(at)
    assert more is not job
    settle(at, TIMEOUT)
    assert more.status == "done" and "Partial result" not in texts(at)
    # the same map as an uninterrupted run of the same spec
    from earmark.jobs import JobService, JobSettings, explanation_work
    from dashboard.services.models import _model_and_transform

    settings = at.session_state["current"]["settings"]
    model, transform = _model_and_transform(settings)
    wave = torch.as_tensor(at.session_state["current"]["ready"].wave, dtype=torch.float32)
    # computed the way the app computes (a job on a worker thread at the service's thread budget), so the
    # comparison does not depend on the thread count the test's own thread was given by earlier tests
    fresh = JobService(JobSettings(workers=1))
    try:
        uninterrupted = fresh.submit(more.spec, explanation_work(more.spec, model, wave, transform))
        assert uninterrupted.wait(TIMEOUT) and uninterrupted.status == "done"
        whole = uninterrupted.result
    finally:
        fresh.shutdown()
    assert torch.equal(whole.saliency, more.result.saliency) and more.result.meta.get("replayed_passes", 0) >= done


def _json_of(at) -> str:
    """The page's JSON export, built as its download button builds it."""
    from dashboard import services as sv

    cur = at.session_state["current"]
    exp = _job(at).result                         # the stopped job's partial result, as the page shows it
    return sv.json_bytes(cur["settings"], exp, "clip").decode()


def test_switching_explainer_abandons_the_running_job_unless_pinned():
    service = _service()
    at, job = _start(7272)
    at.session_state["w_explainer"] = "saliency"                # the person looks at something else
    run(at)
    assert job.abandoned_at is not None and not job.pinned
    at.session_state["w_explainer"] = "freqrise"                # back within the grace period: taken back
    run(at)
    assert job.abandoned_at is None
    run(at)
    at.button(key="pin_explain").click()
    run(at)
    assert job.pinned
    at.session_state["w_explainer"] = "saliency"
    run(at)
    assert job.abandoned_at is None and not job.finished        # pinned: not abandoned
    service.cancel(job)
