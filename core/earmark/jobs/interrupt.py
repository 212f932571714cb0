"""Stop inside a model call: a check between the layers of a PyTorch model, without touching the chunk.

A job checks for Stop / Cancel between the probe's sub-calls (:meth:`JobContext.progress`). A sub-call holds
a fixed number of items (:func:`earmark.probe.cpu_chunk`: up to 2**19 samples), and on a large model or a
busy machine one call can take seconds. Making the chunk smaller when a model is slow would end a Stop
sooner, but the chunk is part of the arithmetic (a CPU library picks other kernels for other batch sizes),
so a chunk chosen by time gives other bits for the same seed. Earmark keeps the chunk fixed and checks
**inside** the call instead: a forward pre-hook on every submodule of the model asks the running job
whether it was stopped, so a Stop lands within one layer's time on any model size, and the arithmetic of
every call that completes is exactly what it was. The answer of the interrupted call is dropped (it was
not finished); every completed call is on the job's tape.

The hooks are registered once per module (the layers inside the model's wrapper, which itself refuses
hooks while shared) and look up the check of the thread that runs the forward pass, so a model shared by
several sessions' jobs stops only the job that was stopped, and nothing else changes for anyone. Models that run outside
PyTorch modules (ONNX, TorchScript graphs) have no submodules to hook; they stop at the next sub-call.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Callable, Iterator

from torch import nn

from ..errors import ModelError

_local = threading.local()
_hooked: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_lock = threading.Lock()


def _pre_hook(module: nn.Module, args) -> None:
    check = getattr(_local, "check", None)
    if check is not None:
        check()


def _hook(model) -> None:
    if not isinstance(model, nn.Module):
        return
    with _lock:
        for module in model.modules():
            if module in _hooked or module is model:   # the wrapper refuses hooks when shared: its layers run
                continue                               # inside it anyway, and this hook changes no result
            try:
                module.register_forward_pre_hook(_pre_hook)
            except (RuntimeError, AttributeError, TypeError):   # a scripted submodule: stops at the next sub-call
                continue
            except ModelError:   # a shared Earmark model nested inside (an adapted one): its layers get the hook
                continue
            _hooked.add(module)


@contextlib.contextmanager
def interruptible(model, check: Callable[[], None]) -> Iterator[None]:
    """While inside, every forward pass of ``model``'s submodules on this thread first calls ``check()``
    (which raises to stop the job, e.g. :meth:`JobContext.check`)."""
    _hook(model)
    previous = getattr(_local, "check", None)
    _local.check = check
    try:
        yield
    finally:
        _local.check = previous


__all__ = ["interruptible"]
