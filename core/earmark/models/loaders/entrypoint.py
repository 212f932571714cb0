"""A Python entry point ``package.module:function`` that returns a classifier → EarmarkModel.

For research code: the function is called with no arguments and returns

* an :class:`~earmark.models.EarmarkModel` (used as it is), or
* an ``nn.Module`` mapping waveforms (B, L) to logits (B, C) with its card: ``(module, card)`` where
  ``card`` is a dict in the side-car schema (``sample_rate``, ``input_length``, ``labels``, ...; see
  :func:`.common.read_card`), or a module with a ``card`` attribute holding that dict.

An entry point runs your own Python code: use it for code you trust (the dashboard never loads one from
an upload). ``embed`` is the module's own ``embed`` method if it has one, else the input of its last
linear layer (the penultimate representation).
"""

from __future__ import annotations

import importlib
import os
import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ...errors import ModelError
from ..base import EarmarkModel, ModelCard
from ..adapt import adapt_torch, needed
from .common import InputCatcher, card_from_dict, last_linear
from .trial import children, try_entry_point


class ModuleWithCard(EarmarkModel):
    """A user's ``nn.Module`` with a card; ``embed`` from its ``embed`` method or its penultimate layer."""

    def __init__(self, module: nn.Module, card: ModelCard):
        super().__init__()
        self.module = module
        self.card = card
        self._own_embed = callable(getattr(module, "embed", None))
        head = None if self._own_embed else last_linear(module)
        self._catcher = InputCatcher(head) if head is not None else None

    def forward(self, wave: Tensor) -> Tensor:
        return self.module(wave)

    def embed(self, wave: Tensor) -> Tensor:
        if self._own_embed:
            out = self.module.embed(wave)
            return out.reshape(out.shape[0], -1) if isinstance(out, Tensor) and out.ndim > 2 else out
        if self._catcher is None:
            return self.module(wave)
        return self._catcher.catch(self.module, wave)


def wrap_module(module: nn.Module, info: dict, *, fmt: str, source: str) -> EarmarkModel:
    """An ``nn.Module`` and a side-car card dict → :class:`ModuleWithCard` (embedding source noted)."""
    card = card_from_dict(info, source=source, fmt=fmt, gradients=True, default_name=str(info.get("name", fmt)))
    if needed(info) or info.get("embedding_output") is not None:   # frames, outputs, ..., an embedding output
        model = adapt_torch(module, card, info, source=source)
        if not card.embedding:
            model.card = replace(model.card, embedding="the logits")
        return model
    model = ModuleWithCard(module, card)
    if not card.embedding:
        how = ("the module's embed method" if model._own_embed else
               "the input of its last linear layer" if model._catcher is not None else "the logits")
        model.card = replace(card, embedding=how)
    return model


class _Ended(BaseException):
    """Raised in place of ``os._exit``/``os.abort``/``os.fork`` while an entry point is called here."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


_GUARDED = {"_exit": "os._exit", "abort": "os.abort", "fork": "os.fork", "forkpty": "os.forkpty"}


@contextmanager
def _no_exit():
    """Swap ``os._exit``, ``os.abort``, ``os.fork`` and ``os.forkpty`` for a raise while a call runs.

    The call was already tried in a child process (:mod:`.trial`); this is the second line, for code that
    behaves differently the second time. Code that ends the process through C is only stopped by the trial.
    """
    saved = {name: getattr(os, name) for name in _GUARDED if hasattr(os, name)}

    def refuse(how: str):
        def raiser(*args, **kwargs):
            raise _Ended(how)
        return raiser
    with _PATCH:
        for name in saved:
            setattr(os, name, refuse(_GUARDED[name]))
        try:
            yield
        finally:
            for name, fn in saved.items():
                setattr(os, name, fn)


_PATCH = threading.Lock()


def call_guarded(fn: Callable[..., Any], target: str, kwargs: dict | None = None) -> Any:
    """Call an entry point's function in this process; exiting, forking or failing is a sentence, not obeyed.

    ``SystemExit`` (``sys.exit``, ``builtins.exit``) and ``GeneratorExit`` are caught, and ``os._exit``,
    ``os.abort`` and ``os.fork`` raise instead of acting while the call runs. ``os.abort`` through C and
    signals cannot be caught in-process: :func:`.trial.try_entry_point` calls the entry point in a child
    process first, which every loader does before this.

    Raises:
        ModelError: the call failed, tried to end the process, or started a process.
    """
    before = children()
    try:
        with _no_exit():
            made: Any = fn(**(kwargs or {}))
    except _Ended as exc:
        raise ModelError(f"The entry point {target} called {exc.how}; it must return a model, not end or copy "
                         "the process.") from None
    except (SystemExit, GeneratorExit) as exc:
        raise ModelError(f"The entry point {target} tried to end the process ({type(exc).__name__}"
                         f"{'' if exc.args == () else ' ' + repr(exc.args[0])[:40]}); it must return a model."
                         ) from None
    except Exception as exc:
        raise ModelError(f"The entry point {target} failed ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}).") from None
    started = children() - before
    if started:
        raise ModelError(f"The entry point {target} started {len(started)} process(es) (pid "
                         f"{', '.join(map(str, sorted(started)))}); an entry point must only build a model.")
    return made


def load(target: str, device: torch.device | None = None, *, window: int | None = None) -> EarmarkModel:
    """Import ``package.module``, call ``function()``, and wrap what it returns.

    Raises:
        ModelError: the module or function is missing, the call fails, or it returns no classifier/card.
    """
    module_name, _, attr = str(target).partition(":")
    try_entry_point(str(target))   # exits, aborts and forks end a child process, not this one
    try:
        mod = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"Cannot import '{module_name}' for the entry point {target} ({exc}); install the package "
                         "or add its folder to PYTHONPATH.") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ModelError(f"'{module_name}' has no function '{attr}'; the entry point is package.module:function.")
    made = call_guarded(fn, target)
    if isinstance(made, EarmarkModel):
        model = made
    else:
        module, info = (made if isinstance(made, tuple) and len(made) == 2 else (made, getattr(made, "card", None)))
        if not isinstance(module, nn.Module):
            raise ModelError(f"The entry point {target} must return an nn.Module (or (module, card)); "
                             f"it returned {type(module).__name__}.")
        if isinstance(info, ModelCard):
            model = ModuleWithCard(module, info)
        elif isinstance(info, dict):
            model = wrap_module(module, info, fmt="entrypoint", source=f"the card of {target}")
        else:
            raise ModelError(f"The entry point {target} returned a module without a card: return (module, "
                             '{"sample_rate": ..., "input_length": ..., "labels": [...]}).')
    model = model.eval()
    if device is not None:
        model = model.to(device)
    if window is not None:
        model.card = model.card.with_window(window)
    return model
