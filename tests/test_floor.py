"""The floor: AudioNet's 1-D convolutions are the paper's (1×3) 2-D ones, the measured chunk size, inference mode."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from earmark import probe as probe_mod
from earmark.explainers import explain
from earmark.models.audionet import CHANNELS, AudioNet, rms_normalise
from earmark.models.base import from_module
from earmark.probe import Probe, chunk_size, measured_chunks
from earmark.transforms import get_transform


class AudioNet2d(nn.Module):
    """The AudioMNIST paper's layout: (1×3) Conv2d and (1×2) max pooling on a (B, 1, 1, L) image."""

    def __init__(self, net: AudioNet):
        super().__init__()
        layers, prev = [], 1
        convs = [m for m in net.features if isinstance(m, nn.Conv1d)]
        for ch, conv in zip(CHANNELS, convs):
            c2 = nn.Conv2d(prev, ch, kernel_size=(1, 3), padding=(0, 1))
            with torch.no_grad():
                c2.weight.copy_(conv.weight.unsqueeze(2))              # (out, in, 3) → (out, in, 1, 3)
                c2.bias.copy_(conv.bias)
            layers += [c2, nn.ReLU(), nn.MaxPool2d((1, 2))]
            prev = ch
        self.features = nn.Sequential(*layers)
        self.fc1, self.fc2, self.fc3 = net.fc1, net.fc2, net.fc3
        self.level_floor = net.level_floor

    def forward(self, wave):
        x = rms_normalise(wave, self.level_floor)[:, None, None, :]
        x = self.features(x).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def test_audionet_conv1d_equals_the_papers_1x3_conv2d():
    torch.manual_seed(0)
    net = AudioNet().eval()
    two_d = AudioNet2d(net).eval()
    x = torch.randn(3, 8000) * 0.1
    with torch.no_grad():
        a, b = net(x), two_d(x)
    assert a.shape == b.shape == (3, 10)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


# ---- measured chunk size ----------------------------------------------------------------------------
def tiny():
    lin = nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 2))
    return from_module(lin, sample_rate=8000, num_samples=64, labels=["a", "b"])


def test_cpu_chunk_is_a_fixed_function_of_length_and_pass_kind_and_is_recorded(monkeypatch):
    """No timing decides the chunk (the same seed must give the same bits whatever the load)."""
    monkeypatch.delenv("EARMARK_BATCH", raising=False)
    model, cpu = tiny(), torch.device("cpu")
    assert chunk_size(model, cpu, 64, backward=False) == probe_mod.CPU_CHUNK_MAX
    assert probe_mod.cpu_chunk(8000, backward=False) == 8 and probe_mod.cpu_chunk(8000, backward=True) == 4
    assert probe_mod.cpu_chunk(160_000, backward=False) == 1 and probe_mod.cpu_chunk(160_000, backward=True) == 1
    assert probe_mod.cpu_chunk(10**9, backward=True) == 1
    sizes = [probe_mod.cpu_chunk(n, backward=b) for n in (100, 8000, 12345, 16000, 10**6) for b in (0, 1)]
    assert all(s & (s - 1) == 0 for s in sizes)                                     # powers of two
    assert chunk_size(model, cpu, 8000, backward=True) == 4
    assert measured_chunks(model)[("cpu", torch.get_num_threads(), 8000, True)] == 4


def test_a_transformer_takes_as_many_clips_with_a_gradient_as_without(monkeypatch):
    """A model kind that pays per call declares its own samples budget; a Windowed view keeps it."""
    from earmark.models import Windowed
    from earmark.models.loaders.hf import HFAudioClassifier

    monkeypatch.delenv("EARMARK_BATCH", raising=False)
    model, cpu = tiny(), torch.device("cpu")
    model.cpu_chunk_samples = HFAudioClassifier.cpu_chunk_samples
    assert chunk_size(model, cpu, 16000, backward=False) == 4 and chunk_size(model, cpu, 16000, backward=True) == 4
    assert chunk_size(model, cpu, 160_000, backward=True) == 1
    windowed = Windowed(model, model.card)
    assert probe_mod.model_chunk_budget(windowed) == (1 << 16, 1 << 16)
    assert probe_mod.model_chunk_budget(tiny()) is None
    assert chunk_size(tiny(), cpu, 16000, backward=True) == 2                         # the default halves


def test_earmark_batch_overrides_the_measurement(monkeypatch):
    monkeypatch.setenv("EARMARK_BATCH", "7")
    model = tiny()
    assert chunk_size(model, torch.device("cpu"), 64, backward=True) == 7
    assert Probe(model, get_transform("time", 8000), torch.randn(64)).batch_size(backward=False) == 7


@pytest.mark.parametrize("method,settings", [("freqrise", {"n_masks": 120}), ("relax", {"n_masks": 120})])
def test_sampling_maps_do_not_depend_on_the_chunk_for_this_model(method, settings):
    """A per-item model (an MLP on the waveform) gives the same map at any chunk size, to float rounding."""
    model, t = tiny(), get_transform("fourier", 8000)
    x = torch.sin(torch.arange(64) * 0.3)
    one = explain(model, x, t, 0, method=method, seed=3, batch_size=1, **settings)
    many = explain(model, x, t, 0, method=method, seed=3, batch_size=64, **settings)
    torch.testing.assert_close(one.saliency, many.saliency, rtol=1e-5, atol=1e-7)
    assert one.meta["forward_passes"] == many.meta["forward_passes"]


def test_same_seed_same_bits_beside_a_cpu_burner(monkeypatch):
    """Maps at a seed are bit-identical on a quiet machine and with two CPU-burning processes beside the run
    (the chunk is not measured, so load cannot change the arithmetic)."""
    import subprocess
    import sys

    monkeypatch.delenv("EARMARK_BATCH", raising=False)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Unflatten(1, (1, 800)), nn.Conv1d(1, 4, 9, padding=4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 800, 3))
    model = from_module(net, sample_rate=8000, num_samples=800, labels=list("abc"))
    x = torch.sin(torch.arange(800) * 0.05) * torch.hann_window(800)
    t = get_transform("stft", 8000, n_fft=64, hop=16)

    def maps():
        return [explain(model, x, t, 0, method=m, seed=5, **kw).saliency
                for m, kw in (("ig", {"n_steps": 16}), ("freqrise", {"n_masks": 200}), ("smoothgrad", {"n_samples": 8}))]

    quiet = maps()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        busy = maps()
    finally:
        for b in burners:
            b.kill()
            b.wait()
    for a, b in zip(quiet, busy):
        assert torch.equal(a, b)


# ---- inference mode ---------------------------------------------------------------------------------
def test_scores_are_normal_tensors_and_the_clean_embedding_serves_gradients_later():
    model = from_module(nn.Sequential(nn.Linear(64, 4), nn.Tanh()), sample_rate=8000, num_samples=64,
                        labels=list("abcd"), embed=lambda x: torch.tanh(x[:, :8]))
    p = Probe(model, get_transform("stft", 8000, n_fft=64, hop=16), torch.randn(64), target=0)
    s = p.score(torch.rand(5, *p.map_shape), readout="embedding")
    assert not s.is_inference() and s.shape == (5, 8)
    s.add_(1.0)                                                         # usable like any tensor
    clean = p.clean_embedding()                                         # made outside inference mode
    z = p.coeffs[None].repeat(2, *(1,) * p.coeffs.ndim).clone().requires_grad_(True)
    with torch.enable_grad():
        sims = torch.nn.functional.cosine_similarity(p.read(p.waves(z), "embedding"), clean[None], dim=-1)
        (g,) = torch.autograd.grad(sims.sum(), z)
    assert g.shape[0] == 2 and math.isfinite(float(g.abs().sum()))


# ---- the paper's FreqRISE estimator beside Earmark's -------------------------------------------------
def test_reference_freqrise_and_earmark_estimate_the_same_analytic_map():
    """KeyBins toy (flat spectrum, one grid cell per bin, so binary masks): the probability of class 1 is
    σ(4·k/13) with k the number of kept key bins, so E[s·M_i]/keep has a closed form for key and other bins."""
    from test_anytime import KEY, key_setup

    from earmark.bench import freqrise_reference

    model, x, t = key_setup()
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    binom = lambda n, k: math.comb(n, k) / 2**n  # noqa: E731
    key_value = sum(binom(12, k) * sig(4 * (k + 1) / 13) for k in range(13)) / 0.5 * 0.5
    other_value = sum(binom(13, k) * sig(4 * k / 13) for k in range(14))
    truth = torch.full((129,), other_value)
    truth[list(KEY)] = key_value
    ref = freqrise_reference(model, x, t, 1, n_masks=4000, generator=torch.Generator().manual_seed(0))
    ours = explain(model, x, t, 1, method="freqrise", seed=0, n_masks=4000)
    for est in (ref, ours.saliency):
        assert float((est - truth).abs().max()) < 0.05                       # ≈ 4 standard errors
        gap = float(est[list(KEY)].mean() - est[[i for i in range(129) if i not in KEY]].mean())
        assert abs(gap - (key_value - other_value)) < 0.01


def test_bench_adds_the_side_by_side_run_and_the_masks_to_quality_curve(tmp_path):
    from test_anytime import key_setup

    from earmark.bench import CURVE_VARIANTS, run_bench

    model, x, _ = key_setup()
    report = run_bench(model, x, explainers=["freqrise"], transforms=["fourier"], out=tmp_path, quick=True,
                       reference=True, curve_reference=400, curve_seeds=2, curve_counts=(100, 200))
    sbs = report.meta["side_by_side"]
    assert sbs["reference_batch"] == 500 and sbs["earmark_s"] > 0 and sbs["reference_s"] > 0
    points = report.meta["curve"]["points"]
    assert {p["variant"] for p in points} == set(CURVE_VARIANTS) and {p["masks"] for p in points} == {100, 200}
    assert all(-1 <= p["spearman"] <= 1 and 0 <= p["top10"] <= 1 for p in points)
    md = (tmp_path / "bench.md").read_text()
    assert "Side by side" in md and "Masks to quality" in md and "masks to reach the bar" in md
    assert "chunk sizes used" in md
