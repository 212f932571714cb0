"""LRP across domains: conservation through the network, the front end and the virtual synthesis layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from earmark.errors import ModelError
from earmark.explainers import explain
from earmark.explainers.lrp import log_mel_to_wave, network_relevance, wave_to_domain
from earmark.models import from_module, load_model
from earmark.transforms import get_transform

pytest.importorskip("zennit")

L, SR = 1024, 8000
DOMAINS = ["time", "fourier", "stft", "mel", "dwt"]


class GainCNN(nn.Module):
    """Bias-free waveform CNN behind a per-clip gain (like AudioNet's level normalisation)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(1, 8, 9, padding=4, bias=False), nn.ReLU(), nn.MaxPool1d(4),
                                  nn.Conv1d(8, 8, 5, padding=2, bias=False), nn.ReLU(), nn.AvgPool1d(4))
        self.fc = nn.Linear(8 * (L // 16), 3, bias=False)

    def forward(self, x):
        x = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 0.03 ** 2)
        return self.fc(self.conv(x[:, None]).flatten(1))


@pytest.fixture(scope="module")
def gain_model():
    torch.manual_seed(0)
    return from_module(GainCNN().eval(), sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="gain-cnn")


@pytest.fixture(scope="module")
def clip():
    t = torch.arange(L) / SR
    return 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(L, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("composite", ["EpsilonPlusFlat", "EpsilonGammaBox"])
def test_conservation_without_biases_in_every_domain(gain_model, clip, composite):
    sums = []
    for domain in DOMAINS:
        e = explain(gain_model, clip, get_transform(domain, SR), method="lrp", composite=composite, uncertainty="none")
        out = float(e.extras["output"])
        assert abs(float(e.extras["conservation_gap"])) <= 1e-3 * abs(out), (domain, e.extras)
        sums.append(float(e.saliency.sum()))
    assert max(sums) - min(sums) <= 1e-4 * abs(sums[0])     # the virtual layer keeps the total in every domain


def test_dft_lrp_matches_the_explicit_epsilon_rule(gain_model, clip):
    """R_{z_j} = Σ_i Re(W_ij z_j)·R_i/x_i with W the orthonormal inverse rFFT, built column by column."""
    n = 64
    x = clip[:n].double()
    z = torch.fft.rfft(x, norm="ortho")
    cols_re = torch.fft.irfft(torch.eye(n // 2 + 1, dtype=torch.complex128), n=n, norm="ortho")        # (K, n)
    cols_im = torch.fft.irfft(1j * torch.eye(n // 2 + 1, dtype=torch.complex128), n=n, norm="ortho")
    contrib = cols_re * z.real[:, None] + cols_im * z.imag[:, None]       # (K, n): z_j's part of x_i
    r_x = torch.randn(n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = (contrib * (r_x / x)[None]).sum(1)

    class Stub:
        pass

    probe = Stub()
    probe.coeffs = z
    probe.waves = lambda c: torch.fft.irfft(c, n=n, norm="ortho")
    probe.transform = get_transform("fourier", SR)
    got = wave_to_domain(probe, r_x[None], synthesis_eps=0.0)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=1e-9)
    assert float(got.sum()) == pytest.approx(float(r_x.sum()), rel=1e-9)


def test_log_mel_front_end_conserves():
    model = load_model("melcnn-digits", "cpu").private_copy()
    x = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(2))
    start = torch.zeros(10)
    start[3] = 1.0
    u, r_u, score = network_relevance(model, x, start, composite="EpsilonPlusFlat", epsilon=1e-6, gamma=0.25)
    r_x = log_mel_to_wave(model, x, r_u)
    assert float(r_x.sum()) == pytest.approx(float(r_u.sum()), rel=1e-3)


def test_bundled_models_report_their_gap_and_contrast(clip):
    model = load_model("audionet-digits", "cpu")
    x = torch.nn.functional.pad(clip, (0, 8000 - L))
    e = explain(model, x, get_transform("stft", SR), method="lrp", target=2, contrast=5, uncertainty="none")
    logits = model(x[None])[0]
    assert float(e.extras["output"]) == pytest.approx(float(logits[2] - logits[5]), rel=1e-4)
    assert float(e.extras["relevance_sum"]) == pytest.approx(float(e.saliency.sum()), rel=1e-5)


def test_unsupported_front_end_is_a_sentence(clip):
    class Squared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(L, 2)

        def forward(self, x):
            return self.fc(x ** 2)

    model = from_module(Squared().eval(), sample_rate=SR, num_samples=L, labels=["a", "b"], name="squared")
    with pytest.raises(ModelError, match="per-clip gain, a log-mel"):
        explain(model, clip, get_transform("time", SR), method="lrp")
