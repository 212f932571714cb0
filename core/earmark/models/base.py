"""The model contract: waveform (B, L) → logits (B, C), ``embed`` (B, L) → (B, D), and a card."""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import ModelError
from ..outputs import activation, log_activation


@dataclass(frozen=True)
class ModelCard:
    """What a person needs to know before trusting a model's explanation.

    Attributes:
        name: registry name, e.g. ``"audionet-digits"``.
        title: human title.
        sample_rate: rate in Hz the model expects.
        num_samples: input length L in samples.
        labels: class names, index = logit position.
        input_kind: ``"waveform"`` or ``"log-mel (inside the model)"`` and the like.
        training_data: data set and split.
        licence: licence of the training data (and credit).
        metrics: measured numbers, e.g. ``{"test_accuracy": 0.97}``.
        training_command: the command that produced the weights.
        embedding_dim: size of ``embed``'s output.
        notes: free text.
        activation: ``"softmax"`` (one class per clip) or ``"sigmoid"`` (multi-label: every class is its
            own yes/no; explain one chosen class).
        variable_length: the model accepts any input length up to ``max_samples``; ``num_samples`` is then
            the window in use (the maximum, or one the user picked).
        max_samples: the longest input the model accepts (``None``: no limit known).
        gradients: gradients flow from the output back to the waveform (``False`` for ONNX): gradient and
            mask-optimisation explainers need them.
        format: where the model came from: ``bundled``, ``hf``, ``torchscript``, ``torch.export``, ``onnx``,
            ``speechbrain``, ``entrypoint`` or ``module``.
        embedding: where ``embed`` comes from, for a person (e.g. "pooled hidden state").
        adapter: what Earmark adapts from the card (outputs, frames, input layout, extra inputs, stream;
            see :mod:`earmark.models.adapt`); empty for a plain waveform → logits model.
    """

    name: str
    title: str
    sample_rate: int
    num_samples: int
    labels: tuple[str, ...]
    input_kind: str = "waveform"
    training_data: str = ""
    licence: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training_command: str = ""
    embedding_dim: int | None = None
    notes: str = ""
    activation: str = "softmax"
    variable_length: bool = False
    max_samples: int | None = None
    gradients: bool = True
    format: str = "bundled"
    embedding: str = ""
    adapter: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def multi_label(self) -> bool:
        return self.activation == "sigmoid"

    @property
    def capabilities(self) -> dict[str, Any]:
        """What the model allows: ``gradients`` (gradient and optimisation explainers, randomisation check),
        ``embedding`` (RELAX compares representations), ``variable_length``, ``multi_label``."""
        return {"gradients": self.gradients, "embedding": bool(self.embedding) or self.embedding_dim is not None,
                "variable_length": self.variable_length, "multi_label": self.multi_label}

    def facts(self) -> dict[str, str]:
        """The card's facts as short strings for a person (the app's model card, ``earmark list``)."""
        rate = f"{self.sample_rate:,} Hz"
        seconds = self.num_samples / self.sample_rate
        if self.variable_length:
            top = "no fixed limit" if self.max_samples is None else (
                f"at most {self.max_samples:,} samples ({self.max_samples / self.sample_rate:g} s)")
            length = f"variable ({top}); window in use {self.num_samples:,} samples ({seconds:g} s)"
        else:
            length = f"{self.num_samples:,} samples ({seconds:g} s)"
        labels = ", ".join(self.labels[:12]) + (f", … ({self.num_classes} in all)" if self.num_classes > 12 else "")
        out = {"format": self.format, "sample rate": rate, "input length": length, "labels": labels,
               "output": "sigmoid (multi-label: each class on its own)" if self.multi_label
               else "softmax (one class per clip)",
               "gradients": "yes" if self.gradients else "no (gradient and mask-optimisation explainers unavailable)",
               "embedding for RELAX": self.embedding or (f"{self.embedding_dim}-d `embed`" if self.embedding_dim
                                                          else "the logits (no embedding given)")}
        if self.adapter:
            out["adapted from the card"] = "; ".join(f"{k} {v}" for k, v in self.adapter.items())
        if self.licence:
            out["licence"] = self.licence
        return out

    def probabilities(self, logits: Tensor) -> Tensor:
        """(..., C) logits → class probabilities by the card's activation (softmax or sigmoid)."""
        return activation(logits, multi_label=self.multi_label)

    def log_probabilities(self, logits: Tensor) -> Tensor:
        """(..., C) logits → log-probabilities by the card's activation."""
        return log_activation(logits, multi_label=self.multi_label)

    def with_window(self, num_samples: int) -> "ModelCard":
        """The card with another input window (only for variable-length models, within the maximum).

        Raises:
            ModelError: a fixed-length model, or a window outside (0, max_samples].
        """
        num_samples = int(num_samples)
        if num_samples == self.num_samples:
            return self
        if not self.variable_length:
            raise ModelError(f"The model '{self.name}' takes exactly {self.num_samples:,} samples; "
                             "it has no window to choose.")
        if num_samples < 1 or (self.max_samples is not None and num_samples > self.max_samples):
            raise ModelError(f"A window of {num_samples:,} samples does not fit '{self.name}': choose at most "
                             f"{self.max_samples:,} samples ({self.max_samples / self.sample_rate:g} s).")
        return replace(self, num_samples=num_samples)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        data = json.loads(text)
        data["labels"] = tuple(data["labels"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        return cls.from_json(Path(path).read_text())


class EarmarkModel(nn.Module):
    """A classifier in the Earmark contract.

    ``forward(wave)`` maps a batch of waveforms (B, L) to logits (B, C); ``embed(wave)`` maps them to a
    representation (B, D) (RELAX compares these). ``card`` describes it.
    """

    card: ModelCard
    _frozen: bool = False

    def embed(self, wave: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    # ---- sharing: :func:`earmark.models.load_model` hands every caller the same module ----------------
    def freeze(self) -> "EarmarkModel":
        """Eval mode, no parameter gradients, and from now on refuse changes that would reach every
        caller sharing this module (training mode, parameter gradients, moving or casting it, new weights,
        hooks). :meth:`private_copy` gives a copy to change."""
        for m in self.modules():   # not .train(False): exported programs refuse it, and are traced in eval mode
            m.training = False
        for p in self.parameters():
            p.requires_grad_(False)
        self._frozen = True
        return self

    @property
    def frozen(self) -> bool:
        return self._frozen

    def private_copy(self) -> "EarmarkModel":
        """A deep copy that belongs to the caller alone (not frozen), e.g. to fine-tune or randomise."""
        import copy

        twin = copy.deepcopy(self)
        twin._frozen = False
        return twin

    def _refuse(self, what: str) -> None:
        if self._frozen:
            raise ModelError(
                f"This model is shared by everyone who loaded '{self.card.name}', so it cannot be {what}; "
                "take `model.private_copy()` (or `earmark.models.load_model(..., shared=False)`) and change that."
            )

    def train(self, mode: bool = True) -> "EarmarkModel":
        if mode:
            self._refuse("put in training mode")
        return super().train(mode)

    def requires_grad_(self, requires_grad: bool = True) -> "EarmarkModel":
        if requires_grad:
            self._refuse("given parameter gradients")
        return super().requires_grad_(requires_grad)

    def _apply(self, fn, recurse: bool = True):
        self._refuse("moved to another device or cast to another dtype")
        return super()._apply(fn, recurse)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._refuse("given new weights")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def register_forward_hook(self, *args, **kwargs):
        self._refuse("given a forward hook")
        return super().register_forward_hook(*args, **kwargs)

    def register_forward_pre_hook(self, *args, **kwargs):
        self._refuse("given a forward hook")
        return super().register_forward_pre_hook(*args, **kwargs)

    @property
    def device(self) -> torch.device:
        """Where the model computes (its first parameter or buffer; CPU for parameter-free models)."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")


class ModuleModel(EarmarkModel):
    """Wraps a user's ``nn.Module`` (waveform → logits) into the contract; see :func:`from_module`."""

    def __init__(self, module: nn.Module, card: ModelCard, embed_fn: Callable[[Tensor], Tensor] | None):
        super().__init__()
        self.module = module
        self.card = card
        self._embed_fn = embed_fn

    def forward(self, wave: Tensor) -> Tensor:
        return self.module(wave)

    def embed(self, wave: Tensor) -> Tensor:
        if self._embed_fn is not None:
            return self._embed_fn(wave)
        # No representation given: the logits are the representation the model exposes.
        return self.module(wave)


def from_module(
    module: nn.Module,
    *,
    sample_rate: int,
    num_samples: int,
    labels: Sequence[str],
    name: str = "custom",
    embed: Callable[[Tensor], Tensor] | str | None = None,
    title: str | None = None,
    notes: str = "",
) -> EarmarkModel:
    """Make any PyTorch audio classifier explainable by Earmark.

    Args:
        module: an ``nn.Module`` mapping waveforms (B, L) at ``sample_rate`` to logits (B, C).
        sample_rate: the rate the module expects, in Hz.
        num_samples: the input length L the module expects.
        labels: the C class names.
        name: a short name used in outputs.
        embed: a callable (B, L) → (B, D), or the name of a method of ``module`` (e.g. ``"embed"``);
            ``None`` uses the logits as the representation (RELAX then compares logits).
        title: human title (defaults to ``name``).
        notes: free text for the card.

    Returns:
        An :class:`EarmarkModel` in eval mode.

    Raises:
        ModelError: the module does not map (1, L) to (1, len(labels)).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(16, 3))
        >>> model = from_module(net, sample_rate=8000, num_samples=16, labels=["a", "b", "c"])
        >>> model(torch.zeros(2, 16)).shape
        torch.Size([2, 3])
    """
    if isinstance(embed, str):
        if not hasattr(module, embed):
            raise ModelError(f"The module has no method '{embed}' to use as its embedding.")
        embed = getattr(module, embed)
    card = ModelCard(
        name=name, title=title or name, sample_rate=int(sample_rate), num_samples=int(num_samples),
        labels=tuple(str(l) for l in labels), input_kind="waveform (user module)", notes=notes,
    )
    model = ModuleModel(module, card, embed).eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, card.num_samples, device=model.device))
    except Exception as exc:  # the user's module failed on a plain input: say so
        raise ModelError(f"The module failed on a zero waveform of shape (1, {num_samples}): {exc}") from exc
    if out.ndim != 2 or out.shape[1] != card.num_classes:
        raise ModelError(
            f"The module must map (B, {num_samples}) to logits (B, {card.num_classes}); "
            f"it returned shape {tuple(out.shape)}."
        )
    return model


def save_weights(model: nn.Module, path: str | Path, *, half: bool = True) -> None:
    """Save a plain state dict (float16 on disk when ``half``), loadable with ``weights_only=True``."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(state, Path(path))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict saved by :func:`save_weights` (never unpickles objects)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"Model weights not found at {path}. Train them with `earmark train`.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in state.items()}
    model.load_state_dict(state)
    return model


_FINGERPRINTS: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 (hex, first 16 digits) of the model's parameters and buffers, names and values in order: which
    weights produced a saved explanation. Cached per model object (weights are not expected to change
    after loading); ``"none"`` for a model without tensors (e.g. an ONNX session)."""
    try:
        return _FINGERPRINTS[model]
    except (KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    count = 0
    for name, tensor in model.state_dict().items():
        if not isinstance(tensor, Tensor):
            continue
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(name.encode() + str(t.dtype).encode() + str(tuple(t.shape)).encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        count += 1
    value = digest.hexdigest()[:16] if count else "none"
    try:
        _FINGERPRINTS[model] = value
    except TypeError:
        pass
    return value
