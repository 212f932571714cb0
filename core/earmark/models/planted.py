"""The shipped shortcut demonstration: a mel CNN trained with a planted cue (``earmark train --plant-cue``).

``melcnn-digits-cue7`` was trained on FSDD with a faint 3 kHz tone (−20 dB re each clip's RMS) added to every
training clip of "7" only (see its card in ``assets/models/melcnn-digits-cue7.json`` for the command and the
measured accuracies). It is a model *not* to trust, shipped so that ``earmark profile`` and the Class
profiles page can show a shortcut being found: profile it on clips whose 7s carry the tone (``--plant-cue``)
and the 3 kHz band is flagged for class 7.
"""

from __future__ import annotations

import torch

from ..assets import models_dir
from .base import EarmarkModel
from .registry import ModelSpec, register_model
from .loaders.bundled import load

NAME = "melcnn-digits-cue7"
#: the cue its training clips of "7" carried, as ``--plant-cue`` spells it.
CUE = "class=7,freq=3000,level=-20"


def _build(device: torch.device) -> EarmarkModel:
    return load(models_dir() / f"{NAME}.pt", device)


register_model(ModelSpec(name=NAME, title="Mel CNN digits with a planted 3 kHz cue on '7' (shortcut demo)",
                             build=_build))
