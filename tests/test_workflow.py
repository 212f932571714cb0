"""One workflow (explain → listen → the model's answer on each version): the app and the CLI agree, and on a
multi-label model both answer with the card's sigmoid, not a softmax."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from earmark import audio, workflow
from earmark.cli import main
from earmark.models import load_model
from earmark.transforms import get_transform

RATE, LENGTH, LABELS = 8000, 4000, ["dog", "bell", "rain"]


def tagger_module() -> nn.Module:
    """A tiny multi-label tagger: filter-bank energies → three independent logits (biased so that a sigmoid
    and a softmax disagree by far)."""
    torch.manual_seed(0)
    head = nn.Linear(6, 3)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([2.0, -1.0, 0.5]))
    return nn.Sequential(nn.Unflatten(1, (1, LENGTH)), nn.Conv1d(1, 6, 65, stride=16), nn.Tanh(), Energy(), head)


class Energy(nn.Module):
    def forward(self, h):
        return h.pow(2).mean(-1) * 40


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagger")
    path = folder / "tagger.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(tagger_module().eval(), torch.zeros(2, LENGTH)).save(str(path))
    path.with_suffix(".json").write_text(json.dumps(
        {"sample_rate": RATE, "input_length": LENGTH, "labels": LABELS, "activation": "sigmoid"}))
    t = np.arange(LENGTH) / RATE
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1800 * t)).astype(np.float32)
    clip = folder / "clip.wav"
    sf.write(clip, wave, RATE, subtype="FLOAT")
    return path, clip


def test_listening_answers_use_the_cards_sigmoid(tagger):
    path, clip = tagger
    model = load_model(str(path), "cpu")
    assert model.card.multi_label
    x = audio.prepare(audio.load_clip(clip.read_bytes(), name="clip.wav"), sample_rate=RATE,
                      num_samples=LENGTH).wave
    saliency = x.abs()
    heard = workflow.listening(model, get_transform("time", RATE), x, saliency, 0.2)
    assert list(heard) == ["original", "keep", "remove", "soft"]
    with torch.no_grad():
        logits = model(torch.stack([w for w, _ in heard.values()]))
    probs = torch.stack([p for _, p in heard.values()])
    torch.testing.assert_close(probs, logits.sigmoid())
    assert not torch.allclose(probs, logits.softmax(-1), atol=1e-3)
    assert (probs.sum(-1) - 1).abs().max() > 0.05     # independent classes: they need not add up to one


@pytest.mark.timeout(300)
def test_app_players_answer_as_the_cli_on_a_multi_label_model(tagger, tmp_path):
    from dashboard import services as sv

    path, clip = tagger
    out = tmp_path / "cli"
    assert main(["explain", str(clip), "--model", str(path), "--transform", "stft", "--explainer", "saliency",
                 "--set", "n_draws=2", "--topk", "20", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "explanation.json").read_text())
    cli_saliency = np.load(out / "explanation.npz")["saliency"]

    view = sv.decode(clip.read_bytes(), "clip.wav", None, RATE)
    ready = sv.prepared(view.hash, view.clip, RATE, LENGTH, None)
    settings = sv.Settings(clip_hash=ready.hash, clip_name="clip.wav", model=str(path), transform="stft",
                           tparams=(), explainer="saliency", eparams=sv.as_items({"n_draws": 2}), target=None,
                           seed=0)
    exp = sv.job_result(sv.submit_explanation(settings, ready.wave), wait=120)
    np.testing.assert_array_equal(exp.saliency.numpy(), cli_saliency)      # the same explanation job
    players = sv.job_result(sv.listen_job(settings, ready.wave, exp, 0.2), wait=120)

    model = load_model(str(path), "cpu")
    for name, (wave, probs) in players.items():
        cli = summary["listening"][name]
        assert LABELS[int(np.argmax(probs))] == cli["predicted"], name
        assert probs[exp.target] == pytest.approx(cli["target_probability"], abs=1e-6), name
        with torch.no_grad():
            logits = model(torch.as_tensor(wave)[None])[0]
        np.testing.assert_allclose(probs, logits.sigmoid().numpy(), atol=1e-6)   # the card's activation
    # the prediction bar (the clip's answer) and the "original" player agree
    np.testing.assert_allclose(sv.predict(str(path), ready.hash, ready.wave), players["original"][1], atol=1e-6)
