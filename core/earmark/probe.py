"""One clip, one model, one domain: the mechanism under every explainer, metric and the listening path.

Everything Earmark does with a clip is one of two things:

* **score** many perturbed versions ``synthesize(z·M + (1−M)·b)`` through the model (a batch of masks M);
* take the **gradient** of a class score with respect to coefficients, ``∂f_c(synthesize(z'))/∂z'``.

:class:`Probe` owns both, plus batching (chunks sized to the device), the device, and progress.
Explainers and metrics then only say what is specific to them.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Callable, Literal

import torch
from torch import Tensor

from .device import model_device
from .errors import ConfigError
from .outputs import activation, log_activation
from .tape import Tape
from .transforms import Transform

#: ``progress(fraction in [0, 1], stage)``; ``stage`` names the current step for a person.
ProgressFn = Callable[[float, str], None]
#: A scalar per clip, of the target class: the values every ``readout`` option accepts.
Readout = Literal["prob", "logit", "log_prob"]


#: The one dispatch table of the readouts: ``(N, C) logits, target, multi_label → (N,)``.
READOUTS: dict[str, Callable[[Tensor, int, bool], Tensor]] = {
    "prob": lambda logits, c, ml: activation(logits, multi_label=ml)[:, c],
    "logit": lambda logits, c, ml: logits[:, c],
    "log_prob": lambda logits, c, ml: log_activation(logits, multi_label=ml)[:, c],
}
#: The readouts' names for a person.
READOUT_NAMES: dict[str, str] = {"prob": "probability", "logit": "logit", "log_prob": "log-probability"}


def read_class(logits: Tensor, target: int, readout: Readout, *, multi_label: bool = False) -> Tensor:
    """(N, C) logits → (N,) score of class ``target`` by :data:`READOUTS`.

    Raises:
        ConfigError: a readout that is not one of :data:`READOUTS`.
    """
    if readout not in READOUTS:
        raise ConfigError(f"Unknown readout '{readout}'. Use one of: {', '.join(READOUTS)}.")
    return READOUTS[readout](logits, target, multi_label)


#: A vector per clip: all ``logits`` or ``probs`` (N, C), or the model's ``embedding`` (N, D).
Output = Literal["logits", "probs", "embedding"]
BaselineKind = Literal["zero", "mean", "min"]
BASELINES: tuple[str, ...] = ("zero", "mean", "min")


#: Number formats for the scoring (forward-only) passes: float32, or a reduced format under
#: ``torch.autocast`` (the model's matrix products and convolutions in 16 bits, its reductions in 32).
#: Gradients stay in float32. The gain and the maps' agreement with float32 are measured by
#: ``earmark bench --precision`` (docs/studies/speed.md); float32 is the default everywhere.
PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_precision(precision) -> str:
    """The precision's name; one sentence when it is not one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision {precision!r}. Use one of: {', '.join(PRECISIONS)}.")
    return str(precision)


def no_progress(fraction: float, stage: str = "") -> None:
    """A progress callback that does nothing."""


def sub_progress(progress: ProgressFn | None, start: float, end: float, stage: str = "") -> ProgressFn:
    """Map a stage's own 0→1 onto ``[start, end]`` of the caller's progress."""
    outer = progress or no_progress

    def inner(fraction: float, name: str = "") -> None:
        outer(start + (end - start) * min(max(fraction, 0.0), 1.0), name or stage)

    return inner


def baseline_coeffs(z: Tensor, kind: BaselineKind | Tensor) -> Tensor:
    """The replacement value for masked-out coefficients.

    Args:
        z: (*S) clean coefficients.
        kind: ``"zero"``; ``"mean"`` (the mean coefficient of the clip); ``"min"`` (the coefficient of
            smallest magnitude — the quietest value the clip has); or a tensor broadcastable to ``z``.
    """
    if isinstance(kind, Tensor):
        return kind.to(z)
    if kind == "zero":
        return torch.zeros((), dtype=z.dtype, device=z.device)
    if kind == "mean":
        return z.mean()
    if kind == "min":
        return z.flatten()[z.abs().flatten().argmin()]
    raise ConfigError(f"Unknown baseline '{kind}'. Use one of: {', '.join(BASELINES)}.")


def default_batch_size(device: torch.device, num_samples: int, *, backward: bool) -> int:
    """The most items per model call the device's memory allows (``$EARMARK_BATCH`` if set).

    On a CUDA device this is also the chunk used; elsewhere :func:`chunk_size` takes a fixed chunk within
    this bound.
    """
    if os.environ.get("EARMARK_BATCH"):
        text = os.environ["EARMARK_BATCH"].strip()
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"EARMARK_BATCH must be a whole number of at least 1 (items per model call); "
                              f"got {text!r}. Unset it to size batches automatically.")
        return int(text)
    # ~1.6 MB of activations per second of 8 kHz audio and 100 channels, ×3 when keeping the graph.
    per_item = 4 * 100 * num_samples * (3 if backward else 1) * 2
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(max(1, min(512, free * 0.5 // per_item)))
    # Long items (10 s at 16 kHz: ~0.4 GB each with the graph) are bounded by the memory free now.
    budget = min(1.5e9, 0.25 * available_memory())
    return int(max(1, min(512, budget // per_item)))


def available_memory() -> float:
    """Bytes of main memory available to new allocations (``MemAvailable``; 8 GB where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8e9


#: Samples per model call on the CPU for a forward pass (half that when the graph is kept for a gradient).
#: The chunk is a fixed function of the clip length and the pass kind, never of a timing: a CPU library may
#: pick other kernels for other batch sizes, so a chunk measured on a busy machine gave other bits for the
#: same seed. 2**16 samples is 8 one-second 8 kHz clips per call (4 with a gradient): a call's activations
#: stay in the CPU's caches. Measured on AudioNet, one thread (docs/studies/speed.md): 7.5–8.8 ms an item
#: forward at 1–8 items, 13.6–17.4 ms at 16–64; 27.7 ms forward + backward at 4 items, 40 ms at 32–64.
CPU_CHUNK_SAMPLES = 1 << 16
#: The most items per CPU call, whatever the clip length.
CPU_CHUNK_MAX = 64

_CHUNKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CHUNKS_LOCK = threading.Lock()


def cpu_chunk(num_samples: int, *, backward: bool, budget: tuple[int, int] | None = None) -> int:
    """Items per CPU model call for clips of ``num_samples``: the largest power of two within the samples
    ``budget`` (forward, with a gradient; default :data:`CPU_CHUNK_SAMPLES`, halved with a gradient) and
    :data:`CPU_CHUNK_MAX`, at least 1."""
    forward, with_grad = budget or (CPU_CHUNK_SAMPLES, CPU_CHUNK_SAMPLES // 2)
    budget = with_grad if backward else forward
    items = max(1, min(CPU_CHUNK_MAX, budget // max(1, int(num_samples))))
    return 1 << (items.bit_length() - 1)


def chunk_size(model, device: torch.device, num_samples: int, *, backward: bool) -> int:
    """Items per model call for ``model`` on ``device``: ``$EARMARK_BATCH``; the memory bound on CUDA;
    else :func:`cpu_chunk` within the memory bound.

    The same (clip length, pass kind) always gives the same chunk on a machine with the memory free, so
    the same seed gives the same bits whatever the load. The chunk used is recorded per model
    (:func:`measured_chunks`) for the provenance and ``earmark bench``.
    """
    if os.environ.get("EARMARK_BATCH") or device.type == "cuda":
        size = default_batch_size(device, num_samples, backward=backward)
    else:
        size = min(cpu_chunk(num_samples, backward=backward, budget=model_chunk_budget(model)),
                   default_batch_size(device, num_samples, backward=backward))
    key = (str(device), torch.get_num_threads(), int(num_samples), bool(backward))
    with _CHUNKS_LOCK:
        try:
            _CHUNKS.setdefault(model, {})[key] = size
        except TypeError:                                       # not weak-referenceable: not recorded
            pass
    return size


def model_chunk_budget(model) -> tuple[int, int] | None:
    """The model's own CPU samples budget per call, ``(forward, with a gradient)``, where its kind declares
    one (``cpu_chunk_samples``: a model whose cost is mostly per call, e.g. a transformer); else ``None``."""
    budget = getattr(model, "cpu_chunk_samples", None)
    if budget is None:
        return None
    forward, with_grad = (int(v) for v in budget)
    return max(1, forward), max(1, with_grad)


def measured_chunks(model) -> dict[tuple, int]:
    """The chunk sizes used so far for ``model``: ``{(device, threads, length, backward): size}``."""
    with _CHUNKS_LOCK:
        return dict(_CHUNKS.get(model, {}))


class Probe:
    """A clip seen through ``model`` in ``transform``'s domain.

    Args:
        model: an :class:`~earmark.models.EarmarkModel` (waveform (B, L) → logits (B, C)).
        transform: the domain to perturb and attribute in.
        x: (L,) or (1, L) waveform at the model's rate and length.
        target: class to explain; ``None`` = the predicted class.
        batch_size: items per model call (default: sized to the device).
        progress: ``progress(fraction, stage)`` called as chunks finish.
        contrast: a second class B: the target's scalar readouts (:meth:`read`, so :meth:`score` and
            :meth:`grad`) become ``readout_A − readout_B`` ("A rather than B"; for ``logit`` the difference
            of the two logits, for ``log_prob`` the same under a softmax). ``None`` = plain readouts.
        tape: a :class:`~earmark.tape.Tape`: every sub-call of :meth:`score` and :meth:`grad` is answered
            from it when it holds the answer (a continued run), else computed and recorded there.
        precision: the number format of the scoring passes (:data:`PRECISIONS`); answers are float32.

    Attributes:
        coeffs: (*S) clean coefficients on the model's device.
        logits, probs: (C,) the model's output on the clean clip.
        target: the explained class.  map_shape: ``M``.  length: ``L``.
    """

    def __init__(self, model, transform: Transform, x: Tensor, *, target: int | None = None,
                 batch_size: int | None = None, progress: ProgressFn | None = None, contrast: int | None = None,
                 tape: Tape | None = None, precision: str = "float32"):
        self.model = model
        self.precision = check_precision(precision)
        self.transform = transform
        self.device = model_device(model)
        self.x = x.reshape(1, -1).to(self.device, torch.float32)
        self.length = self.x.shape[-1]
        self.coeffs = transform.analyze(self.x)[0].detach()
        self.map_shape = tuple(transform.map_shape(self.length))
        with torch.no_grad():
            self.logits = model(self.x)[0]
        card = getattr(model, "card", None)
        #: sigmoid outputs (multi-label): each class's probability on its own, not a softmax over classes.
        self.multi_label = bool(getattr(card, "multi_label", False))
        self.probs = self.activate(self.logits)
        self.num_classes = self.logits.shape[-1]
        if target is None:
            target = int(self.logits.argmax())
        if not 0 <= int(target) < self.num_classes:
            raise ConfigError(f"Target class {target} does not exist; the model has {self.num_classes} classes.")
        self.target = int(target)
        #: "target rather than contrast": every scalar readout of the target becomes readout(A) − readout(B).
        self.contrast = check_contrast(contrast, self.target, self.num_classes)
        self.progress = progress or no_progress
        self._batch = batch_size
        self._clean_embedding: Tensor | None = None
        self._coeff_planes: tuple[Tensor, Tensor] | None = None
        self.forward_passes = 0
        self.backward_passes = 0
        #: the record of this run's model answers (:mod:`earmark.tape`): written as it goes, read on Continue.
        self.tape = tape
        self._calls = 0

    # ---- helpers -----------------------------------------------------------------------------
    def activate(self, logits: Tensor) -> Tensor:
        """(..., C) logits → probabilities by the model's activation (softmax, or sigmoid when multi-label)."""
        return activation(logits, multi_label=self.multi_label)

    def log_activate(self, logits: Tensor) -> Tensor:
        """(..., C) logits → log-probabilities by the model's activation."""
        return log_activation(logits, multi_label=self.multi_label)

    def batch_size(self, *, backward: bool) -> int:
        """Items per model call: the ``batch_size`` given, else :func:`chunk_size` (measured, cached)."""
        return self._batch or chunk_size(self.model, self.device, self.length, backward=backward)

    def waves(self, z: Tensor) -> Tensor:
        """(N, *S) coefficients → (N, L) waveforms."""
        return self.transform.synthesize(z, self.length)

    def apply_masks(self, masks: Tensor, baseline: BaselineKind | Tensor = "zero") -> Tensor:
        """(N, *M) masks in [0, 1] → (N, *S) coefficients ``z·lift(M) + (1 − lift(M))·b``."""
        lifted = self.transform.lift(masks.to(self.device, self.coeffs.real.dtype))
        if isinstance(baseline, str) and baseline == "zero" and not lifted.requires_grad:   # scoring: one pass
            return scale_coeffs(self.coeffs, lifted, planes=self._planes())
        base = baseline_coeffs(self.coeffs, baseline)
        return self.coeffs * lifted + (1 - lifted) * base

    def _planes(self) -> tuple[Tensor, Tensor] | None:
        """The clean coefficients' real and imaginary parts as contiguous arrays (complex domains only)."""
        if not self.coeffs.is_complex():
            return None
        if self._coeff_planes is None:
            self._coeff_planes = (self.coeffs.real.contiguous(), self.coeffs.imag.contiguous())
        return self._coeff_planes

    def clean_embedding(self) -> Tensor:
        if self._clean_embedding is None:
            with torch.inference_mode(False), torch.no_grad():  # a normal tensor: gradients may use it later
                self._clean_embedding = self.model.embed(self.x)[0]
        return self._clean_embedding

    def read(self, waves: Tensor, readout: Readout | Output, target: int | None = None) -> Tensor:
        """Model readout on (N, L) waveforms: (N,) for a :data:`Readout`, (N, C) or (N, D) for an :data:`Output`."""
        if readout == "embedding":
            return self.model.embed(waves)
        logits = self.model(waves)
        if readout == "logits":
            return logits
        if readout == "probs":
            return self.activate(logits)
        return self.class_score(logits, readout, target)

    def class_score(self, logits: Tensor, readout: Readout, target: int | None = None) -> Tensor:
        """(N, C) logits → (N,) scalar readout of ``target`` (default: the explained class), minus the
        contrast class's readout when the probe has one and ``target`` is the explained class."""
        score = read_class(logits, self.target if target is None else target, readout, multi_label=self.multi_label)
        if self.contrast is not None and (target is None or target == self.target):
            score = score - read_class(logits, self.contrast, readout, multi_label=self.multi_label)
        return score

    def _infer(self, waves: Tensor, readout: Readout | Output, target: int | None) -> Tensor:
        """:meth:`read` in inference mode (no autograd bookkeeping) at the probe's precision; returns a
        normal float32 tensor."""
        reduced = PRECISIONS[self.precision]
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=reduced, enabled=reduced is not None):
            out = self.read(waves, readout, target)
        return out.to(torch.float32, copy=True)

    # ---- the two operations ------------------------------------------------------------------
    def score(self, masks: Tensor, *, baseline: BaselineKind | Tensor = "zero", readout: Readout | Output = "prob",
              target: int | None = None, progress: ProgressFn | None = None, stage: str = "scoring masks") -> Tensor:
        """Readout of the model on the clip with each of N map-space masks applied.

        Args:
            masks: (N, *M) values in [0, 1]; 1 keeps a cell, 0 replaces it by the baseline.
            baseline: replacement value (see :func:`baseline_coeffs`).
            readout: ``prob`` / ``logit`` / ``log_prob`` of the target (a :data:`Readout`), or ``probs`` /
                ``logits`` of all classes or the model's ``embedding`` (an :data:`Output`).

        Returns:
            (N,), or (N, C) / (N, D) for an :data:`Output`, on the device.
        """
        n = masks.shape[0]
        step = self.batch_size(backward=False)
        report = progress or self.progress
        out = []
        call = self._next_call()
        with torch.no_grad():
            for part, start in enumerate(range(0, n, step)):
                query = masks[start:start + step]
                got = self.tape.take(call, part, query) if self.tape is not None else None
                if got is None:
                    got = self._infer(self.waves(self.apply_masks(query, baseline)), readout, target)
                    if self.tape is not None:
                        self.tape.put(call, part, query, got)
                out.append(got)
                self.forward_passes += query.shape[0]
                report(min(start + step, n) / n, stage)
        return torch.cat(out)

    def grad(self, points: Tensor, *, readout: Readout = "logit", target: int | None = None,
             progress: ProgressFn | None = None, stage: str = "gradients") -> tuple[Tensor, Tensor]:
        """Values and gradients of a scalar readout at N coefficient points.

        For complex coefficients the returned gradient is PyTorch's ``∂f/∂Re z + i·∂f/∂Im z`` (twice the
        conjugate Wirtinger derivative), so a first-order change is ``Re(conj(g)·dz)``.

        Args:
            points: (N, *S) coefficients.

        Returns:
            values (N,) and gradients (N, *S), on the device.
        """
        n = points.shape[0]
        step = self.batch_size(backward=True)
        report = progress or self.progress
        values, grads = [], []
        call = self._next_call()
        for part, start in enumerate(range(0, n, step)):
            query = points[start:start + step]
            got = self.tape.take(call, part, query) if self.tape is not None else None
            if got is None:
                chunk = query.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    value = self.read(self.waves(chunk), readout, target)
                    (g,) = torch.autograd.grad(value.sum(), chunk)
                got = (value.detach(), g)
                if self.tape is not None:
                    self.tape.put(call, part, query, got)
            values.append(got[0])
            grads.append(got[1])
            self.forward_passes += query.shape[0]
            self.backward_passes += query.shape[0]
            report(min(start + step, n) / n, stage)
        return torch.cat(values), torch.cat(grads)

    def _next_call(self) -> int:
        """The number of this :meth:`score` / :meth:`grad` call in the run (the tape's key)."""
        self._calls += 1
        return self._calls

    def logits_of(self, z: Tensor) -> Tensor:
        """Differentiable logits (N, C) for coefficients (N, *S), one call (for mask optimisation)."""
        self.forward_passes += z.shape[0]
        return self.model(self.waves(z))


def scale_coeffs(z: Tensor, lifted: Tensor, *, planes: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``z · lifted`` for real ``lifted`` (N, *S): complex coefficients are scaled as (re, im) pairs, the same
    values as the complex product (``(a + ib)·c = ac + ibc``) without promoting ``lifted`` to complex.

    ``planes``: ``z``'s real and imaginary parts as contiguous arrays (:meth:`Probe._planes`); scaling the
    two planes and interleaving them once is faster than broadcasting over the interleaved pairs.
    """
    if z.is_complex() and not lifted.is_complex():
        if planes is not None:
            return torch.complex(planes[0] * lifted, planes[1] * lifted)
        return torch.view_as_complex(torch.view_as_real(z) * lifted.unsqueeze(-1))
    return z * lifted


def check_contrast(contrast, target: int, num_classes: int) -> int | None:
    """The contrast class as an int, or ``None``; one sentence when it is not another existing class."""
    from .validate import _whole

    if contrast is None:
        return None
    index = _whole(contrast)
    if index is None or not 0 <= index < num_classes:
        raise ConfigError(f"The contrast class must be a class index from 0 to {num_classes - 1}; got {contrast!r}.")
    if index == target:
        raise ConfigError(f"The contrast class must differ from the explained class ({target}); "
                          "pick another class B to explain 'A rather than B'.")
    return index


def attribution_from_grad(delta: Tensor, grad: Tensor) -> Tensor:
    """First-order attribution ``Re(conj(Δz)·g)`` per coefficient (= ``Δz·g`` for real coefficients)."""
    if delta.is_complex() or grad.is_complex():
        return (delta.conj() * grad).real
    return delta * grad
