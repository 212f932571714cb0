"""What every loader shares: optional imports that name their extra, the side-car card, the penultimate-layer
embedding, and the one validation pass on load."""

from __future__ import annotations

import importlib
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ...errors import ModelError
from ...guards import probe_silence
from ..adapt import expand_labels, failure_hint
from ..base import EarmarkModel, ModelCard
from .cardcheck import RATE_RANGE, check_fields, declared_rate, read_json

#: Sample rates a card may declare (Hz).
ACTIVATIONS = ("softmax", "sigmoid")


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional dependency or say which extra installs it.

    Raises:
        ModelError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(
            f"Loading {what} needs the Python package '{module.split('.')[0]}', which is not installed; "
            f"install it with `pip install 'earmark[{extra}]'`."
        ) from None


# ---- the side-car card (model.json beside a .pt / .pt2 / .onnx file) ----------------------------------

def card_path(model_file: Path) -> Path | None:
    """``NAME.ext.json`` or ``NAME.json`` beside ``NAME.ext``, else ``card.json`` / ``model_card.json`` in the
    same folder."""
    for candidate in (model_file.with_name(model_file.name + ".json"), model_file.with_suffix(".json"), model_file.parent / "card.json",
                      model_file.parent / "model_card.json"):
        if candidate.is_file():
            return candidate
    return None


def read_card(model_file: Path, *, fmt: str, gradients: bool, given: dict | None = None,
              source: str | None = None) -> tuple[ModelCard, dict]:
    """The model card JSON beside ``model_file`` as a :class:`ModelCard` plus the raw dict.

    The JSON holds ``sample_rate`` (Hz), ``input_length`` (samples, or ``"variable"`` with ``max_length``),
    ``labels``, optionally ``activation`` (softmax | sigmoid), ``embedding_output`` (an output index or
    name, or a method name for TorchScript), ``name``, ``title``, ``licence``, ``training_data``, ``notes``,
    ``window`` (default samples in use for variable-length models).

    Raises:
        ModelError: no card, unreadable JSON, or a field missing or of the wrong kind.
    """
    if given is not None:   # a card that names its file (see :mod:`.card`)
        return card_from_dict(given, source=source or model_file.name, fmt=fmt, gradients=gradients,
                              default_name=model_file.stem), given
    path = card_path(model_file)
    if path is None:
        raise ModelError(
            f"'{model_file.name}' needs a model card beside it: write {model_file.with_suffix('.json').name} with "
            '{"sample_rate": 16000, "input_length": 16000, "labels": ["yes", "no"]} '
            '(input_length may be "variable" with "max_length"; see the README, "Your own model").'
        )
    data = read_json(path, f"The model card {path.name}")
    if not isinstance(data, dict):
        raise ModelError(f"The model card {path.name} must be a JSON object with sample_rate, input_length, labels.")
    return card_from_dict(data, source=path.name, fmt=fmt, gradients=gradients, default_name=model_file.stem), data


def card_from_dict(data: dict, *, source: str, fmt: str, gradients: bool, default_name: str) -> ModelCard:
    """Check the side-car fields and build the card (see :func:`read_card`)."""
    check_fields(data, f"the model card {source}", index_only=fmt in ("torchscript", "torch.export"))
    def field(name: str, kinds, *, required: bool = True, default=None):
        if name not in data:
            if required:
                raise ModelError(f"The model card {source} has no '{name}'; add it.")
            return default
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ModelError(f"'{name}' in the model card {source} has the wrong kind: {value!r}.")
        return value

    rate = field("sample_rate", int)
    check_rate(rate, source)
    if "labels" not in data:
        raise ModelError(f"The model card {source} has no 'labels'; add it.")
    labels = expand_labels(data["labels"], source)   # a list, or {"pattern": ..., "range": [a, b]}
    activation = field("activation", str, required=False, default="softmax").lower()
    if activation not in ACTIVATIONS:
        raise ModelError(f"'activation' in the model card {source} must be softmax or sigmoid; got {activation!r}.")
    length = field("input_length", (int, str))
    variable = isinstance(length, str)
    if variable and length.lower() != "variable":
        raise ModelError(f"'input_length' in the model card {source} is a number of samples or \"variable\"; "
                         f"got {length!r}.")
    max_len = field("max_length", int, required=variable)
    if variable:
        if max_len < 1:
            raise ModelError(f"'max_length' in the model card {source} must be a positive number of samples.")
        window = field("window", int, required=False, default=max_len)
        if not 0 < window <= max_len:
            raise ModelError(f"'window' in the model card {source} must lie in [1, max_length={max_len}].")
        num = window
    else:
        if length < 1:
            raise ModelError(f"'input_length' in the model card {source} must be a positive number of samples.")
        num = length
    emb = data.get("embedding_output")
    name = str(data.get("name") or default_name)
    return ModelCard(
        name=name, title=str(data.get("title") or name), sample_rate=rate, num_samples=int(num),
        labels=tuple(str(l) for l in labels), input_kind=f"waveform ({fmt})",
        training_data=str(data.get("training_data", "")), licence=str(data.get("licence", data.get("license", ""))),
        notes=str(data.get("notes", "")), activation=activation, variable_length=variable,
        max_samples=int(max_len) if variable else int(num), gradients=gradients, format=fmt,
        embedding=f"output {emb!r} of the model" if emb is not None else "",
    )


def check_rate(rate: Any, source: str) -> int:
    if not isinstance(rate, int) or isinstance(rate, bool) or not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise ModelError(f"The sample rate in {source} must be a whole number of Hz between {RATE_RANGE[0]:,} "
                         f"and {RATE_RANGE[1]:,}; got {rate!r}.")
    return rate


def check_declared_rate(card: ModelCard, declared: Any, where: str) -> None:
    """The rate stored in the model itself (file metadata, an attribute) must agree with the card's."""
    declared = declared_rate(declared, where)
    if declared is None:
        return
    if declared != card.sample_rate:
        raise ModelError(
            f"The model card says {card.sample_rate:,} Hz but {where} says {declared:,} Hz; set 'sample_rate' in "
            "the card to the rate the model was trained at."
        )


# ---- an embedding from the penultimate layer ---------------------------------------------------------

class InputCatcher:
    """Captures the input of one submodule during a forward pass (thread-safe: one slot per thread).

    ``catch(fn, x)`` runs ``fn(x)`` and returns what entered ``layer`` (the pooled hidden state before a
    classifier head), flattened to (B, D).
    """

    def __init__(self, layer: nn.Module):
        self._local = threading.local()
        layer.register_forward_pre_hook(self._hook)

    def __deepcopy__(self, memo):   # a copied model gets its own (empty) slots
        twin = object.__new__(InputCatcher)
        twin._local = threading.local()
        memo[id(self)] = twin
        return twin

    def _hook(self, module: nn.Module, args: tuple) -> None:
        if getattr(self._local, "armed", False) and args:
            self._local.value = args[0]

    def catch(self, fn: Callable[[Tensor], Any], x: Tensor) -> Tensor:
        self._local.armed, self._local.value = True, None
        try:
            fn(x)
            value = self._local.value
        finally:
            self._local.armed, self._local.value = False, None
        if value is None:
            raise ModelError("The model's penultimate layer was not reached on a forward pass; give the card an "
                             "'embedding_output' or add an `embed` method.")
        return value.reshape(value.shape[0], -1)


def last_linear(module: nn.Module) -> nn.Module | None:
    """The classifier head: a ``classifier`` / ``head`` / ``fc`` attribute, else the last ``nn.Linear``."""
    for name in ("classifier", "head", "fc", "out"):
        sub = getattr(module, name, None)
        if isinstance(sub, nn.Module):
            return sub
    last = None
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            last = sub
    return last


# ---- validation on load --------------------------------------------------------------------------------

def test_input(num_samples: int, batch: int = 2) -> Tensor:
    """A fixed test input: quiet noise (not silence, which some front ends turn into NaN by design)."""
    gen = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(batch, num_samples, generator=gen)


def validate(model: EarmarkModel, *, where: str = "the card") -> EarmarkModel:
    """One forward pass on a test input; the card's labels, finite outputs and gradients are checked.

    A model whose gradients do not reach the waveform is kept, with ``gradients`` turned off on its card.

    Raises:
        ModelError: one sentence that says what to fix.
    """
    card = model.card
    check_rate(card.sample_rate, where)
    x = test_input(card.num_samples).to(model.device)
    try:
        with torch.no_grad():
            out = model(x)
    except ModelError:
        raise
    except Exception as exc:  # the user's network failed on a plain input: say so in one sentence
        raise ModelError(
            f"The model failed on a test input of shape (2, {card.num_samples}) at {card.sample_rate:,} Hz "
            f"({type(exc).__name__}: {_first_line(exc)}); {failure_hint(exc, where)}."
        ) from None
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ModelError(f"The model must map waveforms (B, L) to logits (B, C); on (2, {card.num_samples}) it "
                         f"returned {shape}. Export the classifier's logits as its (first) output, or describe a "
                         "frame axis with 'frames' in the card (a model that scores every frame).")
    if out.shape[1] != card.num_classes:
        raise ModelError(
            f"The model returns {out.shape[1]} outputs per clip but {where} lists {card.num_classes} labels; "
            "make the labels match the outputs, one name per output in order."
        )
    if not bool(torch.isfinite(out).all()):
        raise ModelError("The model's outputs on a test input are not finite (NaN or inf); check the weights "
                         "and the export (a model that cannot score a quiet noise clip cannot be explained).")
    try:
        with torch.no_grad():
            emb = model.embed(x)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"The model's embedding failed on a test input ({type(exc).__name__}: "
                         f"{_first_line(exc)}); fix 'embedding_output' in {where} or leave it out.") from None
    if not isinstance(emb, Tensor) or emb.ndim != 2 or emb.shape[0] != 2 or not bool(torch.isfinite(emb).all()):
        raise ModelError(f"The model's embedding must be a finite (B, D) tensor; fix 'embedding_output' in {where}.")
    updates: dict[str, Any] = {}
    if card.embedding_dim is None:
        updates["embedding_dim"] = int(emb.shape[1])
    if card.gradients and not _gradients_reach_input(model, x[:1]):
        updates["gradients"] = False
        updates["notes"] = (card.notes + " " if card.notes else "") + (
            "Gradients do not reach the waveform (the graph is detached or not differentiable), so gradient "
            "and mask-optimisation explainers are unavailable.")
    if updates.get("gradients", card.gradients) and (note := probe_silence(model, card.num_samples)):
        updates["notes"] = (updates.get("notes", card.notes) + " " + note).strip()
    if updates:
        model.card = replace(card, **updates)
    return model


def _gradients_reach_input(model: EarmarkModel, x: Tensor) -> bool:
    x = x.clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = model(x)
            if not out.requires_grad:
                return False
            (g,) = torch.autograd.grad(out[:, 0].sum(), x, allow_unused=True)
    except RuntimeError:
        return False
    return g is not None and bool(torch.isfinite(g).all())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]
