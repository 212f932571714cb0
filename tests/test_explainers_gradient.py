"""Gradient explainers (saliency, SmoothGrad, IG, WAM-SG, WAM-IG) checked against known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError
from earmark.explainers import EXPLAINERS, explain
from earmark.models.base import from_module
from earmark.transforms import get_transform

SR = 8000
L = 512
C = 3
TRANSFORM_SETTINGS = {
    "time": {},
    "fourier": {},
    "stft": {"n_fft": 128, "hop": 32},
    "mel": {"n_fft": 128, "hop": 32, "n_mels": 16},
    "dwt": {"wavelet": "sym2", "level": 3},
}
DOMAINS = tuple(TRANSFORM_SETTINGS)
# Few draws/steps where the number doesn't matter, so the suite stays quick on a CPU.
FAST = {
    "saliency": {"n_draws": 4},
    "smoothgrad": {"n_samples": 6},
    "ig": {"n_steps": 8},
    "wam_sg": {"n_samples": 6},
    "wam_ig": {"n_steps": 8},
}
METHOD_DOMAINS = [(m, d) for m in ("saliency", "smoothgrad", "ig") for d in DOMAINS] + [
    ("wam_sg", "dwt"), ("wam_ig", "dwt")]


def transform(name: str, length: int = L):
    return get_transform(name, SR, **TRANSFORM_SETTINGS[name])


def wrap(net: nn.Module, length: int = L):
    return from_module(net, sample_rate=SR, num_samples=length, labels=[str(i) for i in range(C)])


def linear_model(length: int = L, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Linear(length, C, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.randn(C, length, generator=g) / math.sqrt(length))
    return wrap(net, length), net.weight.detach().clone()


def tanh_mlp(length: int = L, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(length, 16), nn.Tanh(), nn.Linear(16, C))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(p.shape[-1])))
    return wrap(net, length)


def clip(length: int = L, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / SR
    return 0.6 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.randn(length, generator=g)


def rfft_gradient_weights(length: int) -> torch.Tensor:
    """Multiplicity of each rFFT bin in the real signal: 1 for DC (and Nyquist when L is even), else 2."""
    k = torch.arange(length // 2 + 1)
    weights = torch.full(k.shape, 2.0)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    return weights


# ---- saliency ------------------------------------------------------------------------------------
def test_saliency_of_linear_model_in_time_is_abs_weight():
    model, w = linear_model()
    x = clip()
    for c in range(C):
        e = explain(model, x, transform("time"), c, method="saliency", seed=0)
        assert torch.equal(e.saliency, w[c].abs())
        assert float(e.uncertainty.abs().max()) < 1e-7   # a constant gradient does not move


@pytest.mark.parametrize("length", [L, L - 1])
def test_saliency_of_linear_model_in_fourier_is_doubled_spectrum(length):
    # x = irfft(z, ortho) = (1/√L)[Re z_0 + 2 Σ_{0<k<L/2} Re(z_k e^{2πikn/L}) + Re z_{L/2}(−1)^n]
    # ⇒ ∂f/∂Re z_k + i ∂f/∂Im z_k = m_k · (1/√L) Σ_n w_n e^{−2πikn/L} = m_k · rfft(w, ortho)_k,
    # with m_k = 1 at DC and Nyquist and 2 at every other bin (z_k also stands for its mirror bin).
    model, w = linear_model(length)
    e = explain(model, clip(length), transform("fourier"), 1, method="saliency", seed=0)
    expected = torch.fft.rfft(w[1].double(), norm="ortho").abs() * rfft_gradient_weights(length).double()
    torch.testing.assert_close(e.saliency.double(), expected, rtol=1e-5, atol=1e-7)


def test_saliency_uncertainty_is_positive_on_a_nonlinear_model():
    e = explain(tanh_mlp(), clip(), transform("time"), 0, method="saliency", seed=0, noise_level=0.1)
    assert float(e.uncertainty.max()) > 0


# ---- integrated gradients: completeness in real and complex domains --------------------------------
@pytest.mark.parametrize("domain", DOMAINS)
def test_ig_completeness(domain):
    model, x, t = tanh_mlp(), clip(), transform(domain)
    with torch.no_grad():
        f_x = model(x[None])[0]
        f_0 = model(t.synthesize(torch.zeros_like(t.analyze(x[None])), L))[0]
    e = explain(model, x, t, 0, method="ig", n_steps=256)
    diff = float(f_x[0] - f_0[0])
    assert abs(diff) > 0.1                                        # a meaningful test
    gap = float(e.extras["completeness_gap"][0])
    assert abs(gap) <= 1e-3 * abs(diff)
    # the pooled map keeps the total (mel pools bins into bands)
    assert abs(float(e.saliency.double().sum()) - diff) <= 1e-3 * abs(diff)


@pytest.mark.parametrize("method,domain", [("ig", "stft"), ("ig", "fourier"), ("wam_ig", "dwt")])
def test_ig_first_look_is_the_final_saliency_and_zero_only_costs_a_third(method, domain):
    """The map handed out early is the final saliency; ``baselines="zero"`` gives it alone, cheaper."""
    model, x, t = tanh_mlp(), clip(), transform(domain)
    seen = []
    full = explain(model, x, t, 0, method=method, seed=3, n_steps=32, first_look=seen.append)
    quick = explain(model, x, t, 0, method=method, seed=3, n_steps=32, baselines="zero")
    assert len(seen) == 1 and torch.equal(seen[0], full.saliency) and torch.equal(quick.saliency, full.saliency)
    assert float(quick.uncertainty.abs().max()) == 0.0 and float(full.uncertainty.abs().max()) > 0
    assert quick.meta["backward_passes"] == 32 + 2 and full.meta["backward_passes"] == 3 * 32 + 5
    assert torch.equal(full.extras["baseline_maps"][0], full.saliency)


def test_first_look_is_ignored_by_methods_without_it():
    seen = []
    explain(tanh_mlp(), clip(), transform("time"), 0, method="saliency", first_look=seen.append)
    assert seen == []


# ---- SmoothGrad ----------------------------------------------------------------------------------
@pytest.mark.parametrize("domain", ["time", "fourier", "mel"])
@pytest.mark.parametrize("mode", ["magnitude", "mean_gradient"])
def test_smoothgrad_without_noise_is_the_gradient(domain, mode):
    model, x, t = tanh_mlp(), clip(), transform(domain)
    plain = explain(model, x, t, 2, method="saliency").saliency
    exact = explain(model, x, t, 2, method="smoothgrad", noise_level=0.0, n_samples=4, mode=mode)
    torch.testing.assert_close(exact.saliency, plain, rtol=1e-5, atol=1e-7)
    assert float(exact.uncertainty.max()) <= 1e-10 * float(plain.max()) ** 2 + 1e-12
    # σ → 0: the error shrinks with σ
    errors = [float((explain(model, x, t, 2, method="smoothgrad", noise_level=s, n_samples=4, mode=mode).saliency
                     - plain).abs().max()) for s in (1e-2, 1e-5)]
    assert errors[1] < errors[0]
    assert errors[1] <= 1e-3 * float(plain.max())


def test_smoothgrad_grad_x_input_without_noise_is_gradient_times_input():
    model, x, t = tanh_mlp(), clip(), transform("time")
    plain = explain(model, x, t, 1, method="saliency").saliency
    g_sign = torch.func.grad(lambda v: model(v[None])[0, 1])(x)
    e = explain(model, x, t, 1, method="smoothgrad", noise_level=0.0, n_samples=3, mode="grad_x_input")
    torch.testing.assert_close(e.saliency, x * g_sign, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(e.saliency.abs(), x.abs() * plain, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("noise_level", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("mode", ["magnitude", "mean_gradient"])
def test_smoothgrad_on_linear_model_is_abs_weight_for_any_sigma(noise_level, mode):
    model, w = linear_model()
    x = clip()
    e = explain(model, x, transform("time"), 0, method="smoothgrad", noise_level=noise_level, mode=mode)
    torch.testing.assert_close(e.saliency, w[0].abs(), rtol=1e-6, atol=1e-8)
    assert float(e.uncertainty.max()) < 1e-12
    f = explain(model, x, transform("fourier"), 0, method="smoothgrad", noise_level=noise_level, mode=mode)
    expected = torch.fft.rfft(w[0], norm="ortho").abs() * rfft_gradient_weights(L)
    torch.testing.assert_close(f.saliency, expected, rtol=1e-4, atol=1e-6)


def test_smoothgrad_uncertainty_is_the_variance_of_the_draws():
    # Variance over draws of per-draw |g| maps, checked against draws re-made by hand.
    from earmark.explainers.saliency import noisy_coeffs
    from earmark.probe import Probe

    model, x, t = tanh_mlp(), clip(), transform("time")
    e = explain(model, x, t, 0, method="smoothgrad", seed=5, n_samples=7)
    probe = Probe(model, t, x, target=0)
    points = noisy_coeffs(probe, 7, noise_level=0.1, generator=torch.Generator().manual_seed(5))
    grads = torch.stack([torch.func.grad(lambda v: model(v[None])[0, 0])(p) for p in points])
    torch.testing.assert_close(e.saliency, grads.abs().mean(0), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(e.uncertainty, grads.abs().var(0), rtol=1e-4, atol=1e-9)


# ---- WAM -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["wam_sg", "wam_ig"])
def test_wam_per_scale_is_the_per_level_sum_of_the_map(method):
    t = transform("dwt")
    e = explain(tanh_mlp(), clip(), t, 0, method=method, **FAST[method])
    levels = t.split(e.saliency, L)
    per_scale = e.extras["per_scale"]
    assert per_scale.shape == (t.level + 1,) == (len(levels),)
    torch.testing.assert_close(per_scale, torch.stack([v.abs().sum() for v in levels]))
    torch.testing.assert_close(per_scale.sum(), e.saliency.abs().sum())


def test_wam_ig_is_ig_in_the_wavelet_domain():
    model, x, t = tanh_mlp(), clip(), transform("dwt")
    a = explain(model, x, t, 1, method="wam_ig", n_steps=16)
    b = explain(model, x, t, 1, method="ig", n_steps=16)
    assert torch.equal(a.saliency, b.saliency) and torch.equal(a.uncertainty, b.uncertainty)


def test_wam_sg_is_smoothgrad_in_the_wavelet_domain_with_the_authors_defaults():
    model, x, t = tanh_mlp(), clip(), transform("dwt")
    a = explain(model, x, t, 1, method="wam_sg", seed=3)
    b = explain(model, x, t, 1, method="smoothgrad", seed=3, noise_level=0.001, mode="mean_gradient")
    assert torch.equal(a.saliency, b.saliency) and torch.equal(a.uncertainty, b.uncertainty)


@pytest.mark.parametrize("method", ["wam_sg", "wam_ig"])
def test_wam_only_in_the_wavelet_domain(method):
    spec = EXPLAINERS.get(method)
    assert spec.domains == ("dwt",) and spec.default_transform == "dwt"
    with pytest.raises(ConfigError):
        explain(tanh_mlp(), clip(), transform("stft"), 0, method=method)


# ---- contract for every method × domain ------------------------------------------------------------
@pytest.mark.parametrize("method,domain", METHOD_DOMAINS)
def test_maps_have_the_map_shape_and_a_finite_nonnegative_uncertainty(method, domain):
    t = transform(domain)
    e = explain(tanh_mlp(), clip(), t, 0, method=method, **FAST[method])
    assert tuple(e.saliency.shape) == tuple(e.uncertainty.shape) == t.map_shape(L)
    assert torch.isfinite(e.saliency).all() and torch.isfinite(e.uncertainty).all()
    assert (e.uncertainty >= 0).all() and float(e.uncertainty.max()) > 0
    assert e.uncertainty_meaning and "none" not in e.uncertainty_meaning.lower()


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "wam_sg"])
def test_same_seed_gives_bit_identical_maps(method):
    model, x = tanh_mlp(), clip()
    t = transform("dwt")
    a = explain(model, x, t, 0, method=method, seed=11, **FAST[method])
    b = explain(model, x, t, 0, method=method, seed=11, **FAST[method])
    c = explain(model, x, t, 0, method=method, seed=12, **FAST[method])
    assert torch.equal(a.saliency, b.saliency) and torch.equal(a.uncertainty, b.uncertainty)
    assert not torch.equal(a.uncertainty, c.uncertainty)


@pytest.mark.parametrize("method,domain", [("saliency", "stft"), ("smoothgrad", "mel"), ("smoothgrad", "fourier"),
                                           ("wam_sg", "dwt"), ("wam_ig", "dwt")])
def test_batched_equals_per_item(method, domain):
    model, x, t = tanh_mlp(), clip(), transform(domain)
    one = explain(model, x, t, 2, method=method, seed=4, batch_size=1, **FAST[method])
    many = explain(model, x, t, 2, method=method, seed=4, **FAST[method])
    torch.testing.assert_close(one.saliency, many.saliency, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(one.uncertainty, many.uncertainty, rtol=1e-4, atol=1e-9)
    assert one.meta["backward_passes"] == many.meta["backward_passes"]


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "wam_sg", "wam_ig"])
def test_params_are_declared_with_defaults_in_range(method):
    spec = EXPLAINERS.get(method)
    assert spec.family == "gradient" and spec.params
    for p in spec.params:
        assert p.help
        assert p.coerce(p.default) == p.default
        if p.low is not None:
            assert p.low <= p.default <= p.high


def test_smoothgrad_rejects_a_single_draw():
    with pytest.raises(ConfigError):
        explain(tanh_mlp(), clip(), transform("time"), 0, method="smoothgrad", n_samples=1)


def test_draw_variance_equals_torch_var():
    """The spread over draws is torch's variance (and std), computed without the strided reduction."""
    from earmark.explainers.base import draw_std, draw_variance

    x = torch.randn(25, 129, 31, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(draw_variance(x), x.var(0, correction=1), atol=1e-6)
    assert torch.allclose(draw_std(x, correction=0), x.std(0, correction=0), atol=1e-6)
    assert torch.equal(draw_variance(x[:1]), torch.zeros_like(x[0]))              # one draw: no spread
