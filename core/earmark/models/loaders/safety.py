"""Model files are data, not programs: the checks every loader makes before anything in a file runs.

* :func:`check_zip`: a ``.pt`` / ``.pt2`` archive is read from its central directory *and* its local
  headers; duplicate names, names that differ between the two, paths that leave the archive's folder and
  members a TorchScript / torch.export archive never holds are refused before torch opens the file (two
  readers that pick different copies of a member is how a pickle hides behind a clean screen).
* :func:`check_torchscript_source`: the archive's TorchScript code may not define ``__setstate__`` (the
  only code ``torch.jit.load`` runs while loading).
* :func:`check_script_module` / :func:`check_exported_program`: every method of every submodule
  (TorchScript, calls inlined) and every node of every graph (torch.export) is checked against an
  allow-list of tensor maths before ``forward`` is ever called. ``docs/guide/security.md`` lists what is
  refused and why.

Everything refused raises :class:`~earmark.errors.ModelError` with one sentence.
"""

from __future__ import annotations

import operator
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Iterable

import torch

from ...errors import ModelError

# ---- the operator policy ---------------------------------------------------------------------------------

#: Operators refused inside the ``aten`` namespace, with the reason (the table in docs/guide/security.md).
REFUSED_ATEN: dict[str, str] = {
    "from_file": "maps or creates a file on disk",
    "save": "writes a file",
    "load": "reads a file",
    "set": "points a tensor at another storage (raw memory)",
    "set_": "points a tensor at another storage (raw memory)",
    "_print": "writes to the process's output",
    "manual_seed": "changes the process-wide random state",
    "seed": "changes the process-wide random state",
    "initial_seed": "reads the process-wide random state",
    "set_grad_enabled": "changes the process-wide autograd mode",
    "record_stream": "touches device streams owned by the host",
    "wait": "waits on futures (asynchronous work)",
    "to_here": "remote reference (RPC)",
    "local_value": "remote reference (RPC)",
    "owner": "remote reference (RPC)",
    "owner_name": "remote reference (RPC)",
    "is_owner": "remote reference (RPC)",
    "confirmed_by_owner": "remote reference (RPC)",
    "_assert_async": "asynchronous device assertion (can abort a CUDA context)",
    "_functional_assert_async": "asynchronous device assertion (can abort a CUDA context)",
}

#: Interpreter nodes of TorchScript that carry no side effect (control flow, constants, containers, attributes).
ALLOWED_PRIM = frozenset({
    "Constant", "If", "Loop", "GetAttr", "SetAttr", "ListConstruct", "ListUnpack", "TupleConstruct",
    "TupleUnpack", "TupleIndex", "DictConstruct", "Uninitialized", "unchecked_cast", "unchecked_unwrap_optional",
    "NumToTensor", "ImplicitTensorToNum", "RaiseException", "isinstance", "device", "dtype", "layout",
    "is_cuda", "is_cpu", "is_mps", "is_meta", "is_sparse", "is_quantized", "is_nested", "is_mkldnn",
    "requires_grad", "data", "shape", "min", "max", "abs", "index", "tolist", "max_pool2d", "TypeCheck",
    "EnumName", "EnumValue", "layout", "itemsize", "nbytes", "name", "AutogradAdd", "AutogradZero",
    "AutogradAnyNonZero", "AutogradAllNonZero", "AutogradAllZero", "BroadcastSizes", "ChunkSizes",
    "ConstantChunk", "rangelist", "StringIndex", "type", "id", "ModuleContainerIndex",
})

#: Why some TorchScript interpreter nodes are refused (anything not in :data:`ALLOWED_PRIM` is refused too).
REFUSED_PRIM: dict[str, str] = {
    "Print": "writes to the process's output",
    "PythonOp": "calls back into Python",
    "fork": "starts asynchronous work",
    "awaitable": "starts asynchronous work",
    "awaitable_wait": "waits on asynchronous work",
    "awaitable_nowait": "starts asynchronous work",
    "rpc_async": "remote procedure call",
    "rpc_sync": "remote procedure call",
    "rpc_remote": "remote procedure call",
    "CallFunction": "a call that could not be inlined (a compiled or custom function)",
    "CallMethod": "a call on a custom C++ class that could not be inlined",
    "Enter": "a context manager (e.g. torch.no_grad) changes process-wide state",
    "Exit": "a context manager (e.g. torch.no_grad) changes process-wide state",
    "TimePoint": "reads the clock",
    "IgnoredPythonOp": "an ignored Python function",
}

#: Namespaces accepted in a graph; ``aten`` minus :data:`REFUSED_ATEN`, ``prim`` from :data:`ALLOWED_PRIM`.
#: Every other namespace (``c10d``, ``_c10d_functional``, ``symm_mem``, ``profiler``, ``cuda``, custom ops
#: loaded from libraries, ...) is refused: it is not tensor maths the host can audit.
ALLOWED_NAMESPACES = ("aten", "prim")

#: Python callables allowed in a torch.export graph besides ``aten`` operators: symbolic-shape arithmetic.
_SYM_BUILTINS = {getattr(operator, n) for n in (
    "getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "neg", "pow", "eq", "ne", "lt", "le", "gt",
    "ge", "and_", "or_", "not_", "abs")}
_SYM_BUILTINS |= {getattr(torch, n) for n in ("sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_ite",
                                               "sym_sum") if hasattr(torch, n)}
#: Higher-order operators whose bodies are graphs we walk too.
_HIGHER_ORDER = ("cond", "while_loop", "map_impl")


def refused_operator(kind: str) -> str | None:
    """Why the operator ``namespace::name`` (TorchScript spelling) is refused, or ``None`` when allowed."""
    namespace, _, name = kind.partition("::")
    if namespace == "aten":
        return REFUSED_ATEN.get(name)
    if namespace == "prim":
        if name in ALLOWED_PRIM:
            return None
        return REFUSED_PRIM.get(name, "not on the allow-list of interpreter nodes")
    return f"the namespace '{namespace}' is not tensor maths Earmark can audit"


def _refuse(source: str, where: str, kind: str, why: str) -> ModelError:
    return ModelError(f"{source} is refused: {where} uses the operator {kind} ({why}); Earmark runs only "
                      "tensor maths from a model file (see docs/guide/security.md).")


def _blocks_nodes(block) -> Iterable:
    for node in block.nodes():
        yield node
        for sub in node.blocks():
            yield from _blocks_nodes(sub)


def check_script_module(module: Any, source: str) -> None:
    """Walk every method of every submodule of a loaded TorchScript module (calls inlined) before it runs.

    Raises:
        ModelError: an operator off the allow-list, naming it and the method that uses it.
    """
    seen = 0
    for sub_name, sub in module.named_modules():
        c = getattr(sub, "_c", None)
        if c is None:
            raise ModelError(f"{source} is refused: the submodule '{sub_name}' is not TorchScript.")
        for method in c._method_names():
            graph = c._get_method(method).graph.copy()
            try:
                torch._C._jit_pass_inline(graph)
            except RuntimeError:
                raise ModelError(f"{source} is refused: the method {method} calls code that cannot be "
                                 "inspected.") from None
            where = f"the method {(sub_name + '.') if sub_name else ''}{method}"
            for node in _blocks_nodes(graph):
                seen += 1
                why = refused_operator(node.kind())
                if why is not None:
                    raise _refuse(source, where, node.kind(), why)
    if seen == 0:
        raise ModelError(f"{source} holds no TorchScript code to run; save a scripted or traced module.")


def _target_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}::{target._schema.name.split('::', 1)[-1]}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order::{target.name()}"
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def check_exported_program(program: Any, source: str) -> None:
    """Walk every node of every graph of a loaded ``ExportedProgram`` before the module is built or run.

    Raises:
        ModelError: an operator off the allow-list, or a node kind a plain program does not hold.
    """
    root = program.graph_module
    for gm_name, gm in root.named_modules():
        graph = getattr(gm, "graph", None)
        if graph is None:
            continue
        where = f"the graph {gm_name}" if gm_name else "the graph"
        for node in graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            if node.op != "call_function":
                raise ModelError(f"{source} is refused: {where} holds a '{node.op}' node; a torch.export "
                                 "program holds only operator calls.")
            target = node.target
            if isinstance(target, torch._ops.OpOverload):
                why = refused_operator(_target_name(target))
            elif isinstance(target, torch._ops.HigherOrderOperator):
                why = None if target.name() in _HIGHER_ORDER else "a higher-order operator with side effects"
            elif target in _SYM_BUILTINS:
                why = None
            else:
                why = "a Python callable, not an operator"
            if why is not None:
                raise _refuse(source, where, _target_name(target), why)


# ---- archives ------------------------------------------------------------------------------------------

#: Members a torch.export archive holds (below its one top folder).
EXPORT_MEMBERS = re.compile(
    r"^(archive_format|archive_version|byteorder|version|\.data/version|\.data/serialization_id|"
    r"models/[\w.-]+\.json|data/(weights|constants|sample_inputs)/[\w.-]+|extra/[\w.-]+)$")
#: Members a TorchScript archive holds (below its one top folder).
SCRIPT_MEMBERS = re.compile(
    r"^(data\.pkl|constants\.pkl|version|byteorder|\.data/version|\.data/serialization_id|data/\d+|"
    r"constants/\d+|traced_inputs/\d+|traced_inputs\.pkl|code/[\w./-]+\.py(\.debug_pkl)?|extra/[\w.-]+|\.data/[\w.-]+)$")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
MAX_MEMBERS = 100_000


def check_zip(path: Path, kind: str) -> None:
    """Refuse an archive whose members could be read differently by two readers, or that holds strays.

    ``kind`` is ``"export"`` or ``"torchscript"``. Every central-directory entry's local header is read: its
    signature and name must match the central directory's, every name must be unique, under one top folder,
    with no ``..``, absolute path or backslash, and of a kind the format writes.

    Raises:
        ModelError: one sentence naming the first problem.
    """
    what = "torch.export" if kind == "export" else "TorchScript"
    allowed = EXPORT_MEMBERS if kind == "export" else SCRIPT_MEMBERS
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ModelError(f"{path.name} is not a {what} archive (not a zip file); save it with "
                         f"{'torch.export.save' if kind == 'export' else 'torch.jit.save'}.") from None
    with archive, open(path, "rb") as raw:
        infos = archive.infolist()
        if not infos or len(infos) > MAX_MEMBERS:
            raise ModelError(f"{path.name} is refused: it holds {len(infos):,} archive members.")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ModelError(f"{path.name} is refused: the archive holds the member '{dup}' twice (two readers "
                             "could pick different copies).")
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1:
            raise ModelError(f"{path.name} is refused: its members sit under {len(tops)} top folders, not one.")
        for info in infos:
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in name.split("/") or "\0" in name:
                raise ModelError(f"{path.name} is refused: the member name '{name[:80]}' leaves the archive folder.")
            rest = name.split("/", 1)[1] if "/" in name else ""
            if not allowed.match(rest):
                raise ModelError(f"{path.name} is refused: a {what} archive holds no member like '{name[:80]}'.")
            raw.seek(info.header_offset)
            head = raw.read(_LOCAL.size)
            if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
                raise ModelError(f"{path.name} is refused: the local header of '{name[:80]}' is missing.")
            name_len, extra_len = _LOCAL.unpack(head)[-2:]
            local_name = raw.read(name_len)
            if local_name != info.orig_filename.encode("utf-8") and local_name != info.orig_filename.encode("cp437", "replace"):
                raise ModelError(f"{path.name} is refused: the member '{name[:80]}' has another name in its local "
                                 "header.")


def check_torchscript_source(path: Path) -> None:
    """Refuse TorchScript code that runs while the archive is loaded (``__setstate__``).

    Raises:
        ModelError: a ``__setstate__`` definition in the archive's code.
    """
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/code/" in info.filename and info.filename.endswith(".py"):
                if info.file_size > 64 << 20:
                    raise ModelError(f"{path.name} is refused: its code member {info.filename} is larger than 64 MB.")
                text = archive.read(info).decode("utf-8", "replace")
                if re.search(r"\bdef\s+__setstate__\b", text):
                    raise ModelError(f"{path.name} is refused: its TorchScript code defines __setstate__, which "
                                     "torch.jit.load would run while loading; script the module without it.")


__all__ = ["ALLOWED_NAMESPACES", "ALLOWED_PRIM", "REFUSED_ATEN", "REFUSED_PRIM", "check_exported_program",
           "check_script_module", "check_torchscript_source", "check_zip", "refused_operator"]
