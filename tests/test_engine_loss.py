"""A Ray worker lost during ``earmark evaluate --engine ray`` (killed, with no retries left) stops the run with
one sentence that says which rows ``results.jsonl`` kept; running the same evaluation again finishes the rest,
and the rows equal an uninterrupted local run's."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import torch

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra (pip install 'earmark[ray]')")

from earmark.engines import LocalEngine, RayEngine  # noqa: E402
from earmark.errors import DataError  # noqa: E402
from test_engines import _numbers, _run, _running_worker_pids, cluster  # noqa: E402,F401

pytestmark = pytest.mark.slow


def test_a_lost_worker_is_one_sentence_and_resume_finishes(cluster, tmp_path):  # noqa: F811
    torch.set_num_threads(1)
    slow = {"freqrise": {"n_masks": 1500}}
    out = tmp_path / "ray"
    results = out / "results.jsonl"
    killed: list[int] = []

    def kill_after_first_row():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if results.exists() and results.read_text().count("\n") >= 1:
                pids = _running_worker_pids()
                if pids:
                    os.kill(sorted(pids)[0], signal.SIGKILL)
                    killed.append(1)
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_after_first_row)
    killer.start()
    with pytest.raises(DataError) as info:
        _run(RayEngine(max_retries=0, in_flight=2), out, explainers=("freqrise",), n=3, overrides=slow)
    killer.join()
    message = str(info.value)
    assert killed and "\n" not in message, message
    assert message.startswith("Ray lost the worker running ") and "WorkerCrashedError" in message
    kept = [json.loads(x) for x in results.read_text().splitlines()]
    assert 1 <= len(kept) < 6 and f"keeps {len(kept)} of the 6 rows" in message
    assert f"compute the other {6 - len(kept)}" in message
    resumed = _run(RayEngine(), out, explainers=("freqrise",), n=3, overrides=slow)
    assert resumed.computed == 6 - len(kept) and not resumed.failures
    reference = _run(LocalEngine(), tmp_path / "local", explainers=("freqrise",), n=3, overrides=slow)
    assert _numbers(resumed.rows) == _numbers(reference.rows)
