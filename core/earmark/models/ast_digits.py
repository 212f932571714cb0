"""``ast-digits``: the bundled Hugging Face AST (spoken digits, 1 s at 16 kHz), through the HF loader.

The folder ``<assets>/models/ast-digits`` is an ordinary Hugging Face audio-classification folder
(``config.json`` with ``id2label``, ``preprocessor_config.json``, ``model.safetensors``, ``README.md``)
written by ``earmark train ast`` (:mod:`earmark.training.ast`). It is loaded exactly as a user's folder
would be — :func:`earmark.models.loaders.hf.load_hf`, the Kaldi filterbank redone in torch inside the
model — and only the card is completed from the folder's ``training.json`` (accuracies, command, credit).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from ..assets import models_dir
from ..errors import ModelError
from .base import EarmarkModel
from .registry import ModelSpec, register_model

NAME = "ast-digits"
TITLE = "AST digits (Hugging Face Audio Spectrogram Transformer, FSDD, 16 kHz)"
NUM_SAMPLES = 16_000  # 1 s: the length the model was trained on (its 100 frames allow up to 16,240)


def folder() -> Path:
    """``<assets>/models/ast-digits``."""
    return models_dir() / NAME


def build(device: torch.device) -> EarmarkModel:
    """Load the bundled folder through the Hugging Face loader and complete its card.

    Raises:
        ModelError: the folder is missing (train it with ``earmark train ast``) or not loadable.
    """
    path = folder()
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"The ast-digits weights are missing in {path}; train them with "
                         "`earmark train ast --data DIR` (DIR: the FSDD folder).")
    from .loaders.hf import load_hf

    model = load_hf(path, device, window=NUM_SAMPLES)
    info = json.loads((path / "training.json").read_text()) if (path / "training.json").is_file() else {}
    from ..data.fsdd import CREDIT

    metrics = {k: info[k] for k in ("test_accuracy", "test_clips", "parameters", "epochs", "seed",
                                    "train_seconds") if k in info}
    if info.get("espeak_digits"):
        metrics["espeak_digits_accuracy"] = info["espeak_digits"]["accuracy"]
    if info.get("heldout"):
        metrics["heldout_speaker"] = info["heldout"]["heldout_speaker"]
        metrics["heldout_speaker_accuracy"] = info["heldout"]["heldout_speaker_accuracy"]
    model.card = replace(
        model.card, name=NAME, title=TITLE, num_samples=NUM_SAMPLES, variable_length=False,
        training_data="FSDD official split (index 5-49 train, 0-4 test), resampled 8 -> 16 kHz",
        licence=f"CC BY-SA 4.0 (training data: {CREDIT})", metrics=metrics,
        training_command=str(info.get("command", "earmark train ast --data DIR --seed 0")),
        notes=("Hugging Face ASTForAudioClassification trained by Earmark (see README.md in the folder); "
               "Kaldi log-mel filterbank computed in torch inside the model."),
    )
    return model


register_model(ModelSpec(name=NAME, title=TITLE, build=build))

