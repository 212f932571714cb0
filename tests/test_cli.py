"""The earmark command line: help texts, explain end to end, clear errors without tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from earmark.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("explain", "train", "evaluate", "bench", "list"):
        assert command in out
    for command in ("explain", "train", "evaluate", "bench", "list"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "usage: earmark " + command in capsys.readouterr().out


def test_explain_writes_everything(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["explain", "digit_7_en-us", "--model", "melcnn-digits", "--transform", "stft", "--explainer", "ig",
                 "--set", "n_steps=8", "--seed", "3", "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("explanation.npz", "explanation.json", "heatmap.png", "original.wav", "keep.wav", "remove.wav",
                 "soft.wav"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "explanation.json").read_text())
    assert summary["method"] == "ig" and summary["seed"] == 3 and summary["params"]["n_steps"] == 8
    assert summary["prediction"] == "7"                       # the mel CNN hears the espeak "seven"
    assert len(summary["probabilities"]) == 10 and abs(sum(summary["probabilities"]) - 1) < 1e-4
    assert "--set n_steps=8" in summary["command"] and "--seed 3" in summary["command"]
    check = summary["completeness"]                           # IG's check sits at the top level
    assert set(check) >= {"gap", "output_change", "relative_gap", "ok", "warning"}
    assert summary["warnings"] == ([] if check["ok"] else [check["warning"]])
    assert ("warning: IG's completeness gap" in capsys.readouterr().err) == (not check["ok"])
    maps = np.load(out / "explanation.npz")
    assert maps["saliency"].shape == maps["uncertainty"].shape == (129, 126)
    wave, sr = sf.read(out / "keep.wav")
    assert sr == 8000 and wave.shape == (8000,)


@pytest.mark.parametrize("argv, message", [
    (["explain", "no-such-clip.wav", "--model", "melcnn-digits"], "neither a file nor a bundled example"),
    (["explain", "digit_7_en-us", "--model", "melcnn-digits", "--explainer", "shap"], "Unknown explainer 'shap'"),
    (["explain", "digit_7_en-us", "--model", "melcnn-digits", "--set", "n_steps=0"], "'n_steps' must lie in"),
    (["explain", "digit_7_en-us", "--model", "melcnn-digits", "--set", "n_steps"], "NAME=VALUE"),
    (["explain", "digit_7_en-us", "--model", "nope"], "Unknown model 'nope'"),
    (["explain", "digit_7_en-us", "--model", "melcnn-digits", "--transform", "dwt", "--tset", "level=12"],
     "levels"),
    (["evaluate", "--task", "synth-tf", "--n", "2", "--address", "auto"], "belong to --engine ray"),
    (["evaluate", "--task", "synth-tf", "--n", "2", "--engine", "ray", "--cpus-per-task", "0"],
     "--cpus-per-task must be above 0"),
])
def test_bad_input_is_a_message_not_a_traceback(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_empty_file_is_explained(tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert main(["explain", str(empty), "--model", "melcnn-digits", "--out", str(tmp_path), "--quiet"]) == 2
    assert "empty" in capsys.readouterr().err.lower()


def test_parser_defaults_match_readme():
    args = build_parser().parse_args(["explain", "clip.wav"])
    assert (args.model, args.transform, args.explainer, args.seed) == ("audionet-digits", "stft", "ig", 0)


def test_train_records_a_portable_command(tmp_path, monkeypatch):
    """Cards and logs are committed: the recorded command must not hold this machine's absolute paths."""
    from earmark.cli.train import portable_argv

    data = tmp_path / "shared" / "data" / "fsdd"
    work = tmp_path / "repo"
    data.mkdir(parents=True)
    work.mkdir()
    monkeypatch.chdir(work)
    argv = ["train", "audionet", "--data", str(data), f"--out={tmp_path / 'out'}", "--seed", "0"]
    assert portable_argv(argv) == ["train", "audionet", "--data", "../shared/data/fsdd", "--out=../out",
                                   "--seed", "0"]
