"""Grad-CAM (``captum:LayerGradCam``) on spectrogram models, with analytic answers.

The toy model: a magnitude STFT inside the model → one Conv2d with two fixed 3×3 kernels — channel 0 sees
horizontal lines (a tone: 2·centre row − the rows above and below), channel 1 vertical lines (a click) — →
ReLU → mean over the grid; class 0's logit is channel 0's mean, class 1's channel 1's. Grad-CAM's channel
weights are then (1/N on the live cells, 0) for class 0, so the map is the tone detector's positive
response: it must sit on the tone, and class 1's on the click.
"""

from __future__ import annotations

import pytest
import torch
import torchaudio
from torch import nn

from earmark.errors import ConfigError, ModelError
from earmark.explainers import EXPLAINERS, explain
from earmark.models import from_module
from earmark.transforms import get_transform

pytest.importorskip("captum")

SR, L = 8000, 8000
TONE_HZ, TONE_SPAN, CLICK_S = 1000.0, (0.1, 0.4), 0.7
NAME = "captum:LayerGradCam"


class LineDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.spec = torchaudio.transforms.Spectrogram(n_fft=256, hop_length=64, power=1.0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        horizontal = torch.tensor([[-1.0, -1, -1], [2, 2, 2], [-1, -1, -1]])
        with torch.no_grad():
            self.conv.weight.copy_(torch.stack([horizontal, horizontal.T])[:, None])

    def forward(self, wave):
        a = torch.relu(self.conv(self.spec(wave)[:, None]))
        return a.mean((-2, -1)) * 10.0


@pytest.fixture(scope="module")
def toy():
    return from_module(LineDetector().eval(), sample_rate=SR, num_samples=L, labels=["tone", "click"], name="lines")


@pytest.fixture(scope="module")
def clip():
    t = torch.arange(L) / SR
    on = (t >= TONE_SPAN[0]) & (t < TONE_SPAN[1])
    envelope = torch.sin(torch.pi * (t - TONE_SPAN[0]) / (TONE_SPAN[1] - TONE_SPAN[0])) ** 2 * on   # no onset clicks
    x = 0.5 * torch.sin(2 * torch.pi * TONE_HZ * t) * envelope
    x[int(CLICK_S * SR)] = 2.0
    return x + 1e-4 * torch.randn(L, generator=torch.Generator().manual_seed(0))


def _cells(domain: str, saliency: torch.Tensor):
    """The map on the domain's display grid with its row frequencies (Hz) and column times (s)."""
    tr = get_transform(domain, SR)
    axes = tr.axes(L)
    return tr.to_image(saliency[None], length=L)[0], axes


@pytest.mark.parametrize("domain", ["stft", "mel"])
def test_tone_class_map_sits_on_the_tone(toy, clip, domain):
    e = explain(toy, clip, get_transform(domain, SR), target=0, method=NAME, seed=0)
    img, axes = _cells(domain, e.saliency)
    assert float(img.min()) >= 0.0                                  # the paper's ReLU
    f, t = divmod(int(img.argmax()), img.shape[1])
    assert float(axes.freq_edges[f]) <= TONE_HZ + 70 and float(axes.freq_edges[f + 1]) >= TONE_HZ - 70
    assert TONE_SPAN[0] - 0.02 <= float(axes.times[t]) <= TONE_SPAN[1] + 0.02
    rows = (axes.freq_edges[1:] > TONE_HZ - 150) & (axes.freq_edges[:-1] < TONE_HZ + 150)
    cols = (axes.times > TONE_SPAN[0] - 0.03) & (axes.times < TONE_SPAN[1] + 0.03)
    share = float(img[rows][:, cols].sum() / img.sum())
    assert share > 0.9, share


def test_click_class_map_sits_on_the_click_and_contrast_is_the_difference(toy, clip):
    stft = get_transform("stft", SR)
    e = explain(toy, clip, stft, target=1, method=NAME, seed=0)
    img, axes = _cells("stft", e.saliency)
    cols = (axes.times > CLICK_S - 0.04) & (axes.times < CLICK_S + 0.04)
    assert float(img[:, cols].sum() / img.sum()) > 0.9
    # "tone rather than click" without the ReLU: Grad-CAM's channel weights are linear in the score, so the map
    # is the tone's map minus the click's
    c = explain(toy, clip, stft, target=0, contrast=1, method=NAME, seed=0, relu=False)
    tone = explain(toy, clip, stft, target=0, method=NAME, seed=0, relu=False).saliency
    click = explain(toy, clip, stft, target=1, method=NAME, seed=0, relu=False).saliency
    torch.testing.assert_close(c.saliency, tone - click, atol=1e-6 * float(tone.abs().max()), rtol=0)
    assert c.meta["contrast"] == 1


def test_same_seed_same_bits_and_the_model_grid(toy, clip):
    mel = get_transform("mel", SR)
    a = explain(toy, clip, mel, target=0, method=NAME, seed=3)
    b = explain(toy, clip, mel, target=0, method=NAME, seed=3)
    assert torch.equal(a.saliency, b.saliency) and torch.equal(a.uncertainty, b.uncertainty)
    assert tuple(a.extras["cam"].shape) == (129, 126)               # the model's own STFT grid
    assert float(a.uncertainty.max()) > 0


def test_refused_without_a_conv_over_a_spectrogram(clip):
    spec = EXPLAINERS.get(NAME)
    dense = from_module(nn.Sequential(nn.Linear(L, 2)).eval(), sample_rate=SR, num_samples=L, labels=["a", "b"],
                        name="dense")
    why = spec.unavailable(dense.card, dense)
    assert why is not None and "Conv2d" in why and why.count(".") == 1
    with pytest.raises(ModelError, match="Conv2d"):
        explain(dense, clip, get_transform("stft", SR), method=NAME)
    # a Conv2d on a hand-made grid: Earmark cannot place its rows in frequency, so it says so
    net = nn.Sequential(nn.Unflatten(1, (1, 80, 100)), nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, L))
    raw = from_module(net.eval(), sample_rate=SR, num_samples=L, labels=["a", "b"], name="raw")
    assert "torchaudio" in spec.unavailable(raw.card, raw)


def test_refused_in_domains_without_both_axes(toy, clip):
    for domain in ("time", "fourier"):
        with pytest.raises(ConfigError, match="stft, mel, dwt"):
            explain(toy, clip, get_transform(domain, SR), method=NAME)


def test_evaluate_leaves_it_out_for_a_model_without_one(tmp_path):
    from earmark.evaluate import run_evaluation
    from earmark.metrics import MetricOptions
    from test_evaluate import ToyClips, toy_model

    report = run_evaluation(toy_model(), ToyClips(), explainers=[NAME, "energy"], transforms=["time"], seed=0,
                            out=tmp_path, options=MetricOptions(steps=3, num_random=1, mu_subsets=4),
                            metrics=["I", "D"])
    assert {r["explainer"] for r in report.rows} == {"energy"}
    assert any(s.startswith(NAME) and "Conv2d" in s for s in report.skipped)
