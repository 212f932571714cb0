"""Entry points are tried in a child process before this process calls them.

An entry point (``package.module:function`` on the CLI or the API, or a card's ``entry_point`` in
``$EARMARK_MODELS``) runs Python code. That code is trusted not to be malicious, but it may still end the
process that calls it: ``sys.exit``/``builtins.exit`` raise ``SystemExit`` (catchable), while ``os._exit``,
``os.abort`` and a fatal signal end the process at once, and nothing in-process can catch them. So the
import and the call are first made in a child process (a ``forkserver`` child: torch is imported once per
process, each trial is a fork of that quiet server). Only if the child returns normally, with no process
of its own left behind, does this process make the same call itself, still guarded
(:func:`earmark.models.loaders.entrypoint.call_guarded`). An entry point that exits, aborts, forks or hangs
is reported as one sentence (a :class:`~earmark.errors.ModelError`) and the CLI or the server goes on.

``EARMARK_ENTRY_TRIAL_S`` bounds the child's time (default 300 s).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import types
from typing import Any, Mapping

from ...errors import ModelError

_LOCK = threading.Lock()
_START_LOCK = threading.Lock()
_CONTEXT: Any = None


def _context():
    """The forkserver context (torch preloaded), made once per process."""
    global _CONTEXT
    with _LOCK:
        if _CONTEXT is None:
            methods = mp.get_all_start_methods()
            _CONTEXT = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
            if _CONTEXT.get_start_method() == "forkserver":
                _CONTEXT.set_forkserver_preload(["torch"])
    return _CONTEXT


def children() -> set[int]:
    """Process ids of this process's children (Linux ``/proc``; empty elsewhere)."""
    found: set[int] = set()
    try:
        for task in os.scandir(f"/proc/{os.getpid()}/task"):
            with open(os.path.join(task.path, "children")) as handle:
                found.update(int(p) for p in handle.read().split())
    except OSError:
        pass
    return found


def _trial(target: str, kwargs: Mapping[str, Any], path: list[str], conn) -> None:
    """The child: import, call, and say what came back (runs in the trial process)."""
    sys.path[:] = path
    module_name, _, attr = target.partition(":")
    pid, before = os.getpid(), children()
    try:
        import importlib

        fn = getattr(importlib.import_module(module_name), attr, None)
        made = fn(**kwargs) if callable(fn) else None
    except SystemExit as exc:
        conn.send(("exit", repr(exc.code)[:40]))
        return
    except BaseException as exc:   # the caller's own call reports it with the same words
        conn.send(("raised", type(exc).__name__))
        return
    if os.getpid() != pid:   # a forked copy of the child returned here: leave without a word
        os._exit(0)
    started = children() - before
    conn.send(("forked", str(len(started))) if started else ("ok", type(made).__name__))


@contextlib.contextmanager
def _plain_main():
    """While a child starts, ``__main__`` is a bare module, so the child does not re-import this process's main
    script. (``multiprocessing`` imports it in every child; a Streamlit page, or an app test that ran one in
    this process, leaves its page there, and re-running a page outside Streamlit ends the child.) The trial's
    own code lives in this module, which the child imports by name."""
    main = sys.modules.get("__main__")
    with _START_LOCK:
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def try_entry_point(target: str, kwargs: Mapping[str, Any] | None = None, *, source: str | None = None) -> None:
    """Import and call ``target(**kwargs)`` in a child process; return only if it returned normally.

    Args:
        target: ``package.module:function``.
        kwargs: keyword arguments of the call (a card's ``entry_kwargs``).
        source: what named the entry point, for the sentence (default: the entry point itself).

    Raises:
        ModelError: the call ended its process (``sys.exit``, ``os._exit``, ``os.abort``, a signal), started
            a process, or did not return within ``EARMARK_ENTRY_TRIAL_S`` seconds.
    """
    where = f"The entry point {target}" + (f" (named by {source})" if source else "")
    limit = float(os.environ.get("EARMARK_ENTRY_TRIAL_S", "300"))
    ctx = _context()
    here, there = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_trial, args=(target, dict(kwargs or {}), list(sys.path), there), daemon=True)
    try:
        with _plain_main():
            child.start()
    except Exception as exc:
        raise ModelError(f"{where} could not be tried in a child process ({type(exc).__name__}: {exc}); "
                         "it was not called.") from None
    there.close()
    message = None
    if here.poll(limit):
        try:
            message = here.recv()
        except (EOFError, OSError):
            message = None
    child.join(5 if message is not None else 1)
    if child.is_alive():
        child.kill()
        child.join()
        if message is None:
            raise ModelError(f"{where} did not return within {limit:g} s when tried in a child process; it was "
                             "stopped and not called here (raise EARMARK_ENTRY_TRIAL_S if it is only slow).")
    here.close()
    code = child.exitcode
    if message is None:
        how = (f"was killed by {_signal_name(code)}" + (" (os.abort)" if code == -signal.SIGABRT else "")
               if code is not None and code < 0 else f"ended the process with exit code {code} (os._exit)")
        raise ModelError(f"{where} {how} when tried in a child process; it must return a model, so Earmark "
                         "did not call it here.")
    kind, detail = message
    if kind == "exit":
        raise ModelError(f"{where} tried to end the process (SystemExit {detail}) when tried in a child process; "
                         "it must return a model.")
    if kind == "forked":
        raise ModelError(f"{where} started {detail} process(es) when tried in a child process; an entry point "
                         "must only build a model.")
    # "ok" or "raised": the call in this process gives the result or the same failure in its own words


__all__ = ["try_entry_point"]
