"""Data sets, the resumable evaluation, the bench and their commands, on tiny toy setups."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import earmark.evaluate as evaluate_mod
from earmark import workflow
from earmark.bench import quick_settings, run_bench
from earmark.cli import main
from earmark.data.datasets import Item, balanced_subset, fsdd_entries, open_dataset, parse_manifest
from earmark.errors import ConfigError, DataError
from earmark.evaluate import budget_notes, parse_overrides, read_results, run_evaluation
from earmark.metrics import MetricOptions
from earmark.models import MODELS, ModelSpec, from_module, register_model

L = 64
LABELS = ("a", "b", "c")


def toy_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(L, 8), nn.Tanh(), nn.Linear(8, 3))
    return from_module(net, sample_rate=8000, num_samples=L, labels=LABELS, name="toy")


class ToyClips:
    """Four in-memory clips; no ground truth."""

    description = "four toy clips"

    def __init__(self):
        g = torch.Generator().manual_seed(5)
        self.items = [Item(f"clip{i}", torch.randn(L, generator=g), i % 3) for i in range(4)]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def true_mask(self, name, transform):
        return None


RUN = dict(explainers=["ig", "freqrise"], transforms=["time", "fourier"], seed=0,
           overrides={"ig": {"n_steps": 4}, "freqrise": {"n_masks": 20}},
           options=MetricOptions(steps=5, num_random=2, mu_subsets=8))


def _metric_columns(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if k not in ("seconds",)} for r in rows]


def test_evaluate_resumes_without_recomputing(tmp_path, monkeypatch):
    model, clips = toy_model(), ToyClips()
    calls = []
    real = workflow.evaluate_one
    monkeypatch.setattr(workflow, "evaluate_one", lambda *a, **k: calls.append(a[4]) or real(*a, **k))

    def stop_after_three(done, total, eta, label):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_evaluation(model, clips, out=tmp_path / "run", progress=stop_after_three, **RUN)
    assert len(calls) == 3 and len(read_results(tmp_path / "run" / "results.jsonl")) == 3

    calls.clear()
    seen = []
    report = run_evaluation(model, clips, out=tmp_path / "run", progress=lambda *a: seen.append(a), **RUN)
    assert report.computed == 16 - 3 == len(calls)
    assert seen[-1][:2] == (16, 16) and seen[-1][2] is not None           # ETA once something was computed
    first = (tmp_path / "run" / "summary.md").read_text()

    calls.clear()
    again = run_evaluation(model, clips, out=tmp_path / "run", **RUN)
    assert again.computed == 0 and not calls
    assert (tmp_path / "run" / "summary.md").read_text() == first

    fresh = run_evaluation(model, clips, out=tmp_path / "fresh", **RUN)   # never interrupted
    assert _metric_columns(tmp_path / "run" / "results.csv") == _metric_columns(tmp_path / "fresh" / "results.csv")
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    assert "| ig | time | 4 |" in first and "n_masks = 20 (default 3000) — **reduced budget**" in first
    assert fresh.markdown.count("±") >= 4 * 8


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"clip": "a", "explainer": "ig", "transform": "time", "settings": "x"}) + "\n{\"clip\": \"b\", ")
    assert list(read_results(path)) == [("a", "ig", "time", "x")]
    evaluate_mod.append_row(path, {"clip": "c", "explainer": "ig", "transform": "time", "settings": "x"})
    assert len(read_results(path)) == 2


def test_changed_settings_are_new_rows(tmp_path):
    model, clips = toy_model(), ToyClips()
    run = dict(RUN, explainers=["ig"], transforms=["time"])
    run_evaluation(model, clips, out=tmp_path, **run)
    changed = run_evaluation(model, clips, out=tmp_path, **dict(run, overrides={"ig": {"n_steps": 6}}))
    assert changed.computed == 4


def test_overrides_and_budget_notes(tmp_path):
    assert parse_overrides(["freqrise.n_masks=1000", "stft.n_fft=256"]) == {
        "freqrise": {"n_masks": "1000"}, "stft": {"n_fft": "256"}}
    with pytest.raises(ConfigError, match="EXPLAINER.SETTING=VALUE"):
        parse_overrides(["n_masks=1000"])
    assert budget_notes({"freqrise": {"n_masks": 1000}}) == ["freqrise: n_masks = 1000 (default 3000) — **reduced budget**"]
    with pytest.raises(ConfigError, match="neither an explainer"):
        run_evaluation(toy_model(), ToyClips(), explainers=["ig"], transforms=["time"], out=tmp_path / "unused",
                       overrides={"nosuch": {"x": 1}})


# ---- data sets -----------------------------------------------------------------------------------

def _wav(path, n=80, sr=8000):
    sf.write(str(path), np.linspace(-0.1, 0.1, n, dtype=np.float32), sr)
    return path


def test_manifest_parsing(tmp_path):
    for name in ("x.wav", "y.wav"):
        _wav(tmp_path / name)
    good = tmp_path / "m.csv"
    good.write_text("path,label\nx.wav,b\n\ny.wav,2\n")
    entries = parse_manifest(good, LABELS)
    assert [(e.name, e.label) for e in entries] == [("x.wav", 1), ("y.wav", 2)]

    def bad(text, match):
        path = tmp_path / "bad.csv"
        path.write_text(text)
        with pytest.raises(DataError, match=match):
            parse_manifest(path, LABELS)

    bad("path,label\nx.wav\n", r"line 2: expected 2 fields")
    bad("x.wav,a\nmissing.wav,a\n", r"line 2: the file .*missing.wav does not exist")
    bad("x.wav,zebra\n", r"line 1: label 'zebra' is not a class .* a, b, c")
    bad("x.wav,7\n", r"label '7'")
    bad(",a\n", r"line 1: the path is empty")
    bad("path,label\n", "lists no clips")
    with pytest.raises(DataError, match="does not exist"):
        parse_manifest(tmp_path / "nope.csv", LABELS)


def test_fsdd_folder_parsing_and_split(tmp_path):
    rec = tmp_path / "recordings"
    rec.mkdir()
    for name in ("3_theo_0.wav", "3_theo_7.wav", "1_jackson_4.wav", "notes.wav"):
        _wav(rec / name)
    assert [(e.name, e.label) for e in fsdd_entries(tmp_path, split="test")] == [("1_jackson_4.wav", 1), ("3_theo_0.wav", 3)]
    assert [e.name for e in fsdd_entries(tmp_path, split="train")] == ["3_theo_7.wav"]
    with pytest.raises(DataError, match="No FSDD recordings"):
        fsdd_entries(tmp_path / "empty")
    from earmark.data.fsdd import parse_name
    with pytest.raises(DataError, match=r"\{digit\}_\{speaker\}_\{index\}"):
        parse_name("three_theo_0.wav")

    card = from_module(nn.Linear(L, 10), sample_rate=8000, num_samples=L, labels=[str(d) for d in range(10)]).card
    clips = open_dataset(data=tmp_path, card=card, split="test")
    items = list(clips)
    assert [i.name for i in items] == ["1_jackson_4.wav", "3_theo_0.wav"] and items[0].wave.shape == (L,)


def test_balanced_subset():
    labels = [0] * 6 + [1] * 6 + [2] * 2
    pick = balanced_subset(labels, 6, generator=torch.Generator().manual_seed(0))
    assert sorted(labels[i] for i in pick) == [0, 0, 1, 1, 2, 2]
    pick = balanced_subset(labels, 10, generator=torch.Generator().manual_seed(0))   # class 2 runs out
    assert len(pick) == 10 and sum(labels[i] == 2 for i in pick) == 2
    pick = balanced_subset(labels, 3, per_class=True, generator=torch.Generator().manual_seed(0))
    assert sorted(labels[i] for i in pick) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert [labels[i] for i in pick] == [0, 1, 2] * 2 + [0, 1]          # round-robin: every prefix balanced
    assert balanced_subset(labels, None, generator=torch.Generator()) == list(range(14))


def test_smaller_subset_is_a_prefix_of_a_larger_one():
    """Same seed, smaller n → the first clips of the larger run, so its results are reused."""
    labels = [c for c in range(10) for _ in range(30)]
    small = balanced_subset(labels, 10, generator=torch.Generator().manual_seed(0))
    large = balanced_subset(labels, 50, generator=torch.Generator().manual_seed(0))
    assert large[:10] == small and len(set(large)) == 50
    assert all(sorted(labels[i] for i in large[:k * 10]) == sorted(list(range(10)) * k) for k in range(1, 6))


def test_no_data_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("EARMARK_DATA", raising=False)
    with pytest.raises(DataError, match="--data DIR"):
        open_dataset(card=toy_model().card)


# ---- bench and the commands ---------------------------------------------------------------------

def test_bench_quick_on_a_toy_model(tmp_path):
    report = run_bench(toy_model(), torch.randn(L), explainers=["ig", "freqrise"], transforms=["time", "fourier"],
                       out=tmp_path, quick=True)
    assert [(r.explainer, r.transform) for r in report.rows] == [
        ("ig", "time"), ("ig", "fourier"), ("freqrise", "time"), ("freqrise", "fourier")]
    ig, fr = report.rows[0], report.rows[2]
    assert ig.backward_passes > 0 and ig.target == 1.5 and fr.backward_passes == 0 and fr.target == 1.3
    assert all(r.wall_s > 0 and r.floor_s > 0 and r.ratio == pytest.approx(r.wall_s / r.floor_s) for r in report.rows)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert len(data["rows"]) == 4 and data["meta"]["quick"] is True
    assert "| explainer | transform | passes | wall s | floor s | ratio |" in (tmp_path / "bench.md").read_text()
    assert quick_settings("freqrise")["n_masks"] == 32


@pytest.fixture
def toy_registered():
    if "toy-eval" not in MODELS:
        register_model(ModelSpec("toy-eval", "toy", lambda device: toy_model()))
    return "toy-eval"


def test_evaluate_and_bench_commands(tmp_path, toy_registered, capsys):
    for i in range(3):
        _wav(tmp_path / f"c{i}.wav", n=L)
    (tmp_path / "m.csv").write_text("path,label\nc0.wav,a\nc1.wav,b\nc2.wav,c\n")
    args = ["evaluate", "--data", str(tmp_path / "m.csv"), "--model", toy_registered, "--explainers", "ig",
            "--transforms", "time", "--n", "2", "--out", str(tmp_path / "ev"), "--set", "ig.n_steps=4",
            "--steps", "4", "--quiet", "--device", "cpu"]
    assert main(args) == 0
    assert "| ig | time | 2 |" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 computed, 2 reused" in capsys.readouterr().out
    assert main(["bench", "--model", toy_registered, "--clip", str(tmp_path / "c0.wav"), "--explainers", "saliency",
                 "--transforms", "time", "--out", str(tmp_path / "b"), "--quick", "--device", "cpu"]) == 0
    assert (tmp_path / "b" / "bench.json").exists()
    assert main(["evaluate", "--data", str(tmp_path / "m.csv"), "--model", toy_registered, "--explainers", "nope",
                 "--out", str(tmp_path / "x")]) == 2
    assert "Unknown explainer 'nope'" in capsys.readouterr().err


def test_rows_scored_with_more_metrics_are_reused_and_fewer_recomputed(tmp_path):
    model, clips = toy_model(), ToyClips()
    run = dict(RUN, explainers=["ig"], transforms=["time"])
    first = run_evaluation(model, clips, out=tmp_path, metrics=["I", "D", "complexity"], **run)
    assert first.computed == 4
    fewer = run_evaluation(model, clips, out=tmp_path, metrics=["I", "complexity"], **run)
    assert fewer.computed == 0 and [r["I"] for r in fewer.rows] == [r["I"] for r in first.rows]
    more = run_evaluation(model, clips, out=tmp_path, metrics=["I", "RI"], **run)
    assert more.computed == 4 and [r["I"] for r in more.rows] == [r["I"] for r in first.rows]  # seeded per metric


def test_time_frequency_task_is_scored_on_its_own_cells(tmp_path):
    """The key bursts' own power map scores 1 on the task cells; evaluate reports the metric per row."""
    from earmark.data.datasets import synthetic_set
    from earmark.models import load_model
    from earmark.transforms import get_transform

    model = load_model("synth-tf", "cpu")
    clips = synthetic_set("synth-tf", card=model.card, n=4, seed=0)
    stft = get_transform("stft", model.card.sample_rate)
    power = stft.pool(stft.analyze(clips.key_wave).abs() ** 2)             # the truth itself, as maps
    assert [clips.cell_scorer(name, stft)(power[i]) for i, name in enumerate(clips.names())] == [1.0] * 4
    assert synthetic_set("synth-freq", card=load_model("synth-freq", "cpu").card, n=2, seed=0).cell_scorer(
        "synth-freq-0000", stft) is None
    report = run_evaluation(model, clips, explainers=["ig"], transforms=["stft"], out=tmp_path,
                            metrics=["task_cell_accuracy", "relevance_rank_accuracy"], overrides={"ig": {"n_steps": 8}})
    assert all(r["task_cell_accuracy"] in (0.0, 0.5, 1.0) and 0 <= r["relevance_rank_accuracy"] <= 1
               for r in report.rows) and len(report.rows) == 4
    assert "task_cell_accuracy" in report.markdown
