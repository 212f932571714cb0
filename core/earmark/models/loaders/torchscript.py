"""A TorchScript file (``.pt`` from ``torch.jit.script`` / ``torch.jit.trace``) with its card → EarmarkModel.

``torch.jit.load`` reads TorchScript code and tensors, not Python pickles: it cannot import Python classes
or run Python code. The card (``NAME.json`` beside the file) says the rate, the input length, the labels,
the activation and optionally ``embedding_output`` (an output index when ``forward`` returns a tuple, or
the name of a method such as ``"embed"``). A module attribute ``sample_rate``, when present, must agree with
the card. New exports: prefer :mod:`.export` (``torch.jit.script`` is deprecated in torch 2.14).
"""

from __future__ import annotations

import warnings

from pathlib import Path

import torch
from torch import Tensor, nn

from ...errors import ModelError
from ..base import EarmarkModel, ModelCard
from ..adapt import adapt_torch, needed
from .common import check_declared_rate, read_card
from .safety import check_script_module, check_torchscript_source, check_zip


class OutputSelect(EarmarkModel):
    """A network whose ``forward`` returns logits, or a tuple/list whose entry ``logits_index`` holds them;
    ``embed`` takes entry ``embedding`` of the tuple, calls the method named ``embedding``, or (``None``)
    returns the logits."""

    def __init__(self, network: nn.Module, card: ModelCard, *, embedding: int | str | None = None,
                 logits_index: int = 0):
        super().__init__()
        self.network = network
        self.card = card
        self.embedding = embedding
        self.logits_index = int(logits_index)

    def _outputs(self, wave: Tensor):
        out = self.network(wave)
        return out if isinstance(out, (tuple, list)) else (out,)

    def forward(self, wave: Tensor) -> Tensor:
        outs = self._outputs(wave)
        if self.logits_index >= len(outs):
            raise ModelError(f"The model returns {len(outs)} output(s); the card's logits index "
                             f"{self.logits_index} does not exist.")
        return outs[self.logits_index]

    def embed(self, wave: Tensor) -> Tensor:
        if self.embedding is None:
            return self.forward(wave)
        if isinstance(self.embedding, str):
            fn = getattr(self.network, self.embedding, None)
            if fn is None:
                raise ModelError(f"The model has no method '{self.embedding}' named by the card's embedding_output.")
            return fn(wave)
        outs = self._outputs(wave)
        if not 0 <= self.embedding < len(outs):
            raise ModelError(f"The card's embedding_output {self.embedding} is not among the model's "
                             f"{len(outs)} outputs.")
        return outs[self.embedding].reshape(wave.shape[0], -1)


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None,
         card: dict | None = None, source: str | None = None, installed: bool = False) -> EarmarkModel:
    """Load a TorchScript file and its card (see the module docstring).

    ``installed=True`` for a file inside an installed Python package, named by a card (the zoo): its
    package's code is already trusted by its installation, so its graph is not held to the operator
    allow-list (Silero VAD's scripted helpers use ``torch.no_grad`` and a scripted class); the archive checks
    still apply. Files from a path, ``$EARMARK_MODELS`` or an upload are always walked.

    Raises:
        ModelError: no card, a file that is not TorchScript, or a rate that disagrees with the module's.
    """
    path = Path(path)
    card, raw = read_card(path, fmt="torchscript", gradients=True, given=card, source=source)
    check_zip(path, "torchscript")
    check_torchscript_source(path)
    try:
        with warnings.catch_warnings():   # torch's deprecation notice is for torch users, not for the CLI's
            warnings.simplefilter("ignore", FutureWarning)
            network = torch.jit.load(str(path), map_location=device or "cpu")
    except Exception as exc:  # not a TorchScript archive
        raise ModelError(f"{path.name} is not a TorchScript file torch.jit.load can read "
                         f"({str(exc).strip().splitlines()[0][:200]}); save it with torch.jit.save.") from None
    if not installed:
        check_script_module(network, path.name)   # before anything in it runs
    network.eval()
    check_declared_rate(card, getattr(network, "sample_rate", None), "the module's sample_rate attribute")
    if window is not None:
        card = card.with_window(window)
    if needed(raw):
        return adapt_torch(network, card, raw, source=path.name)
    return OutputSelect(network, card, embedding=raw.get("embedding_output"),
                        logits_index=int(raw.get("logits_output", 0)))
