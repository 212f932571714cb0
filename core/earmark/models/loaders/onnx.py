"""An ONNX file with its card → EarmarkModel, run by onnxruntime (``earmark[onnx]``).

ONNX runs forward only: the card says ``gradients: false``, so the sampling explainers (FreqRISE, RELAX),
the energy reference, listening and every metric but the randomisation check work, and the gradient and
mask-optimisation explainers are refused with the reason. Export with a dynamic batch axis. Outputs: the
logits are output 0 (or the card's ``logits_output``, an index or a name); ``embedding_output`` names the
embedding output for RELAX. A metadata entry ``sample_rate`` in the file, when present, must agree with the
card. An ONNX file is a protobuf graph of standard operators: loading it runs no Python code; its external
data files must lie inside its folder (:mod:`.onnxcheck`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...errors import ModelError
from ..base import EarmarkModel, ModelCard
from ..adapt import adapt_onnx, needed
from .common import check_declared_rate, read_card, require
from .onnxcheck import check_external_data

EXTRA = "onnx"


class OnnxModel(EarmarkModel):
    """Waveforms (B, L) → the session's logits output, on the caller's device (computed by onnxruntime)."""

    def __init__(self, session, card: ModelCard, *, logits: int | str = 0, embedding: int | str | None = None):
        super().__init__()
        self.session = session
        self.card = card
        outputs = [o.name for o in session.get_outputs()]
        self.input_name = session.get_inputs()[0].name
        self.logits_name = self._output(outputs, logits, "logits_output")
        self.embedding_name = None if embedding is None else self._output(outputs, embedding, "embedding_output")

    @staticmethod
    def _output(outputs: list[str], key: int | str, field: str) -> str:
        if isinstance(key, int) and 0 <= key < len(outputs):
            return outputs[key]
        if isinstance(key, str) and key in outputs:
            return key
        raise ModelError(f"The card's {field} {key!r} is not an output of the ONNX model (outputs: "
                         f"{', '.join(outputs)}).")

    def _run(self, wave: Tensor, name: str) -> Tensor:
        x = wave.detach().to("cpu", torch.float32).contiguous().numpy()
        try:
            (out,) = self.session.run([name], {self.input_name: x})
        except Exception as exc:  # onnxruntime's own message, in one line
            raise ModelError(f"onnxruntime failed on an input of shape {tuple(x.shape)} "
                             f"({str(exc).strip().splitlines()[0][:200]}); export with a dynamic batch axis and the "
                             "card's input length.") from None
        return torch.from_numpy(np.ascontiguousarray(out)).to(wave.device)

    def forward(self, wave: Tensor) -> Tensor:
        return self._run(wave, self.logits_name)

    def embed(self, wave: Tensor) -> Tensor:
        if self.embedding_name is None:
            return self.forward(wave)
        out = self._run(wave, self.embedding_name)
        return out.reshape(out.shape[0], -1)

    def __deepcopy__(self, memo):  # the session is read-only: copies share it
        return OnnxModel(self.session, self.card, logits=self.logits_name, embedding=self.embedding_name)


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None,
         card: dict | None = None, source: str | None = None) -> EarmarkModel:
    """Load an ONNX file and its card into an onnxruntime session.

    Raises:
        ModelError: onnxruntime missing (names the extra), no card, an unreadable file, a disagreeing rate.
    """
    path = Path(path)
    card, raw = read_card(path, fmt="onnx", gradients=False, given=card, source=source)
    ort = require("onnxruntime", EXTRA, "an ONNX model")
    check_external_data(path, require("onnx", EXTRA, "an ONNX model"))   # before onnxruntime opens any file
    providers = ["CPUExecutionProvider"]
    if device is not None and torch.device(device).type == "cuda" and \
            "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        raise ModelError(f"onnxruntime could not read {path.name} ({str(exc).strip().splitlines()[0][:200]}).") from None
    meta = session.get_modelmeta().custom_metadata_map or {}
    check_declared_rate(card, meta.get("sample_rate"), f"the metadata of {path.name}")
    if window is not None:
        card = card.with_window(window)
    inputs = session.get_inputs()
    if needed(raw) or len(inputs) > 1 or len(inputs[0].shape or (0, 0)) != 2:   # extras, states, frames, layout
        return adapt_onnx(session, card, raw, source=path.name)
    return OnnxModel(session, card, logits=raw.get("logits_output", 0), embedding=raw.get("embedding_output"))
