"""``earmark explain --segments``: segments.csv, per-segment WAVs, the summary, and one-sentence errors."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf

from earmark.cli import main


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_explain_segments_grid_shapley(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["explain", "digit_7_en-us", "--model", "melcnn-digits", "--segments", "grid:0.25",
                 "--explainer", "shapley", "--target", "7", "--out", str(out), "--quiet"])
    assert code == 0
    rows = _rows(out / "segments.csv")
    assert list(rows[0]) == ["start", "end", "label", "score", "stderr"] and len(rows) == 4
    summary = json.loads((out / "segments.json").read_text())
    total = sum(float(r["score"]) for r in rows)
    assert abs(total - (summary["value_all"] - summary["value_none"])) < 1e-4      # efficiency, as written
    assert summary["method"] == "shapley" and summary["params"]["estimator"] == "exact"
    assert {r["curve"] for r in summary["faithfulness"]} == {"deletion", "insertion"}
    files = {h["file"] for h in summary["listening"]}
    assert "original.wav" in files and "top3.wav" in files
    alone = sorted((out / "segments").glob("*_alone.wav"))
    without = sorted((out / "segments").glob("*_without.wav"))
    assert len(alone) == len(without) == 4
    wave, sr = sf.read(alone[0])
    assert sr == 8000 and wave.shape == (8000,)
    printed = capsys.readouterr().out
    assert "deletion AUC" in printed and "±" in printed


def test_explain_segments_from_a_csv_with_a_map_explainer(tmp_path):
    seg = tmp_path / "events.csv"
    seg.write_text("start,end,label,score\n0.2,0.5,first,0.9\n0.5,0.8,second,0.4\n")
    out = tmp_path / "out"
    code = main(["explain", "digit_7_en-us", "--model", "melcnn-digits", "--segments", str(seg),
                 "--explainer", "saliency", "--out", str(out), "--quiet"])
    assert code == 0
    rows = _rows(out / "segments.csv")
    assert [r["label"] for r in rows] == ["first", "second"]
    assert json.loads((out / "segments.json").read_text())["params"]["explainer"] == "saliency"


@pytest.mark.parametrize("segments, message", [
    ("missing.TextGrid", "does not exist"),
    ("grid:abc", "grid:SECONDS"),
])
def test_explain_segments_bad_source_one_sentence(tmp_path, capsys, segments, message):
    code = main(["explain", "digit_7_en-us", "--model", "melcnn-digits", "--segments", segments,
                 "--explainer", "shapley", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_explain_segments_unknown_explainer(tmp_path, capsys):
    code = main(["explain", "digit_7_en-us", "--model", "melcnn-digits", "--segments", "auto",
                 "--explainer", "nope", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2 and "Choose a segment method" in capsys.readouterr().err
