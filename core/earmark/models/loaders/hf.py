"""A local Hugging Face audio-classification folder → :class:`EarmarkModel`.

The folder holds ``config.json`` (with ``id2label``), ``preprocessor_config.json`` and ``model.safetensors``
(weights are read from safetensors only: nothing is unpickled). The feature extractor is rebuilt in torch
inside the wrapped model, so the whole path waveform → logits is differentiable and runs on the model's
device:

* AST: Kaldi log-mel filterbank (``torchaudio.compliance.kaldi``'s steps, batched), padded or cut to
  ``max_length`` frames, normalised with the extractor's mean and std;
* wav2vec2 / HuBERT (``Wav2Vec2FeatureExtractor``): zero-mean unit-variance per clip when the extractor does it;
* Whisper: log10-mel of a centred STFT with the extractor's own mel filters, clamped to 8 below the clip's
  peak, on the input padded to the extractor's ``n_samples``.

``tests/test_loaders.py`` checks each against the extractor's own NumPy output on the bundled clips.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ...errors import ModelError
from ..base import EarmarkModel, ModelCard
from .cardcheck import read_json
from .common import InputCatcher, check_rate, last_linear, require

#: transformers' note that a mel filter is empty, printed on every AST load: the extractor's Kaldi banks at
#: 16 kHz (128 banks on 257 frequency bins) leave the lowest ones empty, exactly as the extractor itself does,
#: so it says nothing about the user's model. Only this message is silenced; other warnings and errors pass.
EMPTY_MEL_WARNING = r"At least one mel filter has all zero values"

EXTRA = "hf"
CONFIG, PREPROCESSOR, WEIGHTS = "config.json", "preprocessor_config.json", "model.safetensors"


def refuse_remote_code(folder: Path, *configs: object) -> None:
    """A folder whose configs name Python code to import (``auto_map``, a custom ``*.py``) is refused: Earmark
    never runs a model folder's code, and never asks whether to.

    Raises:
        ModelError: one sentence naming what was found.
    """
    for config in configs:
        if not isinstance(config, dict):
            raise ModelError(f"The configs of {folder.name} must be JSON objects.")
        if "auto_map" in config or "custom_pipelines" in config:
            raise ModelError(f"{folder.name} names its own Python code (auto_map), which Earmark never runs; use a "
                             "model whose architecture transformers ships, saved with save_pretrained.")
    code = sorted(p.name for p in folder.glob("*.py"))
    if code:
        raise ModelError(f"{folder.name} holds Python files ({', '.join(code[:3])}), which Earmark never runs; "
                         "remove them (a model folder holds JSON configs and model.safetensors).")


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG).is_file()


# ---- front ends (waveform → the network's input), batched and differentiable --------------------------

class KaldiFbank(nn.Module):
    """AST's input: Kaldi fbank (25 ms Hann frames every 10 ms, DC removed, pre-emphasis 0.97, 512-point
    power spectrum, Kaldi mel banks from 20 Hz, natural log floored at float32 eps), padded with zeros or
    cut to ``max_length`` frames, then ``(fbank − mean) / (2·std)``.

    Shapes: (B, L) → (B, max_length, num_mel_bins). The steps of ``torchaudio.compliance.kaldi.fbank(wave[None],
    window_type="hanning", ...)`` for a batch at once, computed in float64 (float32 on MPS) with the
    extractor's own float64 mel filters: quiet bands sit near the 1.2e-7 floor, where float32 rounding of the
    power spectrum moves the log by up to ~4e-4 (torchaudio's float32 path differs from the extractor's NumPy
    path by that much); in float64 the result matches the NumPy extractor to ~1e-7.
    """

    def __init__(self, *, sample_rate: int, num_mel_bins: int, max_length: int, mean: float, std: float,
                 do_normalize: bool = True):
        super().__init__()
        audio_utils = require("transformers.audio_utils", EXTRA, "a Hugging Face model")

        self.sample_rate, self.max_length = int(sample_rate), int(max_length)
        self.window_size = int(sample_rate * 0.025)
        self.window_shift = int(sample_rate * 0.010)
        self.padded = 1 << (self.window_size - 1).bit_length()
        with warnings.catch_warnings():   # AST's own 128 Kaldi banks on 257 bins: some are empty by design
            warnings.filterwarnings("ignore", message=EMPTY_MEL_WARNING, category=UserWarning)
            banks = audio_utils.mel_filter_bank(
                num_frequency_bins=self.padded // 2 + 1, num_mel_filters=int(num_mel_bins), min_frequency=20,
                max_frequency=sample_rate // 2, sampling_rate=sample_rate, norm=None, mel_scale="kaldi",
                triangularize_in_mel_space=True)                               # (freq, mels), as the extractor's
        self.register_buffer("banks", torch.as_tensor(banks, dtype=torch.float64), persistent=False)
        self.register_buffer("window", torch.hann_window(self.window_size, periodic=False, dtype=torch.float64),
                             persistent=False)
        self.mean, self.std, self.do_normalize = float(mean), float(std), bool(do_normalize)

    def max_samples(self) -> int:
        return self.window_size + (self.max_length - 1) * self.window_shift

    def fbank(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, frames, num_mel_bins) log filterbank, before padding and normalisation."""
        if wave.shape[-1] < self.window_size:
            raise ModelError(f"The clip is shorter than one {self.window_size}-sample frame; use a longer window.")
        work = torch.float32 if wave.device.type == "mps" else torch.float64
        frames = wave.to(work).unfold(-1, self.window_size, self.window_shift)          # (B, m, W)
        frames = frames - frames.mean(-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - 0.97 * previous) * self.window.to(work)
        spec = torch.fft.rfft(frames, n=self.padded)
        power = spec.real.square() + spec.imag.square()
        mel = power @ self.banks.to(work)
        return mel.clamp(min=torch.finfo(torch.float32).eps).log().to(wave.dtype)

    def forward(self, wave: Tensor) -> Tensor:
        fb = self.fbank(wave)
        frames = fb.shape[1]
        if frames < self.max_length:
            fb = nn.functional.pad(fb, (0, 0, 0, self.max_length - frames))
        else:
            fb = fb[:, :self.max_length]
        if self.do_normalize:
            fb = (fb - self.mean) / (self.std * 2)
        return fb


class UtteranceNorm(nn.Module):
    """wav2vec2 / HuBERT input: ``(x − mean) / sqrt(var + 1e-7)`` per clip when the extractor normalises,
    else the waveform as it is. (B, L) → (B, L)."""

    def __init__(self, do_normalize: bool):
        super().__init__()
        self.do_normalize = bool(do_normalize)

    def forward(self, wave: Tensor) -> Tensor:
        if not self.do_normalize:
            return wave
        mean = wave.mean(-1, keepdim=True)
        var = (wave - mean).square().mean(-1, keepdim=True)
        return (wave - mean) / torch.sqrt(var + 1e-7)


class WhisperLogMel(nn.Module):
    """Whisper's input: the clip padded with zeros (or cut) to ``n_samples``, a centred Hann STFT
    (reflect padding), power, the extractor's mel filters, log10 clamped at 1e-10, floored at 8 below the
    clip's maximum, then ``(x + 4) / 4``. (B, L) → (B, n_mels, n_samples // hop)."""

    def __init__(self, *, mel_filters, n_fft: int, hop_length: int, n_samples: int, do_normalize: bool = False):
        super().__init__()
        self.n_fft, self.hop, self.n_samples = int(n_fft), int(hop_length), int(n_samples)
        self.register_buffer("filters", torch.as_tensor(mel_filters, dtype=torch.float32).T.contiguous(),
                             persistent=False)                                # (n_mels, n_fft // 2 + 1)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.norm = UtteranceNorm(do_normalize)

    def forward(self, wave: Tensor) -> Tensor:
        wave = self.norm(wave)
        length = wave.shape[-1]
        if length < self.n_samples:
            wave = nn.functional.pad(wave, (0, self.n_samples - length))
        else:
            wave = wave[..., :self.n_samples]
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)[..., :-1]
        power = spec.real.square() + spec.imag.square()
        log_spec = (self.filters @ power).clamp(min=1e-10).log10()
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0


# ---- the wrapped model ---------------------------------------------------------------------------------

class HFAudioClassifier(EarmarkModel):
    """``frontend`` (waveform → features) then the Hugging Face network (features → logits).

    ``embed`` is the pooled hidden state: what enters the classifier head.

    ``cpu_chunk_samples``: samples per CPU model call (forward, with a gradient), read by
    :func:`earmark.probe.chunk_size`. A transformer pays much of its cost per call (hundreds of small
    modules), so a gradient call takes as many clips as a forward one: 4 one-second 16 kHz clips instead
    of 2 (the bundled AST: 4.29 ms an item forward + backward at 4, 4.75 ms at 2; docs/studies/speed.md).
    """

    cpu_chunk_samples = (1 << 16, 1 << 16)

    def __init__(self, frontend: nn.Module, network: nn.Module, card: ModelCard):
        super().__init__()
        self.frontend = frontend
        self.network = network
        self.card = card
        self.input_name = getattr(network, "main_input_name", "input_values")
        head = last_linear(network)
        self._catcher = InputCatcher(head) if head is not None else None

    def features(self, wave: Tensor) -> Tensor:
        """(B, L) → the network's input (what the Hugging Face feature extractor would give)."""
        return self.frontend(wave)

    def forward(self, wave: Tensor) -> Tensor:
        out = self.network(**{self.input_name: self.frontend(wave)})
        return out.logits if hasattr(out, "logits") else out[0]

    def embed(self, wave: Tensor) -> Tensor:
        if self._catcher is None:
            return self.forward(wave)
        return self._catcher.catch(self.forward, wave)


def _frontend(extractor_cfg: dict, model_type: str, rate: int):
    """(front end, maximum input samples or None) for the extractor named in preprocessor_config.json."""
    kind = str(extractor_cfg.get("feature_extractor_type", ""))
    if kind == "ASTFeatureExtractor" or model_type == "audio-spectrogram-transformer":
        fe = KaldiFbank(sample_rate=rate, num_mel_bins=int(extractor_cfg.get("num_mel_bins", 128)),
                        max_length=int(extractor_cfg.get("max_length", 1024)),
                        mean=float(extractor_cfg.get("mean", -4.2677393)), std=float(extractor_cfg.get("std", 4.5689974)),
                        do_normalize=bool(extractor_cfg.get("do_normalize", True)))
        return fe, fe.max_samples(), "Kaldi log-mel filterbank (AST) inside the model"
    if kind == "WhisperFeatureExtractor" or model_type == "whisper":
        transformers = require("transformers", EXTRA, "a Hugging Face model")
        ext = transformers.WhisperFeatureExtractor(**{k: v for k, v in extractor_cfg.items()
                                                     if k not in ("feature_extractor_type", "processor_class")})
        fe = WhisperLogMel(mel_filters=ext.mel_filters, n_fft=ext.n_fft, hop_length=ext.hop_length,
                           n_samples=ext.n_samples, do_normalize=bool(extractor_cfg.get("do_normalize", False)))
        return fe, int(ext.n_samples), "Whisper log-mel (torch STFT, the extractor's mel filters) inside the model"
    if kind in ("Wav2Vec2FeatureExtractor", "") or model_type in ("wav2vec2", "hubert", "wavlm", "data2vec-audio"):
        norm = bool(extractor_cfg.get("do_normalize", True))
        return UtteranceNorm(norm), None, ("waveform, " + ("zero-mean unit-variance per clip" if norm
                                                           else "not normalised") + " (wav2vec2-style)")
    raise ModelError(f"The feature extractor '{kind}' is not supported yet; Earmark runs AST, Whisper and "
                     "wav2vec2-style (wav2vec2, HuBERT, WavLM) extractors in torch.")


def load_hf(path: str | Path, device: torch.device | None = None, *, window: int | None = None) -> EarmarkModel:
    """Load a local Hugging Face audio-classification folder (safetensors only).

    Args:
        path: the folder with config.json, preprocessor_config.json and model.safetensors.
        device: where to put the model (default CPU; :func:`earmark.models.load_model` picks one).
        window: input samples to use for a variable-length model (default: the model's maximum, or 10 s
            where there is none).

    Raises:
        ModelError: a missing file, pickle-only weights, no labels, or a network transformers cannot build.
    """
    folder = Path(path)
    if not is_hf_folder(folder):
        raise ModelError(f"{folder} is not a Hugging Face model folder (no {CONFIG}).")
    weights = folder / WEIGHTS
    if not weights.is_file() and not any(folder.glob("model-*.safetensors")):
        if (folder / "pytorch_model.bin").exists() or any(folder.glob("pytorch_model-*.bin")):
            raise ModelError(
                f"{folder.name} holds only pytorch_model.bin, a pickle file, which Earmark never loads (it can run "
                "code); convert it once where you trust it: `AutoModelForAudioClassification.from_pretrained(DIR)"
                ".save_pretrained(DIR, safe_serialization=True)` writes model.safetensors."
            )
        raise ModelError(f"{folder.name} has no {WEIGHTS}; save the model with `save_pretrained` (safetensors).")
    if not (folder / PREPROCESSOR).is_file():
        raise ModelError(f"{folder.name} has no {PREPROCESSOR}; save the feature extractor beside the model "
                         "(`feature_extractor.save_pretrained(DIR)`).")
    config = read_json(folder / CONFIG, f"{folder.name}/{CONFIG}")
    extractor_cfg = read_json(folder / PREPROCESSOR, f"{folder.name}/{PREPROCESSOR}")
    refuse_remote_code(folder, config, extractor_cfg)
    id2label = config.get("id2label") or {}
    if not id2label:
        raise ModelError(f"{folder.name}/{CONFIG} has no id2label; add the class names (index → label).")
    try:
        labels = tuple(str(id2label[str(i)] if str(i) in id2label else id2label[i]) for i in range(len(id2label)))
    except KeyError:
        raise ModelError(f"id2label in {folder.name}/{CONFIG} must number the classes 0..{len(id2label) - 1}.") from None
    rate = check_rate(extractor_cfg.get("sampling_rate", 16000), f"{folder.name}/{PREPROCESSOR}")
    model_type = str(config.get("model_type", ""))
    try:
        frontend, max_samples, input_kind = _frontend(extractor_cfg, model_type, rate)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelError(f"{folder.name}/{PREPROCESSOR} holds a setting of the wrong kind ({str(exc)[:200]}).") from None

    transformers = require("transformers", EXTRA, "a Hugging Face model")
    transformers.utils.logging.disable_progress_bar()   # no bars on stderr from a library call
    try:
        network = transformers.AutoModelForAudioClassification.from_pretrained(
            str(folder), use_safetensors=True, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers' own message, in one line
        raise ModelError(f"transformers could not build the model in {folder.name}: "
                         f"{str(exc).strip().splitlines()[0][:300]}") from None
    network.eval()
    problem = str(config.get("problem_type") or "single_label_classification")
    if problem not in ("single_label_classification", "multi_label_classification"):
        raise ModelError(f"{folder.name} is a {problem} model; Earmark explains classifiers (problem_type "
                         "single_label_classification or multi_label_classification).")
    activation = "sigmoid" if problem == "multi_label_classification" else "softmax"
    if window is None:
        window = max_samples if max_samples is not None else 10 * rate
    window = int(window)
    if window < 1 or (max_samples is not None and window > max_samples):
        raise ModelError(f"A window of {window:,} samples does not fit {folder.name}: at most {max_samples:,}.")
    card = ModelCard(
        name=folder.name, title=f"{folder.name} ({config.get('architectures', [model_type])[0]})",
        sample_rate=rate, num_samples=window, labels=labels, input_kind=input_kind,
        licence=str(config.get("license", "")), activation=activation, variable_length=True,
        max_samples=max_samples, gradients=True, format="hf",
        embedding="pooled hidden state (the input of the classifier head)",
        notes=f"Hugging Face {model_type} model; problem type {problem}.",
    )
    model = HFAudioClassifier(frontend, network, card)
    return model.to(device) if device is not None else model


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None) -> EarmarkModel:
    """The loader entry used by :func:`earmark.models.loaders.load_path`."""
    return load_hf(path, device, window=window)
