"""``earmark evaluate`` killed with SIGKILL (twice, once leaving a torn last line) and resumed gives the same
bits as an uninterrupted run at the same seeds: every row, every metric, nothing lost or written twice.

Three clips of the synthetic time–frequency task, a cheap gradient explainer (saliency) and a stochastic one
(FreqRISE), the local engine, each run a fresh ``earmark`` process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from earmark.evaluate import read_results

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["evaluate", "--task", "synth-tf", "--model", "synth-tf", "--n", "3", "--explainers", "saliency,freqrise",
        "--transforms", "stft", "--steps", "5", "--set", "freqrise.n_masks=3000", "--device", "cpu", "--quiet",
        "--seed", "7"]
TIMING = {"seconds"}


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT / "core"), str(ROOT)]))
    return env


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "earmark", *ARGS, "--out", str(out)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _kill_after(out: Path, rows: int, timeout: float = 600) -> bool:
    """Start a run and SIGKILL it once results.jsonl holds ``rows`` lines; False if it finished first."""
    proc = _start(out)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if _lines(out / "results.jsonl") >= rows:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    proc.wait()
    return False


def _numbers(path: Path) -> dict:
    return {key: {k: v for k, v in row.items() if k not in TIMING} for key, row in read_results(path).items()}


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, "-m", "earmark", *ARGS, "--out", str(reference)], env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _numbers(reference / "results.jsonl")
    assert len(expected) == 6

    out = tmp_path / "killed"
    results = out / "results.jsonl"
    assert _kill_after(out, 1), "the first run finished before it could be killed"
    first = len(read_results(results))
    whole = results.read_bytes().splitlines(keepends=True)[0]
    with open(results, "ab") as fh:   # a kill in the middle of a write leaves half a row
        fh.write(whole[: len(whole) // 2])
    _kill_after(out, _lines(results) + 1)   # a second kill, later (it may also finish: either is fine)
    final = subprocess.run([sys.executable, "-m", "earmark", *ARGS, "--out", str(out)], env=_env(),
                           capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-2000:]
    assert 1 <= first < 6

    rows = [line for line in results.read_text().splitlines() if line.strip()]
    parsed = []
    for line in rows:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            continue   # the torn half row stays in the file and is skipped
    keys = [(r["clip"], r["explainer"], r["transform"], r["settings"]) for r in parsed]
    assert len(keys) == len(set(keys)) == 6, keys   # none lost, none written twice
    got = _numbers(results)
    assert got.keys() == expected.keys()
    for key in expected:   # JSON floats round-trip exactly: equal text is equal bits
        assert got[key] == expected[key], key
