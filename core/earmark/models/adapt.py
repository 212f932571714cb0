"""Real models as they ship, described by their card: Earmark adapts, the user writes no wrapper.

A loaded network (a PyTorch module, a TorchScript or torch.export program, an onnxruntime session) is a
*runner*: ``runner(main, named) → tuple of outputs``. :class:`Adapted` turns it into the Earmark contract
(waveform (B, L) → logits (B, C)) from these card fields (all optional):

``"input_layout"``: ``"B,L"`` (default), ``"B,L,1"`` or ``"B,1,L"``: the rank and layout of the waveform input.

``"extra_inputs"``: constant inputs fed on every call, e.g. ``{"sr": 16000}`` (forward keyword arguments for
PyTorch formats, named inputs for ONNX; numbers become the ONNX input's dtype).

``"stream"``: the model takes chunks; Earmark runs the chunk loop per call::

    {"chunk": 512, "hop": 512, "context": 64, "pad": "end", "standardize": false,
     "state_inputs": {"state": [2, "B", 128]}, "state_outputs": ["stateN"], "reset": "reset_states",
     "reset_per_call": true}

  ``chunk`` samples per step (``hop`` apart, default ``chunk``), each preceded by the ``context`` samples
  before it (zeros at the start); ``pad``: ``"end"`` zero-pads the last partial chunk, ``"center"`` pads
  ``chunk // 2`` zeros on both sides (frames centred on their times); ``standardize`` makes each chunk zero
  mean, unit standard deviation. A stateless stream runs every chunk in one batched call. A state is
  either passed explicitly (``state_inputs``: name → shape with ``"B"`` for the batch, zeros at the start;
  ``state_outputs``: the outputs, by index or name, fed back as the next chunk's state inputs, in order) or
  kept inside the module (``reset``: the method that clears it, called before every clip). The state never
  outlives a call (``reset_per_call`` must be true), and a module that keeps state gets a private copy per
  thread. Gradients flow through the loop for PyTorch formats. The per-chunk outputs are stacked on axis 1
  (the frame axis).

``"outputs"``: ``"logits"`` (default), ``"probabilities"`` or ``"log_probabilities"`` — what the model's
last layer emits under the card's ``activation``. Earmark converts exactly to logits it can explain:
softmax probabilities ``p`` → ``log p`` (so ``softmax(log p) = p``), sigmoid probabilities → ``log p −
log(1 − p)``, log-probabilities likewise; probabilities are clamped to ``[tiny, 1 − 2⁻²⁴]`` so the logits stay
finite.

``"frames"``: ``{"axis": 1, "pool": "mean" | "max" | "logsumexp", "hop": 0.01}``: the logits output has a
frame axis (``axis`` of the output; 1 by default and for streams) that is pooled for the class question.
``mean`` and ``max`` pool the model's own outputs (the mean speech probability over the clip, then
converted), ``logsumexp`` pools the converted logits (a soft maximum). :meth:`Adapted.frames` keeps the
per-frame logits track (B, T, C), ``hop`` seconds apart, for the recordings timeline.

``"logits_output"`` / ``"embedding_output"``: which output holds the logits (default 0) and which the
embedding (an index or an ONNX name; a frame axis is averaged, N-d embeddings flattened).

``"labels"`` may be a list or ``{"pattern": "note {i}", "range": [21, 109]}`` (``range`` as in Python: end
excluded), with ``"values": {"start": 31.7, "step_cents": 20}`` (or ``"step"``) to put ``{v}`` (e.g.
``"{v:.1f} Hz"``) in the names.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from .base import EarmarkModel, ModelCard
from .runners import OnnxRunner, TorchRunner

LAYOUTS = ("B,L", "B,L,1", "B,1,L")
OUTPUTS = ("logits", "probabilities", "log_probabilities")
POOLS = ("mean", "max", "logsumexp")
PADS = ("end", "center")
#: Card fields that ask for an adapter (any of them present: :class:`Adapted` serves the model).
FIELDS = ("outputs", "frames", "input_layout", "extra_inputs", "stream")
#: Most labels a pattern may produce.
MAX_LABELS = 100_000


def needed(data: dict) -> bool:
    """Whether the card asks for anything beyond waveform (B, L) → logits (B, C)."""
    return any(k in data for k in FIELDS)


# ---- the card fields ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stream:
    """The chunk loop (see the module docstring)."""

    chunk: int
    hop: int
    context: int = 0
    pad: str = "end"
    standardize: bool = False
    state_inputs: tuple[tuple[str, tuple], ...] = ()
    state_outputs: tuple[int | str, ...] = ()
    reset: str | None = None

    @property
    def stateful(self) -> bool:
        return bool(self.state_inputs) or self.reset is not None


@dataclass(frozen=True)
class Frames:
    axis: int = 1
    pool: str = "mean"
    hop: float | None = None


@dataclass(frozen=True)
class Adaptation:
    """Everything the card says about the model's inputs and outputs."""

    outputs: str = "logits"
    layout: str = "B,L"
    extra_inputs: dict[str, Any] = field(default_factory=dict)
    stream: Stream | None = None
    frames: Frames | None = None
    logits: int | str = 0
    embedding: int | str | None = None
    input_name: str | None = None

    def describe(self) -> dict[str, Any]:
        """Short facts for the card (``ModelCard.adapter``)."""
        out: dict[str, Any] = {"outputs": self.outputs, "input_layout": self.layout}
        if self.extra_inputs:
            out["extra_inputs"] = dict(self.extra_inputs)
        if self.stream is not None:
            s = self.stream
            out["stream"] = {"chunk": s.chunk, "hop": s.hop, "context": s.context, "stateful": s.stateful}
        if self.frames is not None:
            out["frames"] = {"axis": self.frames.axis, "pool": self.frames.pool, "hop": self.frames.hop}
        return out


def _bad(source: str, name: str, what: str) -> ModelError:
    return ModelError(f"'{name}' in the model card {source} {what}.")


def _int(value: Any, source: str, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(source, name, f"must be a whole number ≥ {low}; got {value!r}")
    return value


def _choice(value: Any, options: Sequence[str], source: str, name: str) -> str:
    if not isinstance(value, str) or value.replace(" ", "") not in options:
        raise _bad(source, name, f"must be one of {', '.join(options)}; got {value!r}")
    return value.replace(" ", "")


def _index(value: Any, source: str, name: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, int) and value < 0):
        raise _bad(source, name, f"must be an output index (0, 1, ...) or an output name; got {value!r}")
    return value


def _only(data: dict, allowed: Sequence[str], source: str, name: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _bad(source, name, f"has unknown key(s) {', '.join(unknown)} (known: {', '.join(allowed)})")


def parse(data: dict, source: str) -> Adaptation:
    """The adapter fields of a card dict, checked.

    Raises:
        ModelError: one sentence naming the field and what it must be.
    """
    outputs = _choice(data.get("outputs", "logits"), OUTPUTS, source, "outputs")
    layout = _choice(data.get("input_layout", "B,L"), LAYOUTS, source, "input_layout")
    extras = data.get("extra_inputs", {})
    if not isinstance(extras, dict) or not all(isinstance(k, str) for k in extras):
        raise _bad(source, "extra_inputs", 'must be an object of constant inputs such as {"sr": 16000}')
    for key, value in extras.items():
        if not isinstance(value, (int, float, bool, list)):
            raise _bad(source, "extra_inputs", f"holds {key}={value!r}; constants are numbers or lists of numbers")
    stream = None
    if "stream" in data:
        s = data["stream"]
        if not isinstance(s, dict):
            raise _bad(source, "stream", 'must be an object such as {"chunk": 512}')
        _only(s, ("chunk", "hop", "context", "pad", "standardize", "state_inputs", "state_outputs", "reset",
                  "reset_per_call"), source, "stream")
        if "chunk" not in s:
            raise _bad(source, "stream", "needs 'chunk' (samples per step)")
        chunk = _int(s["chunk"], source, "stream.chunk", 1)
        hop = _int(s.get("hop", chunk), source, "stream.hop", 1)
        context = _int(s.get("context", 0), source, "stream.context", 0)
        pad = _choice(s.get("pad", "end"), PADS, source, "stream.pad")
        if s.get("reset_per_call", True) is not True:
            raise _bad(source, "stream.reset_per_call", "must be true: Earmark scores every clip from a fresh state "
                       "(a state carried between calls would mix the explainer's perturbed clips)")
        states = s.get("state_inputs", {})
        if isinstance(states, list):
            raise _bad(source, "stream.state_inputs", 'must give each state\'s shape, e.g. {"state": [2, "B", 128]} '
                       '("B" = the batch)')
        if not isinstance(states, dict):
            raise _bad(source, "stream.state_inputs", 'must be an object name → shape, e.g. {"state": [2, "B", 128]}')
        state_inputs = []
        for name, shape in states.items():
            if not isinstance(shape, list) or not all(d == "B" or (isinstance(d, int) and not isinstance(d, bool)
                                                                    and d >= 0) for d in shape):
                raise _bad(source, "stream.state_inputs", f"gives {name} the shape {shape!r}; a shape is a list of "
                           'sizes with "B" for the batch')
            state_inputs.append((name, tuple(shape)))
        outs = s.get("state_outputs", [])
        if not isinstance(outs, list):
            raise _bad(source, "stream.state_outputs", "must be a list of output indices or names")
        outs = [_index(o, source, "stream.state_outputs") for o in outs]
        if len(outs) != len(state_inputs):
            raise _bad(source, "stream.state_outputs", f"lists {len(outs)} output(s) for {len(state_inputs)} state "
                       "input(s); give one output per state input, in order")
        reset = s.get("reset")
        if reset is not None and (not isinstance(reset, str) or not reset.isidentifier()):
            raise _bad(source, "stream.reset", f"must name a method of the module; got {reset!r}")
        stream = Stream(chunk=chunk, hop=hop, context=context, pad=pad, standardize=bool(s.get("standardize", False)),
                        state_inputs=tuple(state_inputs), state_outputs=tuple(outs), reset=reset)
    frames = None
    if "frames" in data:
        f = data["frames"]
        if not isinstance(f, dict):
            raise _bad(source, "frames", 'must be an object such as {"axis": 1, "pool": "mean", "hop": 0.01}')
        _only(f, ("axis", "pool", "hop"), source, "frames")
        hop = f.get("hop")
        if hop is not None and (isinstance(hop, bool) or not isinstance(hop, (int, float)) or not 0 < hop < 3600):
            raise _bad(source, "frames.hop", f"must be the seconds between frames (> 0); got {hop!r}")
        axis = _int(f.get("axis", 1), source, "frames.axis", 1)
        if stream is not None and axis != 1:
            raise _bad(source, "frames.axis", "must be 1 for a stream (Earmark stacks the chunks' outputs on axis 1)")
        frames = Frames(axis=axis, pool=_choice(f.get("pool", "mean"), POOLS, source, "frames.pool"),
                        hop=None if hop is None else float(hop))
    elif stream is not None:
        raise _bad(source, "frames", 'is needed for a stream: say how the per-chunk outputs are pooled, e.g. '
                   '{"pool": "max"}')
    emb = data.get("embedding_output")
    name = data.get("input_name")
    if name is not None and not isinstance(name, str):
        raise _bad(source, "input_name", f"must be the name of the waveform input; got {name!r}")
    return Adaptation(outputs=outputs, layout=layout, extra_inputs=dict(extras), stream=stream, frames=frames,
                      logits=_index(data.get("logits_output", 0), source, "logits_output"),
                      embedding=None if emb is None else _index(emb, source, "embedding_output"), input_name=name)


def expand_labels(value: Any, source: str) -> list[str]:
    """A card's ``labels``: a list, or ``{"pattern": ..., "range": [start, stop], "values": ...}``.

    Raises:
        ModelError: neither a non-empty list nor a valid pattern.
    """
    if isinstance(value, list):
        if not value or not all(isinstance(l, (str, int)) and not isinstance(l, bool) for l in value):
            raise ModelError(f"'labels' in the model card {source} must be a non-empty list of class names.")
        return [str(l) for l in value]
    if not isinstance(value, dict):
        raise ModelError(f"'labels' in the model card {source} must be a list of names or "
                         '{"pattern": "note {i}", "range": [21, 109]}.')
    _only(value, ("pattern", "range", "values"), source, "labels")
    pattern, span = value.get("pattern"), value.get("range")
    if not isinstance(pattern, str) or not isinstance(span, list) or len(span) != 2 or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in span) or not span[0] < span[1]:
        raise ModelError(f"'labels' in the model card {source} needs a 'pattern' and a 'range' [start, stop] of whole "
                         "numbers with start < stop (stop excluded).")
    if span[1] - span[0] > MAX_LABELS:
        raise ModelError(f"'labels' in the model card {source} asks for more than {MAX_LABELS:,} classes.")
    values = value.get("values")
    start = step = ratio = None
    if values is not None:
        if not isinstance(values, dict) or not isinstance(values.get("start"), (int, float)) or \
                ("step" in values) == ("step_cents" in values):
            raise ModelError(f"'labels.values' in the model card {source} is {{\"start\": number, \"step\": number}} "
                             "or {\"start\": number, \"step_cents\": number}.")
        start = float(values["start"])
        step = float(values.get("step", 0.0))
        ratio = 2 ** (float(values["step_cents"]) / 1200) if "step_cents" in values else None
    out = []
    for i in range(span[0], span[1]):
        k = i - span[0]
        v = None if start is None else (start * ratio ** k if ratio is not None else start + step * k)
        try:
            out.append(pattern.format(i=i, v=v))
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ModelError(f"The label pattern {pattern!r} in the model card {source} cannot be filled "
                             f"({type(exc).__name__}: {exc}); use {{i}} for the number and {{v}} for the value.") from None
    if len(set(out)) != len(out):
        raise ModelError(f"The label pattern {pattern!r} in the model card {source} gives repeated names; put {{i}} in it.")
    return out


def label_index(labels: Sequence[str], text: str) -> int:
    """``--target`` by name or index: the index of the label ``text`` (exact, then case-insensitive).

    Raises:
        ModelError: no such label (the message lists a few close names).
    """
    text = str(text).strip()
    if text.isdigit():
        i = int(text)
        if i < len(labels):
            return i
        raise ModelError(f"The target {i} is not a class index of this model (0 to {len(labels) - 1}).")
    if text in labels:
        return list(labels).index(text)
    folded = [l.casefold() for l in labels]
    if text.casefold() in folded:
        return folded.index(text.casefold())
    import difflib
    close = difflib.get_close_matches(text, list(labels), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
        f"; the labels are {', '.join(list(labels)[:6])}{', …' if len(labels) > 6 else ''}."
    raise ModelError(f"The model has no class named {text!r}{hint}")


def failure_hint(exc: BaseException, where: str) -> str:
    """What to fix when a model fails on its test input, judged from the error it raised."""
    text = str(exc)
    if "argument" in text and any(k in text for k in ("missing", "unexpected", "positional", "required")):
        return (f"the model's forward takes more than the waveform: give constant arguments in 'extra_inputs' of "
                f"{where} (e.g. {{\"sr\": 16000}}) or the recurrent state in 'stream'")
    low = text.lower()
    if any(k in low for k in ("expected 3d", "expected 4d", "expected 2d", "dimension", "rank", "unsqueeze",
                              "too many indices", "not enough values", "invalid rank", "index out of range")):
        return (f"the model seems to expect another input rank or layout: set 'input_layout' in {where} to \"B,L\", "
                "\"B,L,1\" or \"B,1,L\" (or 'stream' with a 'chunk' for a model that takes fixed chunks)")
    if "samples" in low or "size" in low or "shape" in low:
        return (f"check input_length and sample_rate in {where}, or 'stream' with a 'chunk' for a model that takes "
                "fixed chunks")
    return f"check input_length and sample_rate in {where}"


# ---- score conversions -------------------------------------------------------------------------------

def to_logits(scores: Tensor, outputs: str, activation: str) -> Tensor:
    """The model's outputs → logits whose ``activation`` gives back the model's probabilities.

    Args:
        scores: (..., C) what the model emits.
        outputs: ``"logits"``, ``"probabilities"`` or ``"log_probabilities"``.
        activation: ``"softmax"`` or ``"sigmoid"`` (the card's).
    """
    if outputs == "logits":
        return scores
    tiny = torch.finfo(scores.dtype).tiny
    top = 1.0 - 2.0 ** -24
    if outputs == "probabilities":
        p = scores.clamp(tiny, top if activation == "sigmoid" else 1.0)
        return p.log() - (-p).log1p() if activation == "sigmoid" else p.log()
    logp = scores.clamp(max=math.log(top)) if activation == "sigmoid" else scores
    return logp - torch.log(-torch.expm1(logp)) if activation == "sigmoid" else logp


# ---- the adapted model -------------------------------------------------------------------------------

class Adapted(EarmarkModel):
    """A network as the card describes it, in the Earmark contract.

    ``forward(wave)`` (B, L) → logits (B, C); :meth:`frames` (B, L) → per-frame logits (B, T, C) for a
    frame-level model; ``embed`` (B, L) → (B, D).
    """

    def __init__(self, runner: Callable, card: ModelCard, spec: Adaptation):
        super().__init__()
        self.runner = runner
        self.card = card
        self.spec = spec
        names = getattr(runner, "output_names", None)
        self._state_out = [self._resolve(o, names, "stream.state_outputs")
                           for o in (spec.stream.state_outputs if spec.stream else ())]

    @staticmethod
    def _resolve(key: int | str, names: list[str] | None, what: str) -> int:
        if isinstance(key, int):
            return key
        if names is None or key not in names:
            raise ModelError(f"The card's {what} {key!r} is not a named output of the model"
                             f"{' (outputs: ' + ', '.join(names) + ')' if names else '; use an output index'}.")
        return names.index(key)

    def __deepcopy__(self, memo):
        runner = self.runner if isinstance(self.runner, OnnxRunner) else copy.deepcopy(self.runner, memo)
        twin = Adapted(runner, self.card, self.spec)
        memo[id(self)] = twin
        return twin

    @property
    def frame_hop(self) -> float | None:
        """Seconds between the frames of :meth:`frames` (the card's ``frames.hop``, else the stream's hop)."""
        f, s = self.spec.frames, self.spec.stream
        if f is not None and f.hop is not None:
            return f.hop
        return s.hop / self.card.sample_rate if s is not None else None

    # ---- running the network ----
    def _layout(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1) if self.spec.layout == "B,L,1" else x.unsqueeze(1) if self.spec.layout == "B,1,L" else x

    def _outputs(self, wave: Tensor) -> tuple[Tensor, ...]:
        """Every (non-state) output; for a stream, per-chunk outputs stacked on axis 1."""
        if wave.ndim != 2:
            raise ModelError(f"Earmark feeds waveforms (B, L); got shape {tuple(wave.shape)}.")
        extras = dict(self.spec.extra_inputs)
        s = self.spec.stream
        if s is None:
            return self._select(self.runner(self._layout(wave), extras))
        windows = self._windows(wave, s)                       # (B, T, context + chunk)
        b, t = windows.shape[:2]
        if not s.stateful:                                     # every chunk in one batched call
            outs = self.runner(self._layout(windows.reshape(b * t, -1)), extras)
            return tuple(o.reshape(b, t, *o.shape[1:]) if o.shape[:1] == (b * t,) else o for o in self._select(outs))
        if s.reset is not None:
            self.runner.reset(s.reset)
        state = {name: torch.zeros([b if d == "B" else d for d in shape], device=wave.device, dtype=wave.dtype)
                 for name, shape in s.state_inputs}
        steps: list[tuple[Tensor, ...]] = []
        for i in range(t):
            outs = self.runner(self._layout(windows[:, i]), {**extras, **state})
            if len(outs) <= max(self._state_out, default=-1):
                raise ModelError(f"The model returns {len(outs)} output(s); the card's stream.state_outputs ask for "
                                 f"output {max(self._state_out)}.")
            state = {name: outs[j] for (name, _), j in zip(s.state_inputs, self._state_out)}
            steps.append(self._select(outs))
        return tuple(torch.stack([step[k] for step in steps], dim=1) for k in range(len(steps[0])))

    def _select(self, outs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return tuple(o for j, o in enumerate(outs) if j not in self._state_out)

    @staticmethod
    def _windows(wave: Tensor, s: Stream) -> Tensor:
        """(B, L) → (B, T, context + chunk): centred or end-padded chunks, each with its context before it."""
        x = F.pad(wave, (s.chunk // 2, s.chunk // 2)) if s.pad == "center" else wave
        n = x.shape[-1]
        steps = 1 + max(0, math.ceil((n - s.chunk) / s.hop))
        x = F.pad(x, (s.context, (steps - 1) * s.hop + s.chunk - n))
        windows = x.unfold(-1, s.context + s.chunk, s.hop)[:, :steps]
        if s.standardize:   # zero mean, unit std per chunk (sqrt(var + 1e-20): finite gradients on silence)
            mean = windows.mean(-1, keepdim=True)
            windows = (windows - mean) / (windows.var(-1, keepdim=True) + 1e-20).sqrt()
        return windows

    def _pick(self, outs: tuple[Tensor, ...], key: int | str, what: str) -> Tensor:
        j = self._resolve(key, self._names(), what)
        if not 0 <= j < len(outs):
            raise ModelError(f"The model returns {len(outs)} output(s); the card's {what} {key!r} does not exist.")
        return outs[j]

    def _names(self) -> list[str] | None:
        names = getattr(self.runner, "output_names", None)
        return None if names is None else [n for j, n in enumerate(names) if j not in self._state_out]

    def _frame_scores(self, out: Tensor) -> Tensor:
        """The logits output with its frame axis → (B, T, C) in the model's own output space."""
        axis = self.spec.frames.axis
        if out.ndim < 2 or axis >= out.ndim:
            raise ModelError(f"The card's frames.axis {axis} does not exist in the model's output of shape "
                             f"{tuple(out.shape)}; give the axis that counts frames.")
        out = out.movedim(axis, 1)
        return out.reshape(out.shape[0], out.shape[1], -1)

    # ---- the contract ----
    def forward(self, wave: Tensor) -> Tensor:
        out = self._pick(self._outputs(wave), self.spec.logits, "logits_output")
        f = self.spec.frames
        if f is None:
            return to_logits(out.reshape(out.shape[0], -1) if out.ndim > 2 else out, self.spec.outputs,
                             self.card.activation)
        scores = self._frame_scores(out)
        if f.pool == "logsumexp":
            return to_logits(scores, self.spec.outputs, self.card.activation).logsumexp(1)
        pooled = scores.mean(1) if f.pool == "mean" else scores.amax(1)
        return to_logits(pooled, self.spec.outputs, self.card.activation)

    def frames(self, wave: Tensor) -> Tensor:
        """Per-frame logits (B, T, C) of a frame-level model (``frame_hop`` seconds apart).

        Raises:
            ModelError: the card declares no frames.
        """
        if self.spec.frames is None:
            raise ModelError(f"The card of '{self.card.name}' declares no frame axis ('frames'), so the model has "
                             "no per-frame track.")
        out = self._pick(self._outputs(wave), self.spec.logits, "logits_output")
        return to_logits(self._frame_scores(out), self.spec.outputs, self.card.activation)

    def embed(self, wave: Tensor) -> Tensor:
        if self.spec.embedding is None:
            return self.forward(wave)
        out = self._pick(self._outputs(wave), self.spec.embedding, "embedding_output")
        if self.spec.frames is not None and out.ndim > 2:
            out = out.movedim(self.spec.frames.axis, 1).mean(1)
        return out.reshape(out.shape[0], -1)


def adapt(runner: Callable, card: ModelCard, data: dict, *, source: str) -> Adapted:
    """Wrap a runner by the card dict's adapter fields (the card gets ``adapter`` facts)."""
    from dataclasses import replace

    spec = parse(data, source)
    return Adapted(runner, replace(card, adapter=spec.describe()), spec)


def adapt_torch(network: nn.Module, card: ModelCard, data: dict, *, source: str,
                positional: Sequence[str] | None = None) -> Adapted:
    """A PyTorch callable by its card (a module keeping state gets a copy per thread); ``positional``: the
    input names after the waveform that a torch.export program takes by position."""
    spec = parse(data, source)
    per_thread = spec.stream is not None and spec.stream.reset is not None or bool(data.get("stateful", False))
    if positional is not None:
        fed = set(spec.extra_inputs) | {n for n, _ in (spec.stream.state_inputs if spec.stream else ())}
        unknown = sorted(fed - set(positional))
        if unknown:
            raise ModelError(f"The card of {source} feeds {', '.join(unknown)}, which the program does not take (its "
                             f"inputs after the waveform: {', '.join(positional) or 'none'}).")
    return adapt(TorchRunner(network, per_thread=per_thread, positional=positional), card, data, source=source)


def adapt_onnx(session, card: ModelCard, data: dict, *, source: str) -> Adapted:
    """An onnxruntime session by its card (every input must be fed: see :class:`OnnxRunner`)."""
    return adapt(OnnxRunner(session, parse(data, source), source), card, data, source=source)


__all__ = ["Adaptation", "Adapted", "Frames", "OnnxRunner", "Stream", "TorchRunner", "adapt", "adapt_onnx",
           "adapt_torch", "expand_labels", "label_index", "needed", "parse", "to_logits"]
