"""Every public entry point refuses bad input with one sentence (issue 13): the API's ``explain`` and
``get_transform``, the CLI (one-line argparse errors, exit 2), output folders, ``evaluate --n`` and a
results file with a broken tail. Each finding of the issue is reproduced here with its exact message."""

from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from earmark import workflow
from earmark import explain, get_transform
from earmark.cli import main
from earmark.errors import ConfigError
from earmark.evaluate import read_results, run_evaluation
from earmark.metrics import MetricOptions
from earmark.models import MODELS, ModelSpec, from_module, register_model

L, RATE = 1024, 8000


def tiny_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(L, 16), nn.Tanh(), nn.Linear(16, 3))
    return from_module(net, sample_rate=RATE, num_samples=L, labels=("a", "b", "c"), name="fuzz-tiny")


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def tiny_name():
    if "fuzz-tiny" not in MODELS:
        register_model(ModelSpec("fuzz-tiny", "tiny fuzz model", lambda device: tiny_model()))
    return "fuzz-tiny"


@pytest.fixture
def clip_path(tmp_path):
    path = tmp_path / "clip.wav"
    t = np.arange(L) / RATE
    sf.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE, subtype="PCM_16")
    return path


def wave():
    return torch.sin(2 * torch.pi * 440 * torch.arange(L) / RATE)


def cli(argv, capsys):
    """(exit code, stderr) of an in-process ``earmark`` call; argparse's SystemExit is caught."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ---- API: target, seed, waveform, rate ------------------------------------------------------------------

@pytest.mark.parametrize("target, shown", [("abc", "'abc'"), (math.nan, "nan"), (math.inf, "inf"), ([1], "[1]"),
                                           (3.7, "3.7"), (True, "True"), (2.0, "2.0")])
def test_target_must_be_a_class_index(model, target, shown):
    with pytest.raises(ConfigError) as info:
        explain(model, wave(), get_transform("time", RATE), target, method="saliency")
    assert str(info.value) == f"The target must be a class index (a whole number such as 3); got {shown}."


def test_target_out_of_range_and_integer_types(model):
    with pytest.raises(ConfigError, match=r"^Target class 3 does not exist; the model has 3 classes"):
        explain(model, wave(), get_transform("time", RATE), 3, method="saliency")
    for target in (np.int64(2), torch.tensor(2)):
        assert explain(model, wave(), get_transform("time", RATE), target, method="saliency").target == 2


@pytest.mark.parametrize("seed", [2**64, 2**63, -1, 1.5, "7", math.nan])
def test_seed_range(model, seed):
    with pytest.raises(ConfigError) as info:
        explain(model, wave(), get_transform("time", RATE), method="smoothgrad", seed=seed, n_samples=2)
    assert str(info.value).startswith("The seed must be a whole number from 0 to 2**63 - 1; got ")


def test_largest_seed_works(model):
    e = explain(model, wave(), get_transform("time", RATE), method="smoothgrad", seed=2**63 - 1, n_samples=2)
    assert e.seed == 2**63 - 1 and bool(torch.isfinite(e.saliency).all())


def test_waveform_of_the_wrong_length_is_a_sentence(model):
    """Before: 'mat1 and mat2 shapes cannot be multiplied (1x512 and 1024x16)' from inside the model."""
    with pytest.raises(ConfigError) as info:
        explain(model, wave()[:512], get_transform("time", RATE), method="saliency")
    assert str(info.value) == (
        "The waveform has 512 samples; the model 'fuzz-tiny' takes 1024 (0.128 s at 8000 Hz). Fit the clip first "
        "with earmark.audio.prepare(clip, sample_rate=..., num_samples=...).")


def test_waveform_shape_values_and_transform_rate(model):
    with pytest.raises(ConfigError, match=r"^explain takes one waveform of shape \(L,\) or \(1, L\); got shape \(2, 1024\)"):
        explain(model, torch.zeros(2, L), get_transform("time", RATE), method="saliency")
    bad = wave().clone()
    bad[3] = math.nan
    with pytest.raises(ConfigError, match=r"^The waveform contains NaN or infinite samples"):
        explain(model, bad, get_transform("time", RATE), method="saliency")
    with pytest.raises(ConfigError, match=r"^The transform is set for 16000 Hz but the model runs at 8000 Hz\. "
                       r"Build it with get_transform\('stft', 8000, \.\.\.\)\."):
        explain(model, wave(), get_transform("stft", 16000), method="saliency")
    assert explain(model, wave()[None].numpy(), get_transform("time", RATE), method="saliency").saliency.shape == (L,)


@pytest.mark.parametrize("size, shown", [(0, "0"), (-1, "-1"), (2.5, "2.5"), ("abc", "'abc'"), (True, "True")])
def test_batch_size(model, size, shown):
    """Before: 0 ran, -1 raised ValueError from torch.cat, 2.5 and 'abc' TypeError."""
    with pytest.raises(ConfigError) as info:
        explain(model, wave(), get_transform("stft", RATE), method="freqrise", n_masks=20, batch_size=size)
    assert str(info.value) == f"batch_size (items per model call) must be a whole number of at least 1; got {shown}."


@pytest.mark.parametrize("text", ["abc", "0", "-4", "2.5"])
def test_batch_environment_variable(model, monkeypatch, text):
    """Before: EARMARK_BATCH=abc raised ValueError from int() inside the probe."""
    monkeypatch.setenv("EARMARK_BATCH", text)
    with pytest.raises(ConfigError) as info:
        explain(model, wave(), get_transform("stft", RATE), method="freqrise", n_masks=20)
    assert str(info.value) == (f"EARMARK_BATCH must be a whole number of at least 1 (items per model call); got "
                               f"{text!r}. Unset it to size batches automatically.")


@pytest.mark.parametrize("rate, shown", [(0, "0"), (-8000, "-8000"), (8000.5, "8000.5"), (math.nan, "nan"),
                                         ("8000", "'8000'"), (math.inf, "inf")])
def test_transform_rate(rate, shown):
    with pytest.raises(ConfigError) as info:
        get_transform("stft", rate)
    assert str(info.value) == f"The sample rate of the 'stft' transform must be a positive whole number of Hz; got {shown}."


def test_transform_classes_check_the_rate_too():
    from earmark.transforms import STFTTransform

    with pytest.raises(ConfigError, match="positive whole number of Hz; got 0"):
        STFTTransform(0)
    assert get_transform("stft", 8000.0).sample_rate == 8000


# ---- CLI: one-line argparse errors, values, output folders --------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["explain", "c", "--target", "3.7"],      # a label name is allowed ("abc": tests/test_real_models.py)
     "earmark: argument --target: a target is a class index (a whole number such as 3) or a label name, not '3.7' "
     "(see `earmark explain --help`)."),
    (["explain", "c", "--target", "nan"],
     "earmark: argument --target: a target is a class index (a whole number such as 3) or a label name, not 'nan' "
     "(see `earmark explain --help`)."),
    (["explain", "c", "--seed", str(2**64)],
     f"earmark: argument --seed: a seed is a whole number from 0 to 2**63 - 1, not {2**64} (see `earmark explain --help`)."),
    (["explain", "c", "--seed", "-1"],
     "earmark: argument --seed: a seed is a whole number from 0 to 2**63 - 1, not -1 (see `earmark explain --help`)."),
    (["explain", "c", "--topk", "nan"],
     "earmark: argument --topk: expected a number in (0, 100], not 'nan' (see `earmark explain --help`)."),
    (["evaluate", "--task", "synth-tf", "--out", "x", "--n", "-3"],
     "earmark: argument --n: expected a whole number of at least 1, not -3 (see `earmark evaluate --help`)."),
    (["evaluate", "--task", "synth-tf", "--out", "x", "--n", "0"],
     "earmark: argument --n: expected a whole number of at least 1, not 0 (see `earmark evaluate --help`)."),
    (["evaluate", "--task", "synth-tf", "--out", "x", "--fraction", "inf"],
     "earmark: argument --fraction: expected a number in (0, 1], not 'inf' (see `earmark evaluate --help`)."),
    (["bench", "--out", "x", "--curve-masks", "200,abc"],
     "earmark: argument --curve-masks: expected a comma list of whole numbers of at least 1, not '200,abc' "
     "(see `earmark bench --help`)."),
    (["bench", "--out", "x", "--curve", "-5"],
     "earmark: argument --curve: expected a whole number of at least 0, not -5 (see `earmark bench --help`)."),
    (["explain"], "earmark: the following arguments are required: clip (see `earmark explain --help`)."),
    (["explain", "c", "--bogus"], "earmark: unrecognized arguments: --bogus (see `earmark --help`)."),
    (["list", "things"], "earmark: argument what: invalid choice: 'things' (choose from 'models', 'transforms', "
                         "'explainers', 'metrics', 'examples') (see `earmark list --help`)."),
])
def test_argparse_errors_are_one_line(argv, message, capsys):
    """Before: seven lines of usage and a traceback-like block; now one line and exit code 2."""
    code, err = cli(argv, capsys)
    assert code == 2
    assert err == message + "\n"


def test_infinite_cpus_per_task(capsys, tmp_path):
    """Before: --cpus-per-task inf passed the `> 0` check and overflowed in int()."""
    code, err = cli(["evaluate", "--task", "synth-tf", "--engine", "ray", "--cpus-per-task", "inf",
                     "--out", str(tmp_path)], capsys)
    assert code == 2 and err == "earmark: --cpus-per-task must be above 0 (and finite), got inf.\n"


def test_non_finite_settings_exit_2_before_any_work(capsys, tmp_path, monkeypatch):
    """Before: `--set noise_level=nan` exited 0 with an all-NaN map; `ig.n_steps=inf` raised OverflowError."""
    import earmark.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    code, err = cli(["explain", "c", "--explainer", "smoothgrad", "--set", "noise_level=nan", "--out", str(tmp_path)],
                    capsys)
    assert code == 2 and err.startswith("earmark: 'noise_level' must be a finite number in [0, 1]; got 'nan'. ")
    assert err.count("\n") == 1
    code, err = cli(["evaluate", "--task", "synth-tf", "--set", "ig.n_steps=inf", "--out", str(tmp_path)], capsys)
    assert code == 2 and err.startswith("earmark: 'n_steps' must be a finite number in [4, 512]; got 'inf'.")
    assert err.count("\n") == 1


def test_out_naming_a_file(tmp_path, capsys, clip_path, tiny_name):
    target = tmp_path / "taken.txt"
    target.write_text("x")
    code, err = cli(["explain", str(clip_path), "--model", tiny_name, "--out", str(target)], capsys)
    assert code == 2
    assert err == f"earmark: --out '{target}' is a file, not a folder. Give a folder name (it is created if missing).\n"


def test_out_under_a_file(tmp_path, capsys, clip_path, tiny_name):
    (tmp_path / "taken.txt").write_text("x")
    out = tmp_path / "taken.txt" / "sub" / "dir"
    code, err = cli(["explain", str(clip_path), "--model", tiny_name, "--out", str(out)], capsys)
    assert code == 2
    assert err == f"earmark: --out '{out}' lies under '{tmp_path / 'taken.txt'}', which is a file. Give a folder path.\n"


def test_out_unwritable(tmp_path, capsys, clip_path, tiny_name, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o500)
    else:  # root writes anywhere: make the write probe fail the way a read-only folder does
        real = tempfile.TemporaryFile

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and str(dir) == str(out):
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    try:
        code, err = cli(["evaluate", "--task", "synth-tf", "--out", str(out)], capsys)
    finally:
        out.chmod(0o700)
    assert code == 2
    assert err == f"earmark: Cannot write into --out '{out}' (Permission denied). Choose a folder you can write to.\n"


def test_cli_explain_works_on_the_tiny_model(tmp_path, capsys, clip_path, tiny_name):
    code, err = cli(["explain", str(clip_path), "--model", tiny_name, "--transform", "stft", "--explainer", "ig",
                     "--set", "n_steps=4", "--seed", str(2**63 - 1), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "explanation.json").read_text())
    assert summary["seed"] == 2**63 - 1 and summary["params"]["n_steps"] == 4


# ---- results.jsonl resume survives a broken tail ---------------------------------------------------------

class Clips:
    description = "three tiny clips"

    def __init__(self):

        g = torch.Generator().manual_seed(5)
        self.items = [(f"clip{i}", torch.randn(L, generator=g), i % 3)
                      for i in range(3)]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def true_mask(self, name, transform):
        return None


RUN = dict(explainers=["saliency"], transforms=["time"], seed=0, overrides={"saliency": {"n_draws": 2}},
           options=MetricOptions(steps=4, num_random=2, mu_subsets=4), metrics=["deletion_auc"])


@pytest.mark.parametrize("tail", [b"\xff\xfe\x00garbage \xc3\x28", b'{"clip": "clip2", "expl'],
                         ids=["non-utf8", "truncated"])
def test_resume_survives_a_broken_tail(tmp_path, model, monkeypatch, tail):
    """Before: a non-UTF-8 tail made `earmark evaluate` fail with UnicodeDecodeError on resume."""
    out = tmp_path / "run"
    first = run_evaluation(model, Clips(), out=out, **RUN)
    assert first.computed == 3
    path = out / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + tail)            # the last row torn or garbled
    assert len(read_results(path)) == 2
    calls = []
    real = workflow.evaluate_one
    monkeypatch.setattr(workflow, "evaluate_one", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = run_evaluation(model, Clips(), out=out, **RUN)
    assert again.computed == 1 == len(calls) and len(again.rows) == 3
    assert len(read_results(path)) == 3


# ---- server defaults ----------------------------------------------------------------------------------------

def test_server_listens_on_this_machine_by_default():
    """Before: `make run` listened on every interface with no authentication."""
    import shutil
    import subprocess
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "run"], cwd=root, capture_output=True, text=True)
    assert "streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port 8501" in dry.stdout
    dry = subprocess.run(["make", "-n", "run", "HOST=0.0.0.0", "PORT=8600"], cwd=root, capture_output=True, text=True)
    assert "--server.address 0.0.0.0 --server.port 8600" in dry.stdout


def test_a_46_byte_wav_at_22051_hz_is_an_ordinary_clip():
    """The issue's first finding: one sample at 22,051 Hz made prepare build a 2.9 GB kernel for 23 s."""
    import io as _io

    from earmark.audio import load_clip, prepare

    buffer = _io.BytesIO()
    sf.write(buffer, np.array([0.25], np.float32), 22051, format="WAV", subtype="PCM_16")
    data = buffer.getvalue()
    assert len(data) == 46
    ready = prepare(load_clip(data), sample_rate=8000, num_samples=8000)
    assert ready.wave.shape == (8000,) and ready.sample_rate == 8000 and ready.original_rate == 22051
