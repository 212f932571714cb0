"""The model contract: waveform (B, L) → logits (B, C), ``embed`` (B, L) → (B, D), and a card."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import ModelError


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

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        data = json.loads(text)
        data["labels"] = tuple(data["labels"])
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        return cls.from_json(Path(path).read_text())


class EarmarkModel(nn.Module):
    """A classifier in the Earmark contract.

    ``forward(wave)`` maps a batch of waveforms (B, L) to logits (B, C); ``embed(wave)`` maps them to a
    representation (B, D) (RELAX compares these). ``card`` describes it.
    """

    card: ModelCard

    def embed(self, wave: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError


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
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = model(torch.zeros(1, card.num_samples, device=device))
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
