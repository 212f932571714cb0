"""AppTest helpers for pages whose work runs as jobs: wait for a session's jobs, then rerun the script —
what the page's polling fragment does in a browser."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

TIMEOUT = 600


def unfinished(at: AppTest) -> list:
    """This session's jobs that have not ended (explanations, listening, faithfulness)."""
    jobs = at.session_state["_jobs"] if "_jobs" in at.session_state else {}
    return [j for j in jobs.values() if not j.finished]


def settle(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Wait for this session's jobs to end and rerun until none is left."""
    for _ in range(6):
        for job in unfinished(at):
            assert job.wait(timeout), job
        at.run(timeout=timeout)
        assert not at.exception, [e.value for e in at.exception]
        if not unfinished(at):
            break
    return at


def run(at: AppTest, page: str | None = None, timeout: float = TIMEOUT) -> AppTest:
    """One script run (on ``page`` if given) that must not raise."""
    if page is not None:
        at.session_state["_test_page"] = page
    at.run(timeout=timeout)
    assert not at.exception, [e.value for e in at.exception]
    return at


def explain(at: AppTest) -> AppTest:
    """Click Explain and wait for this session's jobs, as the page's polling fragment does in a browser."""
    at.button(key="explain").click()
    return settle(run(at))
