"""Faults of the machine get one sentence: a full disk, a results file that is a folder or a FIFO."""

from __future__ import annotations

import errno
import os

import pytest

from earmark.cli import main
from earmark.models import MODELS, ModelSpec, register_model
from test_evaluate import L, _wav, toy_model


@pytest.fixture
def setup(tmp_path):
    if "toy-faults" not in MODELS:
        register_model(ModelSpec("toy-faults", "toy", lambda device: toy_model()))
    for i in range(2):
        _wav(tmp_path / f"c{i}.wav", n=L)
    (tmp_path / "m.csv").write_text("path,label\nc0.wav,a\nc1.wav,b\n")
    out = tmp_path / "ev"
    args = ["evaluate", "--data", str(tmp_path / "m.csv"), "--model", "toy-faults", "--explainers", "saliency",
            "--transforms", "time", "--out", str(out), "--set", "saliency.n_draws=2", "--metrics", "deletion_auc",
            "--quiet", "--device", "cpu"]
    return out, args


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_results_file_that_is_not_a_file(setup, capsys, kind):
    out, args = setup
    out.mkdir()
    (out / "results.jsonl").mkdir() if kind == "folder" else os.mkfifo(out / "results.jsonl")
    assert main(args) == 2           # returns at once: a FIFO is never opened
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("a folder, not a file" in err if kind == "folder" else "FIFO" in err)


def test_disk_full_while_appending_rows(setup, capsys, monkeypatch):
    from earmark import evaluate

    out, args = setup
    real, calls = evaluate._append, []

    def full_after_one(path, row):
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        calls.append(row)
        real(path, row)
    monkeypatch.setattr(evaluate, "_append", full_after_one)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full (errno 28)" in err and "kept" in err
    assert len((out / "results.jsonl").read_text().splitlines()) == 1   # the row before the fault is kept
    monkeypatch.setattr(evaluate, "_append", real)
    assert main(args) == 0                                              # and the same command resumes
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_disk_full_while_explain_writes(tmp_path, capsys, monkeypatch):
    import earmark.plots as plots

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "map.png"))
    monkeypatch.setattr(plots, "save_figure", full)
    code = main(["explain", "digit_7_en-us", "--model", "audionet-digits", "--explainer", "saliency", "--set",
                 "n_draws=2", "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "the disk is full (errno 28)" in err, err
