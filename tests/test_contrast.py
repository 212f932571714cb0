"""Contrastive targets: "A rather than B" is the difference of the two classes' scores.

On a linear model ``f(x) = W x`` the contrastive gradient is ``W_A − W_B`` in the time domain, and its
pull-back into any domain follows from the synthesis map, so every answer here is analytic.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError
from earmark.explainers import EXPLAINERS, explain
from earmark.models import from_module
from earmark.probe import Probe
from earmark.transforms import get_transform

L, C, SR = 512, 4, 8000
A, B = 1, 3


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(7)
    net = nn.Linear(L, C, bias=True)
    model = from_module(net.eval(), sample_rate=SR, num_samples=L, labels=[str(i) for i in range(C)], name="linear")
    return model, net.weight.detach()


@pytest.fixture(scope="module")
def clip():
    return torch.randn(L, generator=torch.Generator().manual_seed(3)) * 0.2


def test_probe_readout_is_the_difference(linear, clip):
    model, w = linear
    probe = Probe(model, get_transform("time", SR), clip, target=A, contrast=B)
    values, grads = probe.grad(probe.coeffs[None], readout="logit")
    logits = model(clip[None])[0]
    assert float(values[0].detach()) == pytest.approx(float((logits[A] - logits[B]).detach()), abs=1e-5)
    torch.testing.assert_close(grads[0], w[A] - w[B], atol=1e-6, rtol=0)
    # another class read explicitly is not contrasted (metrics read other classes through the same probe)
    torch.testing.assert_close(probe.read(clip[None], "logit", target=2), logits[2:3], atol=1e-6, rtol=0)


def test_saliency_and_ig_are_the_contrastive_gradient(linear, clip):
    model, w = linear
    time = get_transform("time", SR)
    sal = explain(model, clip, time, target=A, contrast=B, method="saliency", seed=0)
    torch.testing.assert_close(sal.saliency, (w[A] - w[B]).abs(), atol=1e-6, rtol=0)
    assert sal.meta["contrast"] == B
    ig = explain(model, clip, time, target=A, contrast=B, method="ig", seed=0, baselines="zero", spacing="uniform",
                 n_steps=8)
    torch.testing.assert_close(ig.saliency, clip * (w[A] - w[B]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("domain", ["fourier", "stft", "dwt"])
def test_ig_completeness_holds_for_the_difference(linear, clip, domain):
    model, w = linear
    ig = explain(model, clip, get_transform(domain, SR), target=A, contrast=B, method="ig", seed=0,
                 baselines="zero", n_steps=8, spacing="uniform")
    assert float(ig.saliency.sum()) == pytest.approx(float(clip @ (w[A] - w[B])), abs=1e-4)


def test_fourier_saliency_is_the_pulled_back_gradient(linear, clip):
    """In the orthonormal rFFT, |∂f/∂z_k| = |rfft(W_A − W_B)_k|, doubled off DC and Nyquist."""
    model, w = linear
    sal = explain(model, clip, get_transform("fourier", SR), target=A, contrast=B, method="saliency", seed=0)
    g = torch.fft.rfft(w[A] - w[B], norm="ortho").abs()
    g[1:-1] *= 2
    torch.testing.assert_close(sal.saliency, g, atol=1e-5, rtol=1e-4)


def test_sampling_map_is_linear_in_the_score(linear, clip):
    """FreqRISE on logits: the map of A − B equals map(A) − map(B) at the same seed (same masks)."""
    model, _ = linear
    stft = get_transform("stft", SR)
    kw = dict(method="freqrise", seed=5, n_masks=64, readout="logit")
    both = explain(model, clip, stft, target=A, contrast=B, **kw).saliency
    diff = explain(model, clip, stft, target=A, **kw).saliency - explain(model, clip, stft, target=B, **kw).saliency
    torch.testing.assert_close(both, diff, atol=1e-4, rtol=1e-4)


def test_captum_deeplift_contrast_on_a_linear_model(linear, clip):
    pytest.importorskip("captum")
    model, w = linear
    e = explain(model, clip, get_transform("time", SR), target=A, contrast=B, method="captum:DeepLift", seed=0,
                baselines="zero")
    torch.testing.assert_close(e.saliency, clip * (w[A] - w[B]), atol=1e-5, rtol=0)


def test_contrast_refusals_are_sentences(linear, clip):
    model, _ = linear
    time = get_transform("time", SR)
    with pytest.raises(ConfigError, match="differ"):
        explain(model, clip, time, target=A, contrast=A, method="saliency")
    with pytest.raises(ConfigError, match="class index"):
        explain(model, clip, time, target=A, contrast=C, method="saliency")
    with pytest.raises(ConfigError, match="rather than"):
        explain(model, clip, time, target=A, contrast=B, method="relax")
    assert {"saliency", "ig", "smoothgrad", "freqrise"} <= {s.name for s in EXPLAINERS if s.contrastive}


def test_cli_contrast(tmp_path):
    from earmark.cli import main

    out = tmp_path / "out"
    import soundfile as sf

    wav = tmp_path / "clip.wav"
    sf.write(wav, (torch.randn(8000, generator=torch.Generator().manual_seed(0)) * 0.1).numpy(), 8000)
    rc = main(["explain", str(wav), "--model", "audionet-digits", "--explainer", "saliency", "--transform", "time",
               "--target", "1", "--contrast", "7", "--set", "n_draws=2", "--out", str(out), "--quiet"])
    assert rc == 0
    import json

    summary = json.loads((out / "explanation.json").read_text())
    assert summary["contrast"] == 7
