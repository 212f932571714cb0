"""The same results on every device: transforms, the Probe, every explainer, the metrics and listening.

Each test takes the ``device`` fixture (``cpu`` and ``cuda``; the CUDA case skips without a GPU, see
``tests/conftest.py``), checks that results stay on that device, and compares them with the CPU. Mask
explainers draw their masks device-independently (:mod:`earmark.explainers.masks`), so their maps agree
across devices; methods that draw noise from the device's generator are compared where the noise does not
enter (IG's zero-baseline path) or only for shape, finiteness and device.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from earmark import explain, from_module, get_transform
from earmark.explainers import EXPLAINERS
from earmark.metrics import MetricContext, MetricOptions, compute_metrics
from earmark.probe import Probe
from earmark.sonify import listen

SR, L = 8000, 1024
DOMAINS = ["time", "fourier", "stft", "mel", "dwt"]
BUDGETS = {"saliency": {"n_draws": 2}, "ig": {"n_steps": 8}, "smoothgrad": {"n_samples": 4},
           "wam_sg": {"n_samples": 4}, "wam_ig": {"n_steps": 8}, "freqrise": {"n_masks": 64},
           "relax": {"n_masks": 64}, "learnable_mask": {"steps": 4, "restarts": 2},
           "minimal_mask": {"steps": 4, "restarts": 2}, "energy": {}}
#: Maps that do not depend on the device's random numbers (energy, masks drawn device-independently,
#: IG's saliency = the zero-baseline path).
SAME_MAP = ("energy", "freqrise", "relax", "ig", "wam_ig")


def tiny_model(device: torch.device):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(1, 4, 9, stride=4), nn.Tanh(), nn.AdaptiveAvgPool1d(16), nn.Flatten(),
                        nn.Linear(64, 3))
    module = nn.Sequential(nn.Unflatten(1, (1, L)), net)
    model = from_module(module, sample_rate=SR, num_samples=L, labels=["a", "b", "c"],
                        embed=lambda x: net[:4](x[:, None]))
    return model.to(device).eval()


def clip() -> torch.Tensor:
    t = torch.arange(L) / SR
    return 0.5 * torch.sin(2 * torch.pi * 440 * t) + 0.1 * torch.randn(L, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("name", DOMAINS)
def test_transforms_round_trip_on_the_device(name, device):
    t = get_transform(name, SR)
    x = torch.randn(3, L, generator=torch.Generator().manual_seed(1)).to(device)
    z = t.analyze(x)
    assert z.device.type == device.type
    torch.testing.assert_close(t.synthesize(z, L), x, rtol=1e-4, atol=1e-5)
    v = t.pool(z.abs())
    img = t.to_image(v, length=L)
    assert img.device.type == device.type
    torch.testing.assert_close(t.from_image(img, length=L), v)
    torch.testing.assert_close(img.cpu(), t.to_image(t.pool(t.analyze(x.cpu()).abs()), length=L), rtol=1e-4, atol=1e-4)


def test_probe_scores_and_gradients_match_the_cpu(device):
    x = clip()
    results = {}
    for dev in ("cpu", device):
        probe = Probe(tiny_model(torch.device(dev)), get_transform("stft", SR), x, target=1)
        masks = torch.rand(6, *probe.map_shape, generator=torch.Generator().manual_seed(2))
        scores = probe.score(masks)
        values, grads = probe.grad(probe.coeffs[None].repeat(2, 1, 1))
        assert scores.device.type == grads.device.type == torch.device(dev).type
        results[str(dev)] = (scores.cpu(), values.cpu(), grads.cpu())
    for a, b in zip(results["cpu"], results[str(device)]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", list(BUDGETS))
def test_every_explainer_runs_on_the_device(method, device):
    spec = EXPLAINERS.get(method)
    domain = "dwt" if spec.domains == ("dwt",) else "stft"
    t = get_transform(domain, SR)
    e = explain(tiny_model(device), clip(), t, 1, method=method, seed=0, **BUDGETS[method])
    assert e.saliency.device.type == e.uncertainty.device.type == device.type
    assert e.saliency.shape == t.map_shape(L) and bool(torch.isfinite(e.saliency).all())
    assert bool((e.uncertainty >= 0).all())
    if method in SAME_MAP and device.type != "cpu":
        ref = explain(tiny_model(torch.device("cpu")), clip(), t, 1, method=method, seed=0, **BUDGETS[method])
        torch.testing.assert_close(e.saliency.cpu(), ref.saliency, rtol=1e-3, atol=1e-5)


def test_metrics_match_the_cpu(device):
    x, t = clip(), get_transform("stft", SR)
    saliency = get_transform("stft", SR).power_map(t.analyze(x[None]))[0]
    names = ["deletion_auc", "insertion_auc", "faithfulness", "complexity"]
    scores = {}
    for dev in ("cpu", device):
        probe = Probe(tiny_model(torch.device(dev)), t, x, target=1)
        ctx = MetricContext(probe, saliency.to(dev), seed=0, options=MetricOptions(steps=8))
        scores[str(dev)] = compute_metrics(names, ctx)
    assert scores["cpu"] == pytest.approx(scores[str(device)], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", DOMAINS)
def test_listening_versions_match_the_cpu(name, device):
    t = get_transform(name, SR)
    x = clip()
    saliency = t.power_map(t.analyze(x[None]))[0]
    on_device = listen(t, x.to(device), saliency.to(device), 0.2)
    on_cpu = listen(t, x, saliency, 0.2)
    for kind, wave in on_device.items():
        assert wave.device.type == device.type
        torch.testing.assert_close(wave.cpu(), on_cpu[kind], rtol=1e-4, atol=1e-5)
