"""earmark.audio: decoding, the failure modes and their messages, mono, resampling, pad/crop, writing."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from earmark.audio import Clip, clip_hash, fit_length, load_clip, prepare, save_wav, wav_bytes
from earmark.errors import AudioError, ClipTooLong


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(data: np.ndarray, sr: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()


def peak_hz(wave: torch.Tensor, sr: int) -> float:
    spectrum = torch.fft.rfft(wave.to(torch.float64)).abs()
    return float(spectrum.argmax()) * sr / wave.shape[-1]


# ---- failure modes: one test each, asserting the message -------------------------------------------

def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"'empty' is empty \(0 bytes\)\. Record or upload"):
        load_clip(path)


def test_zero_bytes_upload():
    with pytest.raises(AudioError, match=r"empty \(0 bytes\)"):
        load_clip(b"", name="mic")


def test_garbage_bytes_name_supported_formats():
    garbage = bytes(range(256)) * 40
    with pytest.raises(AudioError, match=r"Could not decode.*Supported formats: WAV, FLAC, OGG, MP3"):
        load_clip(garbage)


def test_missing_path(tmp_path):
    with pytest.raises(AudioError, match="No audio file at"):
        load_clip(tmp_path / "nope.wav")


def test_header_without_samples():
    with pytest.raises(AudioError, match="decodes to no samples"):
        load_clip(encode(np.zeros(0, np.float32), 8000, "WAV"))


@pytest.mark.parametrize("bad, word", [(math.nan, "NaN"), (math.inf, "infinite"), (-math.inf, "infinite")])
def test_non_finite_samples(bad, word):
    data = sine(440, 8000, 0.1)
    data[17] = bad
    with pytest.raises(AudioError, match=rf"contains {word}.*Re-export"):
        load_clip(encode(data, 8000, "WAV", "FLOAT"))


def test_too_long_offers_segment():
    data = np.full(8000 * 61, 0.1, np.float32)
    with pytest.raises(ClipTooLong, match=r"61\.0 s long; the limit is 60 s\. Choose a segment.*segment=\(start_s, end_s\)"):
        load_clip(encode(data, 8000, "WAV"))


def test_limit_is_a_parameter():
    with pytest.raises(AudioError, match="limit is 0.5 s"):
        load_clip(encode(sine(440, 8000, 1.0), 8000, "WAV"), max_seconds=0.5)


def test_segment_of_long_clip():
    data = np.arange(8000 * 61, dtype=np.float32) / (8000 * 61)  # a ramp: the value says where we are
    clip = load_clip(encode(data, 8000, "WAV", "FLOAT"), segment=(10.0, 12.5))
    assert clip.num_samples == 20000
    assert clip.source_seconds == pytest.approx(61.0)
    assert float(clip.wave[0]) == pytest.approx(data[80000], abs=1e-7)


def test_segment_past_end_is_cut_with_warning():
    clip = load_clip(encode(sine(440, 8000, 1.0), 8000, "WAV"), segment=(0.5, 3.0))
    assert clip.num_samples == 4000
    assert any("cut at the end" in w for w in clip.warnings)


@pytest.mark.parametrize("segment, message", [((2.0, 1.0), "not a valid time range"),
                                              ((5.0, 6.0), "only 1.00 s long"),
                                              ((0.0, 70.0), "limit is 60 s")])
def test_bad_segment(segment, message):
    with pytest.raises(AudioError, match=message):
        load_clip(encode(sine(440, 8000, 1.0), 8000, "WAV"), segment=segment)


def test_silent_clip_is_a_warning_not_an_error():
    clip = load_clip(encode(np.zeros(8000, np.float32), 8000, "WAV"), name="quiet")
    assert clip.num_samples == 8000
    assert len(clip.warnings) == 1 and "'quiet' is silent" in clip.warnings[0]
    assert load_clip(encode(sine(440, 8000, 0.1), 8000, "WAV")).warnings == ()


# ---- decoding -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, subtype, tol", [("WAV", "PCM_16", 1 / 32768), ("WAV", "FLOAT", 0.0),
                                               ("FLAC", "PCM_16", 1 / 32768)])
def test_lossless_round_trip(fmt, subtype, tol):
    data = sine(440, 8000, 0.5) + sine(1234, 8000, 0.5, 0.2)
    clip = load_clip(encode(data, 8000, fmt, subtype), name="x")
    assert clip.format == fmt and clip.sample_rate == 8000 and clip.original_rate == 8000
    assert clip.wave.dtype == torch.float32 and clip.wave.shape == (4000,)
    assert np.abs(clip.wave.numpy() - data).max() <= tol + 1e-7


@pytest.mark.parametrize("fmt, subtype", [("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_lossy_round_trip(fmt, subtype):
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}")
    sr = 16000 if fmt == "MP3" else 8000
    data = sine(440, sr, 1.0)
    clip = load_clip(encode(data, sr, fmt, subtype))
    assert clip.format == fmt and clip.sample_rate == sr
    # lossy codecs may add encoder delay/padding: compare the tone, not the samples
    assert abs(clip.num_samples - data.size) < 0.1 * sr
    assert peak_hz(clip.wave, sr) == pytest.approx(440, abs=2)
    rms = float(clip.wave[sr // 4: 3 * sr // 4].pow(2).mean().sqrt())
    assert rms == pytest.approx(0.5 / math.sqrt(2), rel=0.1)


def test_path_bytes_and_file_like_agree(tmp_path):
    data = sine(300, 8000, 0.25)
    path = tmp_path / "tone.flac"
    sf.write(str(path), data, 8000)
    from_path = load_clip(path)
    from_bytes = load_clip(path.read_bytes())
    with open(path, "rb") as handle:
        from_file = load_clip(handle)
    assert from_path.name == "tone" and from_bytes.name == "upload" and from_file.name == "tone"
    assert torch.equal(from_path.wave, from_bytes.wave) and torch.equal(from_path.wave, from_file.wave)


def test_stereo_is_mixed_to_mono():
    left, right = sine(440, 8000, 0.1), sine(880, 8000, 0.1, 0.25)
    clip = load_clip(encode(np.stack([left, right], axis=1), 8000, "WAV", "FLOAT"))
    assert clip.channels == 2 and clip.wave.shape == (800,)
    np.testing.assert_allclose(clip.wave.numpy(), (left + right) / 2, atol=1e-7)


# ---- prepare: resampling and length -------------------------------------------------------------

def test_resample_48k_to_8k_keeps_440_hz():
    clip = load_clip(encode(sine(440, 48000, 1.0), 48000, "WAV", "FLOAT"))
    ready = prepare(clip, sample_rate=8000, num_samples=8000)
    assert ready.sample_rate == 8000 and ready.wave.shape == (8000,) and ready.original_rate == 48000
    assert peak_hz(ready.wave, 8000) == pytest.approx(440, abs=1)
    assert float(ready.wave[1000:7000].abs().max()) == pytest.approx(0.5, abs=0.01)


def test_resample_removes_content_above_new_nyquist():
    clip = load_clip(encode(sine(6000, 48000, 1.0), 48000, "WAV", "FLOAT"))
    ready = prepare(clip, sample_rate=8000, num_samples=8000)
    assert float(ready.wave[500:-500].abs().max()) < 0.01  # 6 kHz cannot exist at 8 kHz: no alias at 2 kHz


def _clip(values, sr=10) -> Clip:
    return Clip(wave=torch.tensor(values, dtype=torch.float32), sample_rate=sr)


@pytest.mark.parametrize("policy, expected", [("center", [2, 3, 4]), ("start", [1, 2, 3]), ("end", [3, 4, 5])])
def test_crop_policies(policy, expected):
    ready = prepare(_clip([1, 2, 3, 4, 5]), sample_rate=10, num_samples=3, policy=policy)
    assert ready.wave.tolist() == expected
    assert any("hears" in w for w in ready.warnings)


@pytest.mark.parametrize("policy, expected", [("center", [0, 1, 2, 0, 0]), ("start", [1, 2, 0, 0, 0]),
                                              ("end", [0, 0, 0, 1, 2])])
def test_pad_policies(policy, expected):
    ready = prepare(_clip([1, 2]), sample_rate=10, num_samples=5, policy=policy)
    assert ready.wave.tolist() == expected and ready.warnings == ()


def test_offset_chooses_the_segment():
    clip = _clip([1, 2, 3, 4, 5, 6])
    assert prepare(clip, sample_rate=10, num_samples=3, offset_seconds=0.2).wave.tolist() == [3, 4, 5]
    assert prepare(clip, sample_rate=10, num_samples=3, offset_seconds=0.5).wave.tolist() == [6, 0, 0]
    with pytest.raises(AudioError, match="outside the clip"):
        prepare(clip, sample_rate=10, num_samples=3, offset_seconds=0.6)


def test_unknown_policy():
    with pytest.raises(AudioError, match="Unknown length policy 'middle'"):
        prepare(_clip([1, 2]), sample_rate=10, num_samples=5, policy="middle")


def test_fit_length_batched():
    x = torch.arange(10.0).reshape(2, 5)
    assert fit_length(x, 3).tolist() == [[1, 2, 3], [6, 7, 8]]


# ---- writing and hashing ------------------------------------------------------------------------

def test_wav_bytes_is_16_bit_and_clipped():
    wave = torch.tensor([0.0, 0.5, -0.5, 2.0, -3.0])
    data, sr = sf.read(io.BytesIO(wav_bytes(wave, 8000)), dtype="float32")
    assert sf.info(io.BytesIO(wav_bytes(wave, 8000))).subtype == "PCM_16" and sr == 8000
    np.testing.assert_allclose(data, [0.0, 0.5, -0.5, 1.0, -1.0], atol=1 / 32768)


def test_save_wav_round_trip(tmp_path):
    wave = torch.from_numpy(sine(440, 8000, 0.2))
    save_wav(tmp_path / "a.wav", wave, 8000)
    clip = load_clip(tmp_path / "a.wav")
    assert clip.name == "a" and torch.allclose(clip.wave, wave, atol=1 / 32768)


def test_clip_hash_depends_on_samples_and_rate():
    a = _clip([0.1, 0.2], sr=8000)
    assert clip_hash(a) == clip_hash(_clip([0.1, 0.2], sr=8000).replace(name="other"))
    assert clip_hash(a) != clip_hash(_clip([0.1, 0.3], sr=8000))
    assert clip_hash(a) != clip_hash(_clip([0.1, 0.2], sr=16000))
    assert len(clip_hash(a)) == 40


def test_fallback_decoder_when_libsndfile_fails(monkeypatch):
    import earmark.audio as audio

    def refuse(*args, **kwargs):
        raise sf.LibsndfileError(0, "refused for the test")

    monkeypatch.setattr(audio, "_decode_soundfile", refuse)
    data = sine(440, 8000, 0.25)
    clip = load_clip(encode(data, 8000, "WAV", "PCM_16"))  # audioread (or ffmpeg) reads plain WAV
    assert clip.sample_rate == 8000 and clip.format in ("audioread", "ffmpeg")
    np.testing.assert_allclose(clip.wave.numpy(), data, atol=2 / 32768)
    with pytest.raises(AudioError, match="Supported formats"):
        load_clip(b"not audio at all" * 10)
