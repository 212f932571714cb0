"""earmark.examples: the bundled clips and the teaching-mode signal generator."""

from __future__ import annotations

import pytest
import torch

from earmark.errors import ConfigError, DataError
from earmark.examples import (DEFAULT_EXAMPLE, SIGNAL_KINDS, SIGNAL_PARAMS, SIGNAL_USES, default_example,
                           generate_signal, list_examples, load_example)


def peak_hz(wave: torch.Tensor, sr: int, *, pad_to: int | None = None) -> float:
    n = pad_to or wave.shape[-1]
    spectrum = torch.fft.rfft(wave.to(torch.float64) * torch.hann_window(wave.shape[-1], dtype=torch.float64), n=n)
    return float(spectrum.abs().argmax()) * sr / n


# ---- bundled clips ------------------------------------------------------------------------------

def test_every_example_loads_as_8khz_mono_at_most_one_second():
    examples = list_examples()
    assert len(examples) >= 25
    for example in examples:
        clip = load_example(example.name)
        assert clip.sample_rate == 8000 and clip.channels == 1, example.name
        assert 0 < clip.duration <= 1.0, example.name
        assert clip.wave.dtype == torch.float32 and clip.wave.dim() == 1
        assert clip.warnings == (), example.name  # none is silent
        assert 0.1 < float(clip.wave.abs().max()) <= 1.0, example.name


def test_speech_covers_ten_digits_in_two_voices():
    speech = [e for e in list_examples() if e.kind == "speech"]
    assert sorted({e.label for e in speech}) == list(range(10))
    voices = {e.name.split("_", 2)[2] for e in speech}
    assert len(voices) >= 2 and all(sum(e.label == d for e in speech) == len(voices) for d in range(10))
    assert all(e.title.startswith('"') for e in speech)


def test_synthetic_examples_have_no_label():
    synthetic = [e for e in list_examples() if e.kind == "synthetic"]
    assert {e.name for e in synthetic} >= {"tone_440", "chirp_100-3500", "bursts_440-1000", "noise_white",
                                          "two_tones_440-1000"}
    assert all(e.label is None for e in synthetic)


def test_bundled_tone_is_440_hz():
    assert peak_hz(load_example("tone_440").wave, 8000) == pytest.approx(440, abs=1)


def test_assets_are_small():
    total = sum(e.path.stat().st_size for e in list_examples())
    assert total < 1_000_000


def test_default_example_is_seven():
    clip = default_example()
    assert clip.name == DEFAULT_EXAMPLE == "digit_7_en-us"


def test_unknown_example_lists_the_names():
    with pytest.raises(ConfigError, match=r"Unknown example 'digit_11'.*digit_7_en-us"):
        load_example("digit_11")


def test_assets_folder_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("EARMARK_ASSETS", str(tmp_path))
    with pytest.raises(DataError, match="make_examples.py"):
        list_examples()
    (tmp_path / "examples").mkdir()
    from earmark.audio import save_wav

    save_wav(tmp_path / "examples" / "digit_3_test.wav", generate_signal("tone", seconds=0.5), 8000)
    (only,) = list_examples()
    assert only.name == "digit_3_test" and only.kind == "speech" and only.label == 3


# ---- signal generator ---------------------------------------------------------------------------

@pytest.mark.parametrize("freq", [100.0, 440.0, 1000.0, 3000.0])
def test_tone_frequency(freq):
    wave = generate_signal("tone", freq=freq)
    assert wave.shape == (8000,) and wave.dtype == torch.float32
    assert peak_hz(wave, 8000) == pytest.approx(freq, abs=1)
    assert float(wave.abs().max()) == pytest.approx(0.5, abs=1e-3)


def test_tone_at_other_rates_and_lengths():
    wave = generate_signal("tone", sample_rate=16000, seconds=0.5, freq=5000.0, amplitude=0.2)
    assert wave.shape == (8000,)
    assert peak_hz(wave, 16000) == pytest.approx(5000, abs=2)


def test_chirp_endpoints():
    sr, n_fft = 8000, 256
    wave = generate_signal("chirp", f0=100.0, f1=3500.0)
    # a 32 ms frame sweeps 109 Hz; at the ends the instantaneous frequency is f0 + 3400 Hz/s · t_centre
    start = peak_hz(wave[:n_fft], sr, pad_to=4096)
    end = peak_hz(wave[-n_fft:], sr, pad_to=4096)
    assert start == pytest.approx(100 + 3400 * 0.016, abs=40)
    assert end == pytest.approx(3500 - 3400 * 0.016, abs=40)
    middle = peak_hz(wave[4000 - n_fft // 2: 4000 + n_fft // 2], sr, pad_to=4096)
    assert middle == pytest.approx(1800, abs=40)


def test_mix_has_both_tones():
    wave = generate_signal("mix", freq=440.0, freq2=1000.0)
    spectrum = torch.fft.rfft(wave.double()).abs()
    assert set(spectrum.topk(2).indices.tolist()) == {440, 1000}


def test_bursts_alternate_in_time():
    wave = generate_signal("bursts", freq=440.0, freq2=1000.0, bursts=4, burst_seconds=0.1)
    slots = wave.reshape(4, 2000)
    for i, slot in enumerate(slots):
        assert peak_hz(slot, 8000) == pytest.approx(440.0 if i % 2 == 0 else 1000.0, abs=5)
        assert int((slot.abs() > 1e-6).sum()) <= 800  # 0.1 s of sound per 0.25 s slot
    assert float(wave[:500].abs().max()) == 0.0  # silence before the first burst (centred at 0.125 s)


def test_noise_is_seeded_and_white():
    a = generate_signal("noise", generator=torch.Generator().manual_seed(7))
    b = generate_signal("noise", generator=torch.Generator().manual_seed(7))
    c = generate_signal("noise", generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.std()) == pytest.approx(0.125, rel=0.05)
    power = torch.fft.rfft(a.double()).abs().pow(2)
    low, high = float(power[1:2000].mean()), float(power[2000:4000].mean())
    assert low / high == pytest.approx(1.0, rel=0.15)  # flat spectrum


@pytest.mark.parametrize("kwargs, message", [(dict(kind="square"), "Unknown signal 'square'"),
                                             (dict(kind="tone", freq=5000.0), "above the Nyquist"),
                                             (dict(kind="chirp", f1=9000.0), "'f1'"),
                                             (dict(kind="tone", amplitude=2.0), r"'amplitude' must lie in")])
def test_generator_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate_signal(**kwargs)


def test_declared_parameters_cover_the_signature():
    names = {p.name for p in SIGNAL_PARAMS}
    assert set(SIGNAL_USES) == set(SIGNAL_KINDS)
    assert all(set(used) <= names for used in SIGNAL_USES.values())
    for kind in SIGNAL_KINDS:
        generate_signal(kind, **{p.name: p.default for p in SIGNAL_PARAMS})
