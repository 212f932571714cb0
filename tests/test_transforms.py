"""Transforms: exact round trips, differentiable synthesis, consistent map/image spaces."""

from __future__ import annotations

import pytest
import torch

from earmark import examples
from earmark.errors import ConfigError
from earmark.transforms import TRANSFORMS, get_transform

NAMES = TRANSFORMS.names()
SR = 8000


def small(name: str):
    """A transform sized for tiny signals (for gradcheck): built directly, below the UI's choices."""
    settings = {"stft": {"n_fft": 16, "hop": 4}, "mel": {"n_fft": 16, "hop": 4, "n_mels": 8},
                "dwt": {"level": 2}}.get(name, {})
    return TRANSFORMS.get(name)(SR, **settings)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [8000, 8001, 1001, 256])
@pytest.mark.parametrize("batch", [1, 7])
def test_reconstruction_random(name, length, batch, generator):
    t = get_transform(name, SR)
    x = torch.randn(batch, length, generator=generator)
    y = t.synthesize(t.analyze(x), length)
    assert y.shape == x.shape
    assert rel_err(y, x) < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_reconstruction_example_clips(name):
    clips = [examples.load_example(e.name).wave for e in examples.list_examples()]
    assert clips, "no bundled examples"
    t = get_transform(name, SR)
    for x in clips:
        x = x[None].float()
        assert rel_err(t.synthesize(t.analyze(x), x.shape[-1]), x) < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_synthesize_gradcheck_float64(name, generator):
    t = small(name)
    length = 33
    x = torch.randn(2, length, generator=generator, dtype=torch.float64)
    z = t.analyze(x).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: t.synthesize(c, length), (z,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_analyze_gradcheck_float64(name, generator):
    t = small(name)
    x = torch.randn(1, 33, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: torch.view_as_real(t.analyze(v)) if t.is_complex else t.analyze(v),
                                    (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [8000, 999])
def test_image_round_trip_and_axes(name, length, generator):
    t = get_transform(name, SR)
    x = torch.randn(3, length, generator=generator)
    v = t.pool(t.analyze(x).abs())
    assert tuple(v.shape[1:]) == t.map_shape(length)
    img = t.to_image(v, length=length)
    back = t.from_image(img, length=length)
    assert back.shape == v.shape
    torch.testing.assert_close(back, v)  # to_image repeats/reshapes, from_image averages back
    axes = t.axes(length)
    assert img.shape[1:] == (axes.freqs.numel(), axes.times.numel())
    assert axes.freq_edges.numel() == axes.freqs.numel() + 1
    assert torch.all(axes.freq_edges[1:] >= axes.freq_edges[:-1])
    assert float(axes.freq_edges[-1]) <= SR / 2 + 1e-6 + (SR / 2) * 0.05
    assert t.band_sums(v, length=length).shape == (3, axes.freqs.numel())


@pytest.mark.parametrize("name", NAMES)
def test_batched_equals_per_item(name, generator):
    t = get_transform(name, SR)
    x = torch.randn(7, 1000, generator=generator)
    z = t.analyze(x)
    per_item = torch.cat([t.analyze(x[i:i + 1]) for i in range(7)])
    torch.testing.assert_close(z, per_item)
    y = t.synthesize(z, 1000)
    torch.testing.assert_close(y, torch.cat([t.synthesize(z[i:i + 1], 1000) for i in range(7)]))


def test_mel_lift_pool_conserve():
    t = get_transform("mel", SR, n_mels=40)
    shape = t.map_shape(8000)
    ones = torch.ones((1, *shape))
    torch.testing.assert_close(t.lift(ones), torch.ones_like(t.lift(ones)))  # a full mask keeps every bin
    a = torch.rand(2, 129, shape[1], dtype=torch.float64)
    torch.testing.assert_close(t.pool(a).sum((1, 2)), a.sum((1, 2)))  # attribution totals preserved
    # pool and lift are adjoint: <pool a, m> == <a, lift m>
    m = torch.rand(2, *shape, dtype=torch.float64)
    torch.testing.assert_close((t.pool(a) * m).sum(), (a * t.lift(m)).sum())


def test_mel_band_of_a_tone_is_at_its_frequency():
    t = get_transform("mel", SR)
    n = torch.arange(8000)
    x = torch.sin(2 * torch.pi * 1000 * n / SR)[None]
    band = int(t.pool(t.analyze(x).abs() ** 2)[0].sum(-1).argmax())
    edges = t.axes(8000).freq_edges
    assert edges[band] <= 1000 <= edges[band + 1] or abs(float(t.axes(8000).freqs[band]) - 1000) < 150


def test_dwt_rows_are_levels_low_to_high():
    t = get_transform("dwt", SR, level=4)
    n = torch.arange(8000)
    low = torch.sin(2 * torch.pi * 100 * n / SR)[None]
    high = torch.sin(2 * torch.pi * 3000 * n / SR)[None]
    row = lambda x: int(t.band_sums(t.analyze(x) ** 2, length=8000)[0].argmax())
    assert row(low) == 0 and row(high) == 4
    assert t.axes(8000).row_labels == ("A4", "D4", "D3", "D2", "D1")


def test_bad_settings_are_explained():
    with pytest.raises(ConfigError, match="hop"):
        get_transform("stft", SR, n_fft=256, hop=200)
    with pytest.raises(ConfigError, match="n_fft"):
        get_transform("stft", SR, n_fft=300)
    with pytest.raises(ConfigError, match="levels"):
        get_transform("dwt", SR, level=9).analyze(torch.zeros(1, 100))
    with pytest.raises(ConfigError, match="Unknown transform"):
        get_transform("wavelet-packet", SR)


@pytest.mark.parametrize("wavelet", ["sym8", "db4", "coif2", "haar"])
@pytest.mark.parametrize("length", [4000, 999])
def test_dwt_image_round_trip_on_a_fresh_transform(wavelet, length, generator):
    """A transform that never analysed the clip maps images back to the right layout: it keeps no state."""
    v = get_transform("dwt", SR, wavelet=wavelet, level=5).analyze(torch.randn(2, length, generator=generator))
    fresh = get_transform("dwt", SR, wavelet=wavelet, level=5)
    torch.testing.assert_close(fresh.from_image(fresh.to_image(v, length=length), length=length), v)


def _dwt_image_reference(t, v: torch.Tensor, length: int) -> torch.Tensor:
    """The DWT image built level by level: row k repeats level k's coefficient ``floor(col · n_k / width)``."""
    parts = t.split(v, length)
    width = max(p.shape[-1] for p in parts)
    cols = torch.arange(width)
    return torch.stack([p[..., (cols * p.shape[-1]) // width] for p in parts], dim=-2)


def test_dwt_one_object_serves_interleaved_lengths(generator):
    """One shared DWT object, clips of two lengths analysed and displayed in interleaved order (as two app
    sessions would): every image and its inverse match the level-by-level reference for its own length."""
    t = get_transform("dwt", SR, wavelet="sym4", level=5)
    lengths = [4000, 4001, 8000, 4000, 8000, 4001]
    maps = [t.analyze(torch.randn(1, n, generator=generator)) for n in lengths]
    for n, v in reversed(list(zip(lengths, maps))):  # displayed in the opposite order of analysis
        img = t.to_image(v, length=n)
        torch.testing.assert_close(img, _dwt_image_reference(t, v, n))
        torch.testing.assert_close(t.from_image(img, length=n), v)
        torch.testing.assert_close(t.band_sums(v, length=n),
                                   torch.stack([p.sum(-1) for p in t.split(v, n)], dim=-1))
    with pytest.raises(ConfigError, match="pass the length"):
        t.to_image(maps[0], length=8000)


def test_dwt_mode_is_a_declared_setting():
    """The boundary mode is a typed, validated parameter and shows in the settings (and so in the
    reproduce command)."""
    t = get_transform("dwt", SR, mode="periodic")
    assert t.settings == {"wavelet": "sym2", "level": 5, "mode": "periodic"}
    assert get_transform("dwt", SR).settings["mode"] == "reflect"
    x = torch.randn(2, 999, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(t.synthesize(t.analyze(x), 999), x)
    with pytest.raises(ConfigError, match="mode"):
        get_transform("dwt", SR, mode="wrap")


# ---- reference libraries ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["reflect", "zero", "constant", "periodic", "symmetric"])
@pytest.mark.parametrize("wavelet", ["sym2", "db4", "coif1", "haar", "bior2.2"])
@pytest.mark.parametrize("level", [1, 3, 5])
@pytest.mark.parametrize("length", [999, 1000])
def test_dwt_matches_pywt_wavedec(mode, wavelet, level, length):
    """Coefficients and layout equal PyWavelets' ``wavedec`` (same boundary mode) for odd and even lengths,
    and the inverse reconstructs the clip."""
    import numpy as np
    import pywt

    t = get_transform("dwt", SR, wavelet=wavelet, level=level, mode=mode)
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(level * length), dtype=torch.float64)
    reference = pywt.wavedec(x.numpy(), wavelet, mode=mode, level=level, axis=-1)
    assert t.layout(length) == tuple(c.shape[-1] for c in reference)
    np.testing.assert_allclose(t.analyze(x).numpy(), np.concatenate(reference, axis=-1), rtol=0, atol=1e-12)
    torch.testing.assert_close(t.synthesize(t.analyze(x), length), x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_mels", [8, 40, 64])
@pytest.mark.parametrize("sample_rate", [8000, 16000])
def test_mel_centres_are_the_peaks_of_torchaudio_filterbank(n_mels, sample_rate):
    """The mel axis (band centres and edges) is where torchaudio's HTK triangles peak, on a 0.25 Hz grid."""
    import torchaudio

    from earmark.transforms.mel import band_assignment, mel_centres

    centres, edges = mel_centres(n_mels, sample_rate)
    n_freqs = 2 * sample_rate + 1                                       # 0.25 Hz between bins
    fb = torchaudio.functional.melscale_fbanks(n_freqs, 0.0, sample_rate / 2, n_mels, sample_rate,
                                               norm=None, mel_scale="htk").T.to(torch.float64)
    peaks = fb.argmax(1).to(torch.float64) * (sample_rate / 2) / (n_freqs - 1)
    torch.testing.assert_close(centres, peaks, rtol=0, atol=0.25)
    assert edges.shape == (n_mels + 1,) and bool((edges[1:] > edges[:-1]).all())
    assert get_transform("mel", sample_rate, n_mels=n_mels).axes(sample_rate).freqs.tolist() == centres.tolist()
    # the band assignment is torchaudio's filterbank, normalised so every STFT bin is shared out once
    a = band_assignment(257, n_mels, sample_rate)
    fb_bins = torchaudio.functional.melscale_fbanks(257, 0.0, sample_rate / 2, n_mels, sample_rate, norm=None,
                                                  mel_scale="htk").T.to(torch.float64)
    covered = fb_bins.sum(0) > 1e-12
    torch.testing.assert_close(a[:, covered], fb_bins[:, covered] / fb_bins[:, covered].sum(0))
    torch.testing.assert_close(a.sum(0), torch.ones(257, dtype=torch.float64))


@pytest.mark.parametrize("length,n_fft,hop,window", [(160_000, 256, 64, "hann"), (8000, 256, 128, "hann"),
                                                     (8001, 512, 64, "hamming"), (16_000, 1024, 256, "blackman")])
def test_stft_inverse_equals_torch_istft(length, n_fft, hop, window, generator):
    """The overlap-add inverse gives torch.istft's waveform (any length asked for) and gradient."""
    from earmark.transforms.stft import WINDOWS

    tr = get_transform("stft", 8000, n_fft=n_fft, hop=hop, window=window)
    x = torch.randn(2, length, generator=generator)
    z = tr.analyze(x) * torch.rand(2, n_fft // 2 + 1, length // hop + 1, generator=generator)
    w = WINDOWS[window](n_fft)
    for asked in (length, length - 37, length + 300):
        ours = tr.synthesize(z, asked)
        ref = torch.istft(z, n_fft, hop, window=w, center=True, length=min(asked, length))
        assert ours.shape == (2, asked)
        assert torch.allclose(ours[:, :ref.shape[-1]], ref, atol=2e-5 * float(ref.abs().max()))
    zg = z.detach().requires_grad_(True)
    (ours,) = torch.autograd.grad(tr.synthesize(zg, length).square().sum(), zg)
    (ref,) = torch.autograd.grad(torch.istft(zg, n_fft, hop, window=w, center=True, length=length).square().sum(), zg)
    assert torch.allclose(ours, ref, atol=1e-5 * float(ref.abs().max()))
