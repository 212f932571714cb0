"""FLEXtime: the filterbank, the learned band weights on a model that listens to one band, restarts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from earmark.errors import ConfigError
from earmark.explainers import explain
from earmark.explainers.flextime import filter_bands, fir_bank, gains
from earmark.models import from_module
from earmark.transforms import get_transform

SR, L = 8000, 1024
BAND = (1000.0, 1500.0)       # the band the oracle model decides on


def test_bands_match_scipy_lfilter_with_the_group_delay_shift():
    from scipy import signal

    x = np.random.default_rng(0).standard_normal(L).astype(np.float32)
    taps = fir_bank(8, 51, SR)
    ours = filter_bands(torch.from_numpy(x), torch.from_numpy(taps).float()).numpy()
    ref = np.stack([np.roll(signal.lfilter(h, 1, x), -25) for h in taps])
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_gains_are_the_filters_responses_on_the_clip_bins():
    taps = torch.from_numpy(fir_bank(16, 51, SR)).float()
    g = gains(taps, L)
    freqs = torch.fft.rfftfreq(L, 1 / SR)
    centre = int(torch.argmin((freqs - 1250).abs()))
    assert int(g[:, centre].argmax()) == int(1250 // (SR / 2 / 16))       # the band holding 1250 Hz
    assert float(g.sum(0)[5:-5].min()) > 0.8                               # the bank covers the spectrum


def clip(seed: int = 0) -> torch.Tensor:
    t = torch.arange(L) / SR
    return 0.3 * torch.sin(2 * torch.pi * 1250 * t) + 0.1 * torch.randn(L, generator=torch.Generator().manual_seed(seed))


class Matched(nn.Module):
    """Linear oracle: class 1's logit is the correlation with the clip's own BAND component (a matched filter),
    so only the filters inside BAND raise it; scaled to 1 on the clean clip."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        freqs = torch.fft.rfftfreq(L, 1 / SR)
        inside = (freqs >= BAND[0]) & (freqs < BAND[1])
        template = torch.fft.irfft(torch.fft.rfft(x) * inside, n=L)
        self.register_buffer("w", template / template.norm() ** 2)

    def forward(self, x):
        f = x @ self.w
        return torch.stack([-f, f], -1)


@pytest.fixture(scope="module")
def oracle():
    return from_module(Matched(clip()), sample_rate=SR, num_samples=L, labels=["out", "in"], name="band-oracle")


def test_flextime_keeps_the_band_the_model_decides_on(oracle):
    e = explain(oracle, clip(), get_transform("fourier", SR), target=1, method="flextime", n_filters=16, steps=150,
                restarts=3, seed=1)
    width = SR / 2 / 16
    masks = e.extras["band_masks"]                                       # (R, 16)
    inside = [int(BAND[0] // width), int(BAND[1] // width) - 1]          # filters 4 and 5
    for r in range(3):
        top = set(masks[r].topk(2).indices.tolist())
        assert top == set(inside), (r, masks[r])
    freqs = torch.fft.rfftfreq(L, 1 / SR)
    peak = float(freqs[int(e.saliency.argmax())])
    assert BAND[0] - width <= peak <= BAND[1] + width
    assert e.uncertainty.shape == e.saliency.shape and float(e.uncertainty.max()) > 0
    assert e.extras["loss_curve"].shape == (150, 3)


def test_same_seed_same_masks_and_fourier_only(oracle):
    x = torch.randn(L, generator=torch.Generator().manual_seed(3)) * 0.1
    kw = dict(target=1, method="flextime", n_filters=8, steps=20, restarts=2)
    a = explain(oracle, x, get_transform("fourier", SR), seed=4, **kw)
    b = explain(oracle, x, get_transform("fourier", SR), seed=4, **kw)
    assert torch.equal(a.saliency, b.saliency)
    with pytest.raises(ConfigError, match="fourier"):
        explain(oracle, x, get_transform("stft", SR), **kw)
    with pytest.raises(ConfigError, match="odd"):
        explain(oracle, x, get_transform("fourier", SR), **{**kw, "numtaps": 50})
