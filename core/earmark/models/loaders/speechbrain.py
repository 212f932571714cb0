"""A SpeechBrain ``EncoderClassifier`` folder → EarmarkModel (``earmark[speechbrain]``).

The folder holds ``hyperparams.yaml`` (defining ``compute_features``, ``mean_var_norm``, ``embedding_model``
and ``classifier``, as SpeechBrain's EncoderClassifier expects), ``label_encoder.txt`` and one checkpoint
per module (``embedding_model.ckpt``, ``classifier.ckpt``, and ``mean_var_norm.ckpt`` or
``normalizer.ckpt`` when the normaliser has global statistics).

Nothing is unpickled and no SpeechBrain fetching runs: the YAML is checked by :mod:`.yamlcheck` (limits,
tags after YAML decoding, an allow-list of exact class names) and hyperpyyaml reads the re-serialised,
checked document, not the original text; the checkpoints are read here with
``torch.load(weights_only=True)`` and put into the modules with ``load_state_dict``; the labels are read
with ``ast.literal_eval`` (SpeechBrain's own ``CategoricalEncoder.load``). The forward pass is
EncoderClassifier's ``classify_batch``: features → normalisation → embedding → classifier; ``embed``
is the embedding model's output.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from ...errors import ModelError
from ..base import EarmarkModel, ModelCard
from .cardcheck import declared_rate, read_json
from .common import card_from_dict, require
from .yamlcheck import MAX_BYTES, safe_hyperparams

EXTRA = "speechbrain"
MODULES = ("compute_features", "mean_var_norm", "embedding_model", "classifier")


class SpeechBrainClassifier(EarmarkModel):
    """EncoderClassifier's ``classify_batch`` as a module: (B, L) → (B, C) scores; ``embed`` → (B, D)."""

    def __init__(self, modules: dict[str, nn.Module], card: ModelCard):
        super().__init__()
        self.compute_features = modules["compute_features"]
        self.mean_var_norm = modules["mean_var_norm"]
        self.embedding_model = modules["embedding_model"]
        self.classifier = modules["classifier"]
        self.card = card

    def _embedding(self, wave: Tensor) -> Tensor:
        lens = torch.ones(wave.shape[0], device=wave.device)
        feats = self.compute_features(wave)
        feats = self.mean_var_norm(feats, lens)
        return self.embedding_model(feats, lens)

    def forward(self, wave: Tensor) -> Tensor:
        out = self.classifier(self._embedding(wave))
        return out.reshape(out.shape[0], -1)

    def embed(self, wave: Tensor) -> Tensor:
        emb = self._embedding(wave)
        return emb.reshape(emb.shape[0], -1)

    def _apply(self, fn, recurse: bool = True):
        out = super()._apply(fn, recurse)
        norm = self.mean_var_norm
        for attr in ("glob_mean", "glob_std"):  # plain attributes in SpeechBrain, not buffers
            value = getattr(norm, attr, None)
            if isinstance(value, Tensor):
                setattr(norm, attr, fn(value))
        return out


def read_labels(path: Path) -> tuple[str, ...]:
    """Labels in index order from a SpeechBrain ``label_encoder.txt``."""
    encoder_mod = require("speechbrain.dataio.encoder", EXTRA, "a SpeechBrain model")
    encoder = encoder_mod.CategoricalEncoder()
    try:
        encoder.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path.name} is not a SpeechBrain label encoder file ({exc}).") from None
    return tuple(str(encoder.ind2lab[i]) for i in range(len(encoder)))


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None) -> EarmarkModel:
    """Load an EncoderClassifier folder (see the module docstring).

    Args:
        window: input samples to use (SpeechBrain classifiers take any length; default: the card's
            ``window`` or ``max_length``, else 10 s).

    Raises:
        ModelError: a missing file or module, a refused YAML tag, a checkpoint that is not plain tensors.
    """
    folder = Path(path)
    yaml_path = folder / "hyperparams.yaml"
    source = f"{folder.name}/hyperparams.yaml"
    if yaml_path.stat().st_size > MAX_BYTES:
        raise ModelError(f"{source} is refused: it is larger than {MAX_BYTES // 1024} KB.")
    text = safe_hyperparams(yaml_path.read_text(errors="replace"), source)   # checked, re-serialised
    hyperpyyaml = require("hyperpyyaml", EXTRA, "a SpeechBrain model")
    require("speechbrain", EXTRA, "a SpeechBrain model")
    overrides = {key: str(folder) for key in ("pretrained_path", "source", "savedir")
                 if re.search(rf"^{key}\s*:\s*!PLACEHOLDER", text, re.M)}
    try:
        hparams = hyperpyyaml.load_hyperpyyaml(text, overrides=overrides or None)
    except Exception as exc:
        raise ModelError(f"{folder.name}/hyperparams.yaml could not be read ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}).") from None
    found = dict(hparams.get("modules") or {})
    for key in MODULES:
        if key not in found and isinstance(hparams.get(key), nn.Module):
            found[key] = hparams[key]
    missing = [k for k in MODULES if not isinstance(found.get(k), nn.Module)]
    if missing:
        raise ModelError(f"{folder.name}/hyperparams.yaml defines no {', '.join(missing)}; an EncoderClassifier needs "
                         f"{', '.join(MODULES)}.")
    for key in MODULES:
        ckpt = next((folder / f"{n}.ckpt" for n in ((key, "normalizer") if key == "mean_var_norm" else (key,))
                     if (folder / f"{n}.ckpt").is_file()), None)
        if ckpt is None:
            if key in ("embedding_model", "classifier"):
                raise ModelError(f"{folder.name} has no {key}.ckpt; put the trained weights of each module beside "
                                 "hyperparams.yaml.")
            continue
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception:
            raise ModelError(f"{ckpt.name} is not a plain state dict (tensors only); Earmark never unpickles "
                             "other objects. Save it with torch.save(module.state_dict()).") from None
        module = found[key]
        try:
            if hasattr(module, "_load_statistics_dict") and {"glob_mean", "glob_std"} <= set(state):
                module._load_statistics_dict(state)
            else:
                module.load_state_dict(state, strict=True)
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"{ckpt.name} does not fit the module '{key}' in hyperparams.yaml "
                             f"({str(exc).strip().splitlines()[0][:200]}).") from None
    labels_file = folder / "label_encoder.txt"
    if not labels_file.is_file():
        raise ModelError(f"{folder.name} has no label_encoder.txt; save the classifier's label encoder beside it.")
    labels = read_labels(labels_file)
    side = folder / "card.json"
    if side.is_file():
        info = read_json(side, f"{folder.name}/card.json")
        if not isinstance(info, dict):
            raise ModelError(f"{folder.name}/card.json must be a JSON object.")
        info.setdefault("labels", list(labels))
        info.setdefault("sample_rate", declared_rate(hparams.get("sample_rate", 16000), f"{folder.name}/hyperparams.yaml"))
        info.setdefault("input_length", "variable")
        info.setdefault("max_length", 30 * info["sample_rate"])
        card = card_from_dict(info, source=f"{folder.name}/card.json", fmt="speechbrain", gradients=True,
                              default_name=folder.name)
    else:
        rate = declared_rate(hparams.get("sample_rate", 16000), f"{folder.name}/hyperparams.yaml")
        card = ModelCard(name=folder.name, title=f"{folder.name} (SpeechBrain EncoderClassifier)", sample_rate=rate,
                         num_samples=10 * rate, labels=labels, input_kind="waveform; SpeechBrain features inside the model",
                         variable_length=True, max_samples=None, format="speechbrain")
    if tuple(card.labels) != labels:
        raise ModelError(f"The labels in {folder.name}/card.json differ from label_encoder.txt; keep one list.")
    card = replace(card, embedding="the embedding model's output (EncoderClassifier.encode_batch)")
    if window is not None:
        card = card.with_window(window) if card.variable_length else card
    model = SpeechBrainClassifier(found, card).eval()
    return model.to(device) if device is not None else model
