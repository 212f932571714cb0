"""Runners: a loaded network (PyTorch or ONNX) called as ``runner(main, named) → tuple of outputs``, with
messages that name the real mismatch (a missing argument, an input the card does not feed, a rank)."""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ModelError

if TYPE_CHECKING:
    from .adapt import Adaptation

LAYOUTS = ("B,L", "B,L,1", "B,1,L")
OUTPUTS = ("logits", "probabilities", "log_probabilities")
POOLS = ("mean", "max", "logsumexp")
PADS = ("end", "center")
#: Card fields that ask for an adapter (any of them present: :class:`Adapted` serves the model).
FIELDS = ("outputs", "frames", "input_layout", "extra_inputs", "stream")
#: Most labels a pattern may produce.
MAX_LABELS = 100_000


# ---- runners: the loaded network as ``runner(main, named) → tuple of outputs`` -------------------------

class TorchRunner(nn.Module):
    """A PyTorch callable (module, TorchScript, torch.export program): ``network(main, **named)``.

    With ``per_thread`` (a module that keeps state on itself) every thread runs its own deep copy, made on
    its first call, so two jobs never share a state.
    """

    def __init__(self, network: nn.Module, *, per_thread: bool = False, positional: Sequence[str] | None = None):
        super().__init__()
        self.network = network
        self.per_thread = per_thread
        self.positional = list(positional) if positional is not None else None
        self._local = threading.local()
        self.output_names: list[str] | None = None

    def __deepcopy__(self, memo):
        twin = TorchRunner(copy.deepcopy(self.network, memo), per_thread=self.per_thread, positional=self.positional)
        memo[id(self)] = twin
        return twin

    def _net(self) -> nn.Module:
        if not self.per_thread:
            return self.network
        net = getattr(self._local, "net", None)
        if net is None:
            net = self._local.net = copy.deepcopy(self.network)
        return net

    def reset(self, method: str) -> None:
        fn = getattr(self._net(), method, None)
        if not callable(fn):
            raise ModelError(f"The model has no method '{method}' named by the card's stream.reset.")
        fn()

    def forward(self, main: Tensor, named: dict[str, Any]) -> tuple[Tensor, ...]:
        args: list[Any] = []
        if self.positional is not None:   # a torch.export program: its inputs by position, in its own order
            missing = [n for n in self.positional if n not in named]
            if missing:
                raise ModelError(f"The program takes the inputs {', '.join(self.positional)} after the waveform, and "
                                 f"the card feeds none to {', '.join(missing)}; give them in 'extra_inputs' "
                                 "(constants) or 'stream.state_inputs' (recurrent states).")
            args = [_as_tensor(named[n], main) for n in self.positional]
            named = {k: v for k, v in named.items() if k not in self.positional}
        try:
            out = self._net()(main, *args, **named)
        except ModelError:
            raise
        except TypeError as exc:   # a signature mismatch: say which argument
            raise ModelError(_signature_message(exc, named)) from None
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _as_tensor(value: Any, like: Tensor) -> Any:
    """A card constant for a graph input: numbers and lists become tensors on ``like``'s device."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, float) or (isinstance(value, list) and any(isinstance(v, float) for v in value)):
        return torch.tensor(value, dtype=like.dtype, device=like.device)
    return torch.tensor(value, device=like.device)


def _signature_message(exc: Exception, named: dict) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    fed = ", ".join(named) if named else "none"
    return (f"The model's forward does not take the inputs Earmark feeds it (the waveform plus extra inputs: {fed}): "
            f"{text}; give the missing arguments as constants in the card's 'extra_inputs' (e.g. {{\"sr\": 16000}}) "
            "or the state in 'stream'.")


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
                "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}


class OnnxRunner:
    """An onnxruntime session: the waveform goes to one input, the card's constants and states to the
    others; every input must be fed by some card field."""

    def __init__(self, session, spec: Adaptation, source: str):
        self.session = session
        inputs = session.get_inputs()
        self.output_names = [o.name for o in session.get_outputs()]
        self.dtypes = {i.name: _ONNX_DTYPES.get(i.type, np.float32) for i in inputs}
        fed = set(spec.extra_inputs) | {n for n, _ in (spec.stream.state_inputs if spec.stream else ())}
        unknown = sorted(fed - set(self.dtypes))
        if unknown:
            raise ModelError(f"The card of {source} feeds {', '.join(unknown)}, which the ONNX model does not take "
                             f"(its inputs: {_describe_inputs(inputs)}).")
        free = [i.name for i in inputs if i.name not in fed]
        if spec.input_name is not None:
            if spec.input_name not in self.dtypes:
                raise ModelError(f"The card's input_name {spec.input_name!r} is not an input of {source} "
                                 f"(its inputs: {_describe_inputs(inputs)}).")
            free = [n for n in free if n != spec.input_name]
            self.main = spec.input_name
        else:
            self.main = free.pop(0) if free else None
        if self.main is None or free:
            raise ModelError(
                f"The ONNX model {source} has {len(inputs)} inputs ({_describe_inputs(inputs)}) and Earmark feeds "
                f"the waveform to one{' (' + self.main + ')' if self.main else ''}; feed "
                f"{', '.join(free) or 'the rest'} from the card: constants in 'extra_inputs' (e.g. {{\"sr\": 16000}}), "
                "recurrent states in 'stream.state_inputs', or name the waveform input in 'input_name'.")
        rank = len(inputs[[i.name for i in inputs].index(self.main)].shape or [])
        want = 2 if spec.layout == "B,L" else 3
        if rank and rank != want:
            fix = '"B,L"' if rank == 2 else '"B,L,1" or "B,1,L"'
            raise ModelError(f"The ONNX model's input '{self.main}' has rank {rank}, but the card's input_layout "
                             f"{spec.layout!r} feeds rank {want}; set 'input_layout' to {fix}.")

    def reset(self, method: str) -> None:
        raise ModelError("An ONNX model keeps no state of its own; pass its state with stream.state_inputs instead of "
                         "stream.reset.")

    def __call__(self, main: Tensor, named: dict[str, Any]) -> tuple[Tensor, ...]:
        feed = {self.main: main.detach().to("cpu", torch.float32).contiguous().numpy()}
        for key, value in named.items():
            v = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
            feed[key] = v.astype(self.dtypes[key], copy=False)
        try:
            outs = self.session.run(None, feed)
        except Exception as exc:  # onnxruntime's own message, in one line
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feed.items())
            raise ModelError(f"onnxruntime failed on the inputs {shapes} "
                             f"({str(exc).strip().splitlines()[0][:200]}); check the card's input_layout, "
                             "extra_inputs and stream against the model's inputs.") from None
        return tuple(torch.from_numpy(np.ascontiguousarray(o)).to(main.device) for o in outs)


def _describe_inputs(inputs) -> str:
    return ", ".join(f"{i.name} {list(i.shape) if i.shape is not None else '?'} {i.type}" for i in inputs)
