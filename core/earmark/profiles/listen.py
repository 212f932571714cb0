"""Hear a class: a class-level keep/remove filter and the class's prototypes as WAVs.

The filter is the class's mean band relevance (positive part, scaled so its largest band is 1) used as a
gain per STFT bin: ``keep`` multiplies each bin by its band's gain (what the model listens to for this
class), ``remove`` by one minus it (the clip with the model's favourite bands taken out). It applies to any
clip at the model's rate — hear what "7" sounds like to the model, and a 7 without its favourite band.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from .shortcuts import stft_size


def class_mask(result, label: str, explainer: str | None = None) -> Tensor:
    """(n_bands,) gains in [0, 1]: the class's mean band relevance, positive part, over its maximum."""
    if label not in result.classes[explainer or result.explainers[0]]:
        raise ConfigError(f"No profile for class '{label}'; profiled classes: "
                          f"{', '.join(result.classes[explainer or result.explainers[0]])}.")
    r = result.band_profile(label, explainer).clamp(min=0)
    peak = float(r.max())
    return r / peak if peak > 0 else torch.zeros_like(r)


def class_filter(wave: Tensor, result, label: str, *, mode: Literal["keep", "remove"] = "keep",
                 explainer: str | None = None, sample_rate: int | None = None) -> Tensor:
    """(L,) or (B, L) clip(s) → the same shape, filtered by class ``label``'s band mask (see module docs).

    Raises:
        ConfigError: an unknown mode or class.
    """
    if mode not in ("keep", "remove"):
        raise ConfigError(f"mode is 'keep' or 'remove', not '{mode}'.")
    rate = int(sample_rate or 2 * float(result.grid.band_edges[-1]))
    gains = class_mask(result, label, explainer)
    if mode == "remove":
        gains = 1 - gains
    x = wave.reshape(-1, wave.shape[-1]).float()
    n_fft = stft_size(rate)
    hop = n_fft // 4
    window = torch.hann_window(n_fft, device=x.device)
    z = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)
    freqs = torch.fft.rfftfreq(n_fft, 1 / rate)
    band = torch.bucketize(freqs.double(), result.grid.band_edges[1:-1].double(), right=True)
    per_bin = gains[band.clamp(0, gains.numel() - 1)].to(x.device, torch.float32)
    out = torch.istft(z * per_bin[:, None], n_fft, hop, window=window, center=True, length=x.shape[-1])
    return out.reshape(wave.shape)


def write_listening(result, clips, out: Path, *, sample_rate: int) -> dict[str, list[str]]:
    """Per class under ``out/listen/<class>/``: each prototype, its ``keep`` version, and the first
    prototype's ``remove`` version. Returns ``{label: [relative paths]}``."""
    from ..audio import save_wav

    wanted = {n for names in result.prototypes.values() for n in names}
    waves = {item[0]: item[1].reshape(-1).float() for item in clips if item[0] in wanted}
    written: dict[str, list[str]] = {}
    for label, names in result.prototypes.items():
        folder = out / "listen" / _safe(label)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, name in enumerate(n for n in names if n in waves):
            stem = f"proto{i + 1}-{_safe(Path(name).stem)}"
            save_wav(folder / f"{stem}.wav", _peak(waves[name]), sample_rate)
            save_wav(folder / f"{stem}-keep.wav", _peak(class_filter(waves[name], result, label,
                                                                      sample_rate=sample_rate)), sample_rate)
            paths += [f"listen/{_safe(label)}/{stem}.wav", f"listen/{_safe(label)}/{stem}-keep.wav"]
            if i == 0:
                save_wav(folder / f"{stem}-remove.wav", _peak(class_filter(
                    waves[name], result, label, mode="remove", sample_rate=sample_rate)), sample_rate)
                paths.append(f"listen/{_safe(label)}/{stem}-remove.wav")
        written[label] = paths
    return written


def _peak(x: Tensor) -> Tensor:
    """Scale down (never up) so that the WAV does not clip."""
    m = float(x.abs().max()) if x.numel() else 0.0
    return x / m * 0.99 if m > 0.99 else x


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(text)) or "_"


__all__ = ["class_filter", "class_mask", "write_listening"]
