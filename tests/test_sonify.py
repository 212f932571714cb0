"""earmark.sonify: top-k masks, keep/remove complementarity, soft masks, loudness matching."""

from __future__ import annotations

import pytest
import torch

from earmark.errors import ConfigError
from earmark.sonify import PEAK_LIMIT, keep_top, listen, match_loudness, remove_top, rms, soft_mask, topk_mask
from earmark.transforms import get_transform

LENGTH = 2000
DOMAINS = ["stft", "dwt", "fourier", "time", "mel"]


@pytest.fixture
def clip(generator) -> torch.Tensor:
    t = torch.arange(LENGTH) / 8000
    return 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(LENGTH, generator=generator)


def random_map(transform, generator) -> torch.Tensor:
    return torch.randn(transform.map_shape(LENGTH), generator=generator)


# ---- topk_mask ------------------------------------------------------------------------------------

def test_topk_mask_known_answer():
    s = torch.tensor([[0.1, 0.9, -2.0], [0.5, 0.3, 0.7]])
    assert topk_mask(s, 0.5).tolist() == [[False, True, False], [True, False, True]]
    assert topk_mask(s, 1 / 3, largest=False).tolist() == [[True, False, True], [False, False, False]]


def test_topk_mask_signed_ranking_puts_negative_evidence_last():
    s = torch.tensor([-5.0, 1.0, 0.5, -0.1])
    assert topk_mask(s, 0.25).tolist() == [False, True, False, False]  # not the large negative value


def test_topk_mask_ties_are_deterministic():
    s = torch.zeros(10)
    first = topk_mask(s, 0.3)
    assert first.tolist() == [True] * 3 + [False] * 7  # earlier index wins
    assert torch.equal(first, topk_mask(s.clone(), 0.3))


def test_topk_mask_counts_and_nan():
    s = torch.tensor([float("nan"), 1.0, 2.0, 3.0])
    assert topk_mask(s, 0.75).tolist() == [False, True, True, True]
    assert int(topk_mask(torch.rand(7, 13), 0.1).sum()) == round(0.1 * 91)
    assert not topk_mask(s, 0.0).any() and topk_mask(s, 1.0).all()


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_topk_mask_rejects_bad_fraction(fraction):
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        topk_mask(torch.rand(5), fraction)


# ---- keep / remove ---------------------------------------------------------------------------------

@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.77])
def test_keep_plus_remove_reconstructs(domain, fraction, clip, generator):
    t = get_transform(domain, 8000)
    s = random_map(t, generator)
    keep, remove = keep_top(t, clip, s, fraction), remove_top(t, clip, s, fraction)
    assert keep.shape == remove.shape == (LENGTH,)
    assert float((keep + remove - clip).abs().max()) < 1e-5
    unmatched = listen(t, clip, s, fraction, match=False)
    assert float((unmatched["keep"] + unmatched["remove"] - clip).abs().max()) < 1e-5
    assert torch.allclose(unmatched["keep"], keep, atol=1e-6)


@pytest.mark.parametrize("domain", DOMAINS)
def test_keep_all_is_x_and_remove_all_is_silence(domain, clip, generator):
    t = get_transform(domain, 8000)
    s = random_map(t, generator)
    assert float((keep_top(t, clip, s, 1.0) - clip).abs().max()) < 1e-5
    assert float(remove_top(t, clip, s, 1.0).abs().max()) < 1e-6
    assert float(keep_top(t, clip, s, 0.0).abs().max()) < 1e-6


def test_keep_top_in_fourier_isolates_the_salient_tone():
    sr, n = 8000, 8000
    t = torch.arange(n, dtype=torch.float64) / sr
    x = (torch.sin(2 * torch.pi * 440 * t) + torch.sin(2 * torch.pi * 1000 * t)).float()
    fourier = get_transform("fourier", sr)
    s = torch.zeros(n // 2 + 1)
    s[440] = 1.0  # 1 Hz bins: the map says "440 Hz matters"
    kept = keep_top(fourier, x, s, 1 / (n // 2 + 1))
    assert torch.allclose(kept, torch.sin(2 * torch.pi * 440 * t).float(), atol=1e-4)


def test_map_of_the_wrong_shape_is_refused(clip):
    t = get_transform("stft", 8000)
    with pytest.raises(ConfigError, match=r"needs \(129, 32\)"):
        keep_top(t, clip, torch.rand(10, 10), 0.1)


# ---- soft mask ------------------------------------------------------------------------------------

@pytest.mark.parametrize("domain", DOMAINS)
def test_soft_mask_all_ones_is_x(domain, clip):
    t = get_transform(domain, 8000)
    ones = torch.ones(t.map_shape(LENGTH))
    assert float((soft_mask(t, clip, ones) - clip).abs().max()) < 1e-5
    assert float((soft_mask(t, clip, 3.0 * ones, gamma=2.0) - clip).abs().max()) < 1e-5


def test_soft_mask_weights_known_answer():
    t = get_transform("time", 8000)
    x = torch.ones(4)
    s = torch.tensor([-1.0, 0.0, 1.0, 2.0])  # clip at 0, / max → [0, 0, .5, 1]
    assert soft_mask(t, x, s).tolist() == [0.0, 0.0, 0.5, 1.0]
    assert soft_mask(t, x, s, gamma=2.0).tolist() == [0.0, 0.0, 0.25, 1.0]
    assert soft_mask(t, x, -s.abs()).tolist() == [0.0] * 4  # no positive evidence: silence
    with pytest.raises(ConfigError, match="gamma must be positive"):
        soft_mask(t, x, s, gamma=0.0)


# ---- loudness -------------------------------------------------------------------------------------

def test_match_loudness_equalises_rms(clip):
    quiet = 0.01 * clip
    matched = match_loudness(quiet, clip)
    assert float(rms(matched)) == pytest.approx(float(rms(clip)), rel=1e-5)


def test_match_loudness_scales_down_rather_than_clip():
    spiky = torch.zeros(1000)
    spiky[10] = 0.1  # RMS 0.00316, peak 0.1
    loud = 0.5 * torch.ones(1000)  # RMS 0.5: would need a gain of 158 → peak 15.8
    matched = match_loudness(spiky, loud)
    assert float(matched.abs().max()) == pytest.approx(PEAK_LIMIT, rel=1e-6)


def test_match_loudness_keeps_silence_silent(clip):
    assert match_loudness(torch.zeros(100), clip).abs().max() == 0


@pytest.mark.parametrize("domain", ["stft", "dwt"])
def test_listen_matches_loudness(domain, clip, generator):
    t = get_transform(domain, 8000)
    out = listen(t, clip, random_map(t, generator), 0.1)
    assert set(out) == {"original", "keep", "remove", "soft"}
    assert torch.equal(out["original"], clip)
    for key in ("keep", "remove", "soft"):
        assert out[key].shape == (LENGTH,)
        peak = float(out[key].abs().max())
        assert peak <= PEAK_LIMIT + 1e-6
        if peak < PEAK_LIMIT - 1e-6:  # otherwise the gain was capped so the peak is 0.99, not clipped
            assert float(rms(out[key])) == pytest.approx(float(rms(clip)), rel=1e-4)
