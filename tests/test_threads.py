"""The CPU thread budget: workers × torch threads ≤ cores, set once per process (issue 27)."""

from __future__ import annotations

import pytest
import torch

from earmark import threads as th
from earmark.errors import ConfigError
from earmark.jobs import JobService, JobSettings


@pytest.fixture(autouse=True)
def _restore_threads():
    before, applied = torch.get_num_threads(), th._APPLIED
    th._APPLIED = None
    yield
    th._APPLIED = applied
    torch.set_num_threads(before)


@pytest.mark.parametrize("cores, workers, expected", [(2, 2, 1), (2, 1, 1), (4, 1, 3), (16, 3, 5), (1, 4, 1),
                                                    (8, 2, 4), (16, 1, 16)])
def test_budget_shares_the_cores(cores, workers, expected):
    """workers × threads ≤ cores, one core kept free on small machines."""
    budget = th.thread_budget(workers, cores=cores, env={})
    assert budget.threads == expected
    assert budget.workers * budget.threads <= max(cores, budget.workers)
    assert budget.source == th.RULE


def test_variable_overrides_and_bad_values_get_a_sentence():
    assert th.thread_budget(2, cores=2, env={"EARMARK_THREADS": "3"}).threads == 3
    assert th.thread_budget(2, cores=2, env={"OMP_NUM_THREADS": "2"}).source == "OMP_NUM_THREADS"
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ConfigError, match="EARMARK_THREADS must be a whole number"):
            th.thread_budget(2, cores=2, env={"EARMARK_THREADS": bad})


def test_apply_sets_torch_threads_and_never_raises_them_for_a_second_pool(monkeypatch):
    monkeypatch.setattr(th, "available_cores", lambda: 4)
    first = th.apply_thread_budget(4, env={})               # 4 cores, one kept free: 3 // 4 → 1
    assert first.threads == 1 and torch.get_num_threads() == 1
    second = th.apply_thread_budget(1, env={})           # a one-worker caller in the same process
    assert second.threads == 1 and torch.get_num_threads() == 1
    assert "4 workers × 1 torch thread" in second.describe()


def test_job_service_applies_the_budget_when_its_workers_start(monkeypatch):
    monkeypatch.setattr(th, "available_cores", lambda: 2)
    monkeypatch.delenv("EARMARK_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    service = JobService(JobSettings(workers=2))
    try:
        assert service.threads is not None
        assert service.threads.workers * service.threads.threads <= 2
        assert torch.get_num_threads() == 1
    finally:
        service.shutdown()


def test_the_earmark_command_applies_the_budget_and_bench_shows_it(tmp_path):
    """``python -m earmark`` (a program of its own) sets the budget; the bench report names it."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "EARMARK_THREADS")}
    env["EARMARK_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-m", "earmark", "bench", "--model", "synth-freq", "--explainers", "saliency",
                          "--transforms", "fourier", "--quick", "--out", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 worker × 1 torch thread (EARMARK_THREADS)" in (tmp_path / "bench.md").read_text()
