"""Finite in, finite out: absurd or non-finite audio is refused, and a non-finite map is never a result."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from earmark import explain, from_module, get_transform
from earmark.audio import load_clip
from earmark.errors import AudioError, ConfigError, NumericalError
from earmark.finite import MAX_AMPLITUDE, check_finite

RATE, LENGTH = 8000, 800


class SqrtNet(nn.Module):
    """Finite logits for any input, but d/dx sqrt(x²) at x = 0 is NaN: a NaN gradient map on silence."""

    def forward(self, x):
        return torch.stack([torch.sqrt(x.square()).sum(-1), -torch.sqrt(x.square()).sum(-1)], dim=-1)


def model():
    return from_module(SqrtNet(), sample_rate=RATE, num_samples=LENGTH, labels=["a", "b"])


def test_non_finite_map_is_an_error_not_a_result():
    with pytest.raises(NumericalError, match=r"saliency map of saliency .* not finite"):
        explain(model(), torch.zeros(LENGTH), get_transform("time", RATE), method="saliency")


def test_finite_map_passes_unchanged():
    x = torch.linspace(-0.5, 0.5, LENGTH) + 1e-3
    e = explain(model(), x, get_transform("time", RATE), method="saliency")
    assert check_finite(e) is e and torch.isfinite(e.saliency).all()


@pytest.mark.parametrize("value", [1e19, -3.4e38, MAX_AMPLITUDE * 1.01])
def test_absurd_amplitude_refused_by_the_api(value):
    x = torch.full((LENGTH,), 0.1)
    x[10] = value
    with pytest.raises(ConfigError, match="peaks at .* normalise"):
        explain(model(), x, get_transform("time", RATE), method="saliency")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_samples_refused_by_the_api(value):
    x = torch.full((LENGTH,), 0.1)
    x[3] = value
    with pytest.raises(ConfigError, match="NaN or infinite"):
        explain(model(), x, get_transform("time", RATE), method="saliency")


@pytest.mark.parametrize("value, words", [(np.finfo(np.float32).max, "peaks at"), (1e5, "peaks at"),
                                          (np.inf, "infinite"), (np.nan, "NaN")])
def test_float_wav_with_absurd_or_non_finite_samples_refused_on_decode(value, words):
    wave = np.full(RATE // 10, 0.1, dtype=np.float32)
    wave[5] = value
    buf = io.BytesIO()
    sf.write(buf, wave, RATE, format="WAV", subtype="FLOAT")
    with pytest.raises(AudioError, match=words):
        load_clip(buf.getvalue(), name="loud.wav")


def test_cli_explain_of_a_nan_map_exits_nonzero(tmp_path, capsys, monkeypatch):
    from earmark import explainers
    from earmark.cli import main

    def nan_explain(*args, **kwargs):
        return check_finite(type("E", (), {"saliency": torch.tensor([float("nan")]), "uncertainty": torch.zeros(1),
                                           "method": "ig", "transform": "mel"})())
    monkeypatch.setattr(explainers, "explain", nan_explain)
    import earmark
    import earmark.jobs.work
    monkeypatch.setattr(earmark, "explain", nan_explain)
    monkeypatch.setattr(earmark.jobs.work, "explain", nan_explain)   # where the CLI's job calls it
    # a seed of its own: the job service's result cache must not answer with an earlier test's map
    code = main(["explain", "digit_7_en-us", "--model", "audionet-digits", "--explainer", "ig", "--set", "n_steps=4",
                 "--seed", "918273", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "not finite" in err and err.count("\n") == 1
