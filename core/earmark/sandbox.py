"""Uploaded models load and run in a sandboxed worker process; only tensors cross the boundary.

:func:`load_sandboxed` starts ``python -m earmark.sandbox PATH`` with a private scratch folder
(``tempfile.mkdtemp``, mode 0700) as its working and temporary folder and a minimal environment. Before
the worker reads anything from the model file it confines itself (:func:`confine`):

* resource limits: address space (``EARMARK_SANDBOX_MB``, default 8192: importing torch reserves ~3 GB),
  CPU time (``EARMARK_SANDBOX_CPU_S``, default 3600 s over the worker's life), file size (64 MB), no core
  files;
* Landlock (Linux ≥ 5.13): no file may be written, created, renamed or removed outside the scratch folder
  (and ``/dev/null``), and no TCP bind or connect;
* a new user and network namespace where the kernel allows it: no network interface but loopback, down.

Then it loads the model with the same checks as everywhere (:func:`earmark.models.loaders.load_path`, the
operator allow-list, the card checks, one validation pass) and answers requests on its stdin/stdout: a
JSON header and raw float32 bytes each way, never a pickle. The parent sees an :class:`EarmarkModel`
(:class:`SandboxedModel`) whose forward, embedding and input gradient (a vector-Jacobian product computed
in the worker) are requests. :func:`status` says which confinements this machine enforces.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

_HEAD = struct.Struct("<II")   # JSON length, payload length
MAX_PAYLOAD = 1 << 31
DEFAULT_AS_MB = 8192
DEFAULT_CPU_S = 3600
FILE_LIMIT = 64 << 20


# ---- framing (both sides) ------------------------------------------------------------------------------

def _send(stream, header: dict, payload: bytes = b"") -> None:
    data = json.dumps(header).encode()
    stream.write(_HEAD.pack(len(data), len(payload)) + data + payload)
    stream.flush()


def _recv(stream) -> tuple[dict, bytes]:
    head = stream.read(_HEAD.size)
    if len(head) != _HEAD.size:
        raise EOFError("the worker closed its pipe")
    n, m = _HEAD.unpack(head)
    if n > 1 << 20 or m > MAX_PAYLOAD:
        raise EOFError("a frame larger than the limits")
    header = json.loads(stream.read(n))
    payload = stream.read(m) if m else b""
    if len(payload) != m:
        raise EOFError("a torn frame")
    return header, payload


def _array(header: dict, payload: bytes, key: str = "shape") -> np.ndarray:
    shape = [int(s) for s in header[key]]
    if np.prod(shape, dtype=np.int64) * 4 != len(payload):
        raise ValueError("a payload that does not match its shape")
    return np.frombuffer(payload, dtype="<f4").reshape(shape)


# ---- the worker's confinement ----------------------------------------------------------------------------

_LANDLOCK_WRITE = sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14))   # write, remove, make, refer, truncate
_LANDLOCK_NET = (1 << 0) | (1 << 1)                                                 # bind / connect TCP


def _landlock(scratch: Path) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, 0, 1)
    if abi < 1:
        return "Landlock unavailable"
    handled = _LANDLOCK_WRITE & ((1 << (13 if abi < 2 else 14 if abi < 3 else 15)) - 1)
    attr = struct.pack("<QQ", handled, _LANDLOCK_NET) if abi >= 4 else struct.pack("<Q", handled)
    ruleset = libc.syscall(444, ctypes.c_char_p(attr), len(attr), 0)
    if ruleset < 0:
        return "Landlock refused the ruleset"
    for path, rights in ((scratch, handled), (Path("/dev/null"), (1 << 1) | ((1 << 14) if abi >= 3 else 0))):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = struct.pack("<Qi", rights, fd)
        libc.syscall(445, ruleset, 1, ctypes.c_char_p(rule), 0)   # LANDLOCK_RULE_PATH_BENEATH
        os.close(fd)
    libc.prctl(38, 1, 0, 0, 0)                                      # PR_SET_NO_NEW_PRIVS
    if libc.syscall(446, ruleset, 0) != 0:
        return "Landlock could not be applied"
    os.close(ruleset)
    return f"Landlock ABI {abi}"


def _namespaces() -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(0x10000000 | 0x40000000) != 0:                  # CLONE_NEWUSER | CLONE_NEWNET
        return "no network namespace"
    try:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    except OSError:
        pass
    return "network namespace"


def confine(scratch: Path) -> list[str]:
    """Limit this process (the worker) before it reads the model; returns what is enforced."""
    as_mb = int(os.environ.get("EARMARK_SANDBOX_MB", DEFAULT_AS_MB))
    cpu_s = int(os.environ.get("EARMARK_SANDBOX_CPU_S", DEFAULT_CPU_S))
    resource.setrlimit(resource.RLIMIT_AS, (as_mb << 20, as_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    done = [f"address space {as_mb} MB", f"CPU {cpu_s} s", f"files ≤ {FILE_LIMIT >> 20} MB"]
    for step in (lambda: _namespaces(), lambda: _landlock(scratch)):
        try:
            done.append(step())
        except (OSError, AttributeError) as exc:   # an older kernel: the rest still holds
            done.append(f"skipped ({exc})")
    return done


def _worker(path: str) -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                                # nothing the model prints reaches the protocol pipe
    inp = os.fdopen(0, "rb")
    scratch = Path.cwd()
    enforced = confine(scratch)
    import torch

    from .models.loaders import load_path
    torch.set_num_threads(int(os.environ.get("EARMARK_SANDBOX_THREADS", "1")))
    try:
        model = load_path(path, torch.device("cpu"))
    except Exception as exc:   # every failure crosses as one sentence
        _send(out, {"ok": False, "error": str(exc) if isinstance(exc, ModelError) else
                    f"{type(exc).__name__}: {str(exc).strip()[:200]}"})
        return 0
    card = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(model.card).items()}
    _send(out, {"ok": True, "card": card, "enforced": enforced})
    while True:
        try:
            header, payload = _recv(inp)
        except EOFError:
            return 0
        try:
            n = int(np.prod([int(s) for s in header["shape"]], dtype=np.int64)) * 4
            x = torch.from_numpy(_array(header, payload[:n]).copy())
            if header["op"] == "vjp":
                g = torch.from_numpy(_array(header, payload[n:], "grad_shape").copy())
                x.requires_grad_(True)
                with torch.enable_grad():
                    (y,) = torch.autograd.grad(model(x), x, grad_outputs=g)
            else:
                with torch.no_grad():
                    y = model(x) if header["op"] == "forward" else model.embed(x)
            y = y.detach().to(torch.float32).contiguous()
            _send(out, {"ok": True, "shape": list(y.shape)}, y.numpy().astype("<f4").tobytes())
        except Exception as exc:
            _send(out, {"ok": False, "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"})


# ---- the parent's side -----------------------------------------------------------------------------------

class Worker:
    """One sandboxed process holding one model; requests are serialised by a lock."""

    def __init__(self, path: Path):
        self.scratch = Path(tempfile.mkdtemp(prefix="earmark-sandbox-"))
        env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(self.scratch), "HOME": str(self.scratch), "OMP_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
        env.update({k: v for k, v in os.environ.items() if k.startswith("EARMARK_SANDBOX_")})
        self.proc = subprocess.Popen([sys.executable, "-I", "-B", "-c", _BOOT, str(path), json.dumps(_earmark_path())],
                                     cwd=self.scratch, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lock = threading.Lock()

    def first(self) -> dict:
        try:
            header, _ = _recv(self.proc.stdout)
        except (EOFError, ValueError):
            self.close()
            raise ModelError(self._death("while loading")) from None
        return header

    def _death(self, when: str) -> str:
        code = self.proc.poll()
        if code is None:
            return f"The sandboxed model stopped answering {when}."
        if code < 0:
            import signal
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return (f"The sandboxed model was stopped {when} by {name} (a resource limit: memory "
                    "EARMARK_SANDBOX_MB, CPU time EARMARK_SANDBOX_CPU_S, or file size); it cannot be used.")
        return f"The sandboxed model's process ended {when} (exit code {code}); it cannot be used."

    def request(self, op: str, *arrays: np.ndarray) -> np.ndarray:
        header: dict[str, Any] = {"op": op, "shape": list(arrays[0].shape)}
        if len(arrays) > 1:
            header["grad_shape"] = list(arrays[1].shape)
        payload = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
        with self.lock:
            try:
                _send(self.proc.stdin, header, payload)
                reply, data = _recv(self.proc.stdout)
            except (EOFError, BrokenPipeError, OSError, ValueError):
                raise ModelError(self._death(f"during a {op} request")) from None
        if not reply.get("ok"):
            raise ModelError(f"The sandboxed model failed: {str(reply.get('error', ''))[:300]}")
        return _array(reply, data).copy()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass


_BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[2]); from earmark.sandbox import _worker; "
         "sys.exit(_worker(sys.argv[1]))")


def _earmark_path() -> list[str]:
    """The folder that holds the ``earmark`` package (the worker runs isolated: ``-I`` ignores PYTHONPATH)."""
    return [str(Path(__file__).resolve().parent.parent)]


def _model_class():
    import torch

    from .models.base import EarmarkModel

    class _VJP(torch.autograd.Function):
        @staticmethod
        def forward(ctx, wave, worker):
            ctx.worker = worker
            ctx.save_for_backward(wave)
            out = worker.request("forward", wave.detach().cpu().numpy())
            return torch.from_numpy(out).to(wave.device)

        @staticmethod
        def backward(ctx, grad):
            (wave,) = ctx.saved_tensors
            g = ctx.worker.request("vjp", wave.detach().cpu().numpy(), grad.detach().cpu().numpy())
            return torch.from_numpy(g).to(wave.device), None

    class SandboxedModel(EarmarkModel):
        """An uploaded model in its worker process: forward, ``embed`` and the input gradient are requests."""

        def __init__(self, worker: Worker, card):
            super().__init__()
            self.worker = worker
            self.card = card

        def forward(self, wave):
            if wave.requires_grad and torch.is_grad_enabled():
                return _VJP.apply(wave.to(torch.float32), self.worker)
            return torch.from_numpy(self.worker.request("forward", wave.detach().to("cpu", torch.float32).numpy())
                                    ).to(wave.device)

        def embed(self, wave):
            out = self.worker.request("embed", wave.detach().to("cpu", torch.float32).numpy())
            return torch.from_numpy(out).to(wave.device)

        def __deepcopy__(self, memo):   # copies share the worker (it holds no per-caller state)
            return SandboxedModel(self.worker, self.card)

    return SandboxedModel


def load_sandboxed(path: str | Path) -> Any:
    """Load ``path`` in a sandboxed worker and return it as an :class:`EarmarkModel` on the CPU.

    Raises:
        ModelError: the model was refused or failed inside the worker (its sentence), or the worker died.
    """
    from .models.base import ModelCard

    worker = Worker(Path(path).resolve())
    header = worker.first()
    if not header.get("ok"):
        worker.close()
        raise ModelError(str(header.get("error", "The sandboxed model could not be loaded."))[:500])
    known = {f.name for f in fields(ModelCard)}
    raw = {k: v for k, v in header["card"].items() if k in known}
    raw["labels"] = tuple(str(v) for v in raw.get("labels", ()))
    card = ModelCard(**raw)
    model = _model_class()(worker, card)
    model.enforced = tuple(header.get("enforced", ()))
    return model.eval()


def private_folder(prefix: str = "earmark-uploads-") -> Path:
    """A new folder only this user can enter (``tempfile.mkdtemp``: random name, mode 0700)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


__all__ = ["Worker", "confine", "load_sandboxed", "private_folder"]


if __name__ == "__main__":   # pragma: no cover - the worker's entry
    sys.exit(_worker(sys.argv[1]))
