"""``earmark evaluate`` on a real local Ray instance: the same rows as the local engine, and a unit whose
worker is killed mid-task is retried elsewhere and written once.

The Ray instance is started by the tests (``ray.init`` with two worker CPUs on 127.0.0.1) and stopped at the
end of the module. The model is the synthetic time–frequency task's (loaded by name in each worker from the
on-disk cache that ``load_model`` fills).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import torch

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra (pip install 'earmark[ray]')")

from earmark.data.datasets import open_dataset  # noqa: E402
from earmark.engines import LocalEngine, RayEngine, make_engine  # noqa: E402
from earmark.errors import ConfigError  # noqa: E402
from earmark.evaluate import read_results, run_evaluation  # noqa: E402
from earmark.metrics import MetricOptions  # noqa: E402
from earmark.models import load_model  # noqa: E402

MODEL = "synth-tf"
METRICS = ["deletion_auc", "insertion_auc", "I", "D", "relevance_rank_accuracy"]
OPTIONS = MetricOptions(steps=5)
TIMING = {"seconds"}


@pytest.fixture(scope="module")
def cluster():
    torch.set_num_threads(1)
    load_model(MODEL)  # trains or reads the cached weights once, before the workers look for them
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def _clips(n):
    return open_dataset(task=MODEL, card=load_model(MODEL).card, n=n, seed=0)


def _run(engine, out, *, explainers=("ig", "freqrise"), n=3, overrides=None):
    return run_evaluation(load_model(MODEL), _clips(n), explainers=list(explainers), transforms=["stft", "dwt"],
                          out=out, metrics=METRICS, seed=0, options=OPTIONS, engine=engine, model_source=MODEL,
                          overrides=overrides or {"ig": {"n_steps": 8}, "freqrise": {"n_masks": 64}})


def _numbers(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_ray_rows_equal_local_rows_at_the_same_seeds(cluster, tmp_path):
    torch.set_num_threads(1)  # the workers run one thread each; the same here gives the same float sums
    local = _run(LocalEngine(), tmp_path / "local")
    remote = _run(RayEngine(), tmp_path / "ray")
    assert local.computed == remote.computed == 3 * 2 * 2
    assert not local.failures and not remote.failures
    assert _numbers(remote.rows) == _numbers(local.rows)
    # the driver wrote every row once, in the same resumable file format
    lines = (tmp_path / "ray" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 12 and len(read_results(tmp_path / "ray" / "results.jsonl")) == 12
    # a rerun on the Ray engine reuses everything
    again = _run(RayEngine(), tmp_path / "ray")
    assert again.computed == 0 and _numbers(again.rows) == _numbers(local.rows)


def _running_worker_pids():
    """Worker processes busy with a unit: Ray titles them ``ray::_ray_task`` while a task runs."""
    import psutil

    pids = set()
    for proc in psutil.process_iter(["cmdline"]):
        if any("ray::_ray_task" in part for part in (proc.info["cmdline"] or ())):
            pids.add(proc.pid)
    return pids


def test_a_killed_worker_has_its_unit_retried_and_nothing_is_lost_or_written_twice(cluster, tmp_path):
    torch.set_num_threads(1)
    slow = {"freqrise": {"n_masks": 1500}}
    reference = _run(LocalEngine(), tmp_path / "local", explainers=("freqrise",), n=2, overrides=slow)
    killed: list[int] = []

    def kill_one():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = _running_worker_pids()
            if pids:
                pid = sorted(pids)[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one)
    killer.start()
    report = _run(RayEngine(max_retries=3), tmp_path / "ray", explainers=("freqrise",), n=2, overrides=slow)
    killer.join()
    assert killed, "no running task was found to kill"
    assert not report.failures and report.computed == 4
    lines = [json.loads(x) for x in (tmp_path / "ray" / "results.jsonl").read_text().splitlines()]
    keys = [(r["clip"], r["explainer"], r["transform"]) for r in lines]
    assert len(keys) == len(set(keys)) == 4
    assert _numbers(report.rows) == _numbers(reference.rows)


def test_engine_options_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="belong to --engine ray"):
        make_engine("local", address="auto")
    with pytest.raises(ConfigError, match="--cpus-per-task must be above 0"):
        make_engine("ray", cpus_per_task=0)
    with pytest.raises(ConfigError, match="'local' or 'ray'"):
        make_engine("dask")


def test_ray_engine_refuses_a_model_it_cannot_rebuild(cluster, tmp_path):
    from torch import nn

    from earmark.models import from_module

    net = from_module(nn.Sequential(nn.Linear(16, 2)), sample_rate=8000, num_samples=16, labels=("a", "b"))
    engine = RayEngine()
    units = iter([object()])
    from earmark.engines import Work

    with pytest.raises(ConfigError, match="rebuilds the model in each worker"):
        next(engine.run(units, Work(model=net, model_source=None, transforms={}, params={}, metrics=[],
                                    options=OPTIONS)))
