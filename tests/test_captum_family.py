"""The Captum family in every domain, and Earmark's gradient methods cross-checked against Captum.

Cross-checks (time domain, bundled AudioNet, 1e-5): Earmark's saliency = Captum ``Saliency(abs=True)``;
Earmark's IG with the zero baseline and ``spacing="uniform"`` (the midpoint rule) = Captum's
``IntegratedGradients(method="riemann_middle")``; Earmark's SmoothGrad (``mode="magnitude"``) = Captum's
``NoiseTunnel(Saliency(abs=True), nt_type="smoothgrad")`` with the same noise draws (both draw
``N(0, σ²)`` per sample from one seeded generator; Earmark's σ = ``noise_level·(max − min)``).

Where they differ by definition (not tested for equality): Earmark's IG default integrates from three
baselines with cubic spacing; Earmark's SmoothGrad adds its noise to the *waveform* in every domain, Captum's
NoiseTunnel (and ``captum:NoiseTunnel``) to the input it is given, here the domain's coefficients — the same
only in the time domain.

The ``captum:*`` explainers are checked on a linear model, where DeepLIFT, feature ablation, Shapley
sampling, KernelSHAP and least-squares LIME have the closed form ``Σ_{j∈g} w_j x_j`` per feature block g.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError, ModelError
from earmark.explainers import EXPLAINERS, explain
from earmark.explainers.captum_family import grid_groups
from earmark.models import from_module, load_model
from earmark.transforms import get_transform

captum_attr = pytest.importorskip("captum.attr")

L, C, SR = 512, 3, 8000
# Grad-CAM needs a Conv2d over a spectrogram (not this linear model): tests/test_gradcam.py covers it
CAPTUM = [n for n in EXPLAINERS.names() if n.startswith("captum:") and n != "captum:LayerGradCam"]
SMALL = {"captum:GradientShap": dict(n_samples=4), "captum:NoiseTunnel": dict(nt_samples=3),
         "captum:KernelShap": dict(n_samples=40, cells=8), "captum:Lime": dict(n_samples=40, cells=8),
         "captum:ShapleyValueSampling": dict(n_samples=1, cells=8), "captum:FeatureAblation": dict(cells=8),
         "captum:Occlusion": dict(window=0.3, stride=0.3)}


@pytest.fixture(scope="module")
def audionet():
    return load_model("audionet-digits", "cpu")


@pytest.fixture(scope="module")
def speechlike():
    """A 1 s clip with some structure (a chirp in noise), the same every run."""
    g = torch.Generator().manual_seed(11)
    t = torch.arange(8000) / 8000
    return 0.3 * torch.sin(2 * torch.pi * (200 + 600 * t) * t) * torch.exp(-((t - 0.5) / 0.2) ** 2) \
        + 0.02 * torch.randn(8000, generator=g)


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(5)
    net = nn.Linear(L, C)
    model = from_module(net.eval(), sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="linear")
    clip = torch.randn(L, generator=torch.Generator().manual_seed(2)) * 0.3
    return model, net.weight.detach(), clip


def scale(t: torch.Tensor) -> float:
    return float(t.abs().max())


# ---- Earmark against Captum ---------------------------------------------------------------------------
def test_saliency_equals_captum(audionet, speechlike):
    time = get_transform("time", SR)
    ours = explain(audionet, speechlike, time, method="saliency", seed=0, n_draws=2)
    ref = captum_attr.Saliency(audionet).attribute(speechlike[None].clone(), target=ours.target, abs=True)[0]
    assert torch.allclose(ours.saliency, ref, rtol=0, atol=1e-5 * scale(ref))


def test_integrated_gradients_equal_captum(audionet, speechlike):
    time = get_transform("time", SR)
    ours = explain(audionet, speechlike, time, method="ig", seed=0, baselines="zero", spacing="uniform", n_steps=16)
    ref = captum_attr.IntegratedGradients(audionet).attribute(
        speechlike[None].clone(), baselines=torch.zeros(1, 8000), target=ours.target, n_steps=16,
        method="riemann_middle")[0]
    assert torch.allclose(ours.saliency, ref, rtol=0, atol=1e-5 * scale(ref))


def test_smoothgrad_equals_captum_noise_tunnel(audionet, speechlike):
    time = get_transform("time", SR)
    seed, n, level = 123, 6, 0.1
    ours = explain(audionet, speechlike, time, method="smoothgrad", seed=seed, n_samples=n, noise_level=level,
                   mode="magnitude")
    sigma = float(level * (speechlike.max() - speechlike.min()))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ref = captum_attr.NoiseTunnel(captum_attr.Saliency(audionet)).attribute(
            speechlike[None].clone(), nt_type="smoothgrad", nt_samples=n, stdevs=sigma, target=ours.target,
            abs=True)[0]
    assert torch.allclose(ours.saliency, ref, rtol=0, atol=1e-5 * scale(ref))


# ---- the captum:* explainers ------------------------------------------------------------------------------
@pytest.mark.parametrize("domain", ["time", "fourier", "stft", "mel", "dwt"])
@pytest.mark.parametrize("method", CAPTUM)
def test_every_captum_method_runs_in_every_domain(linear, method, domain):
    model, _, clip = linear
    t = get_transform(domain, SR)
    settings = dict(SMALL.get(method, {}))
    if any(p.name == "baselines" for p in EXPLAINERS.get(method).params):
        settings["baselines"] = "zero" if domain != "stft" else "zero+noise+blur"
    e = explain(model, clip, t, method=method, seed=0, **settings)
    assert tuple(e.saliency.shape) == t.map_shape(L)
    assert bool(torch.isfinite(e.saliency).all()) and float(e.saliency.abs().sum()) > 0


def test_deeplift_is_exact_on_a_linear_model_and_conserves_in_fourier(linear):
    model, w, clip = linear
    e = explain(model, clip, get_transform("time", SR), target=1, method="captum:DeepLift", baselines="zero")
    torch.testing.assert_close(e.saliency, clip * w[1], atol=1e-6, rtol=0)
    f = explain(model, clip, get_transform("fourier", SR), target=1, method="captum:DeepLift")
    assert float(f.saliency.sum()) == pytest.approx(float(clip @ w[1]), abs=1e-5)
    assert float(f.extras["completeness_gap"].abs().max()) < 1e-5


@pytest.mark.parametrize("method,extra", [
    ("captum:FeatureAblation", {}),
    ("captum:ShapleyValueSampling", {"n_samples": 2}),
    ("captum:KernelShap", {"n_samples": 200}),
    ("captum:Lime", {"n_samples": 200, "alpha": 0.0}),
])
def test_perturbation_methods_give_block_contributions_on_a_linear_model(linear, method, extra):
    """Time domain, zero reference: a block's attribution is Σ_{j∈block} w_j x_j (an additive model)."""
    model, w, clip = linear
    e = explain(model, clip, get_transform("time", SR), target=2, method=method, seed=0, baselines="zero",
                cells=8, **extra)
    groups = grid_groups((1, L), 8)[0]
    truth = torch.zeros(8).index_add_(0, groups, clip * w[2])[groups]
    torch.testing.assert_close(e.saliency, truth, atol=2e-4, rtol=1e-3)


def test_groups_keep_wavelet_levels_apart():
    g = grid_groups((6, 4001), 64)
    assert int(g.max()) + 1 == 6 * 11
    for row in range(6):                          # every block lies in one row (level)
        assert set(g[row].tolist()).isdisjoint(set(g[(row + 1) % 6].tolist()))


def test_same_seed_same_map_and_global_state_untouched(linear):
    model, _, clip = linear
    t = get_transform("stft", SR)
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    a = explain(model, clip, t, method="captum:KernelShap", seed=4, n_samples=30, cells=8, baselines="zero")
    assert torch.equal(torch.random.get_rng_state(), before)
    b = explain(model, clip, t, method="captum:KernelShap", seed=4, n_samples=30, cells=8, baselines="zero")
    c = explain(model, clip, t, method="captum:KernelShap", seed=5, n_samples=30, cells=8, baselines="zero")
    assert torch.equal(a.saliency, b.saliency) and not torch.equal(a.saliency, c.saliency)


def test_gradient_methods_refused_without_gradients(linear):
    model, _, clip = linear
    blind = from_module(model.module, sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="blind")
    blind.card = dataclasses.replace(blind.card, gradients=False, format="onnx")
    t = get_transform("time", SR)
    with pytest.raises(ModelError, match="needs gradients"):
        explain(blind, clip, t, method="captum:DeepLift")
    explain(blind, clip, t, method="captum:FeatureAblation", cells=4, baselines="zero")   # forward only: fine


def test_missing_captum_is_a_sentence(linear, monkeypatch):
    import sys

    model, _, clip = linear
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ConfigError, match=r"earmark\[captum\]"):
        explain(model, clip, get_transform("time", SR), method="captum:DeepLift")
