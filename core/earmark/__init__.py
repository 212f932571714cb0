"""Earmark: where in time and frequency does an audio model look? Explain, evaluate, listen.

The Python API in one breath::

    from earmark import load_model, get_transform, explain, examples, audio, sonify
    model = load_model("audionet-digits")
    clip = examples.default_example()
    x = audio.prepare(clip, sample_rate=model.card.sample_rate, num_samples=model.card.num_samples)
    expl = explain(model, x, get_transform("stft", model.card.sample_rate), method="ig")
    versions = sonify.listen(get_transform("stft", 8000), x, expl.saliency, 0.1)
"""

from __future__ import annotations

from ._version import __version__
from .device import make_generator, pick_device
from .errors import AudioError, ConfigError, DataError, EarmarkError, ModelError
from .explainers import EXPLAINERS, explain
from .explanation import Explanation
from .models import MODELS, from_module, load_model
from .probe import Probe
from .transforms import TRANSFORMS, get_transform

__all__ = [
    "AudioError", "ConfigError", "DataError", "EarmarkError", "EXPLAINERS", "Explanation", "MODELS", "ModelError",
    "Probe", "TRANSFORMS", "explain", "from_module", "get_transform", "load_model", "make_generator", "pick_device",
]
