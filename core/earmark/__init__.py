"""Earmark: where in time and frequency does an audio model look? Explain, evaluate, listen.

The Python API in one breath (run as a doctest by ``tests/test_doctests.py``):

>>> from earmark import audio, examples, explain, get_transform, load_model, sonify
>>> model = load_model("audionet-digits", "cpu")
>>> x = audio.prepare(examples.default_example(), sample_rate=model.card.sample_rate,
...                   num_samples=model.card.num_samples).wave          # (L,) as the model hears it
>>> stft = get_transform("stft", model.card.sample_rate)
>>> expl = explain(model, x, stft, method="ig", n_steps=8)
>>> tuple(expl.saliency.shape) == tuple(stft.map_shape(len(x)))
True
>>> sorted(sonify.listen(stft, x, expl.saliency, 0.1))              # hear the top 10 % kept / removed
['keep', 'original', 'remove', 'soft']
"""

from __future__ import annotations

from ._version import __version__  # noqa: F401  (earmark.__version__)
from .device import make_generator, pick_device
from .errors import AudioError, ConfigError, DataError, EarmarkError, ModelError
from .explainers import EXPLAINERS, explain
from .explanation import Explanation
from .models import MODELS, from_module, load_model
from . import zoo as _zoo
from .probe import Probe
from .transforms import TRANSFORMS, get_transform

_zoo.register()   # the real models whose packages are installed (earmark[zoo]), after the bundled ones

__all__ = [
    "AudioError", "ConfigError", "DataError", "EarmarkError", "EXPLAINERS", "Explanation", "MODELS", "ModelError",
    "Probe", "TRANSFORMS", "explain", "from_module", "get_transform", "load_model", "make_generator", "pick_device",
]
