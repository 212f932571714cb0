"""ONNX external data, checked as data before onnxruntime opens anything.

An ONNX tensor may keep its bytes in another file (``data_location: EXTERNAL`` with ``location``,
``offset`` and ``length``). onnxruntime opens that file relative to the model's folder, so a hostile model
could name ``/etc/shadow``, ``../../secret`` or a link out of the folder (reading a file the person never
meant to share into the weights, which a visitor can then probe through the model's outputs), a FIFO (a hang)
or a length of terabytes (an allocation). :func:`check_external_data` walks every tensor of the graph,
its sub-graphs (``If``/``Loop`` bodies), ``Constant`` attributes, sparse initializers and functions, and
refuses with one sentence:

* a location that is absolute, empty, holds ``..`` or a NUL, or resolves (links followed) outside the
  model's folder;
* a file that is missing or not a regular file;
* an offset or length that is not a whole number ≥ 0, that reaches past the end of the file, or a length
  that differs from what the tensor's shape and type need.

External data inside the folder, within its file, loads as before.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterator

from ...errors import ModelError

#: ONNX TensorProto data types → bytes per element (strings and 4-bit types are not checked for length).
_ITEM = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
         17: 1, 18: 1, 19: 1, 20: 1, 23: 1}


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a graph and of the graphs inside its nodes' attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        if attr.HasField("g"):
            yield from _tensors(attr.g)
        for sub in attr.graphs:
            yield from _tensors(sub)


def _whole(value: str, what: str, where: str) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 19:
        raise ModelError(f"{where} gives external data an {what} of {value[:40]!r}; it must be a whole number of "
                         "bytes of at least 0.")
    return int(text)


def _check_tensor(tensor: Any, folder: Path, real_folder: str, where: str) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    name = tensor.name or "a tensor"
    location = info.get("location", "")
    pure = PurePosixPath(location)
    if not location or "\x00" in location or pure.is_absolute() or PureWindowsPath(location).is_absolute() \
            or PureWindowsPath(location).drive or ".." in pure.parts or ".." in PureWindowsPath(location).parts:
        raise ModelError(f"{where} keeps the data of {name} at {location[:80]!r}, which is not a plain path inside "
                         "the model's folder; Earmark reads external data only from files beside the model.")
    file = folder / location
    real = os.path.realpath(file)
    if os.path.commonpath([real, real_folder]) != real_folder:
        raise ModelError(f"{where} keeps the data of {name} in {location[:80]!r}, which leads outside the model's "
                         "folder (a symbolic link); Earmark reads external data only from files inside it.")
    try:
        mode = os.stat(real)
    except OSError:
        raise ModelError(f"{where} keeps the data of {name} in {location[:80]!r}, which is missing; put the file "
                         "beside the model.") from None
    if not stat.S_ISREG(mode.st_mode):
        raise ModelError(f"{where} keeps the data of {name} in {location[:80]!r}, which is not a regular file.")
    offset = _whole(info.get("offset", "0"), "offset", where)
    length = _whole(info["length"], "length", where) if "length" in info else mode.st_size - offset
    if offset + length > mode.st_size or length < 0:
        raise ModelError(f"{where} asks for bytes {offset}–{offset + max(length, 0)} of {location[:80]!r}, which "
                         f"holds {mode.st_size} bytes; the external data is damaged or hostile.")
    item = _ITEM.get(tensor.data_type)
    if item is not None:
        count = 1
        for d in tensor.dims:
            count *= int(d)
        if count * item != length:
            raise ModelError(f"{where} gives {name} {length} bytes of external data, but its shape "
                             f"{tuple(tensor.dims)} needs {count * item}; the external data is damaged or hostile.")


def check_external_data(path: Path, onnx: Any) -> None:
    """Refuse an ONNX file whose external data leaves its folder or its files (see the module docstring).

    Args:
        path: the ``.onnx`` file.
        onnx: the ``onnx`` package (``earmark[onnx]``).

    Raises:
        ModelError: one sentence naming the tensor and what is wrong.
    """
    where = f"The ONNX model {path.name}"
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{where} is not a readable ONNX file ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}).") from None
    folder = Path(os.path.abspath(path)).parent   # onnxruntime joins locations to the folder as named
    real_folder = os.path.realpath(folder)
    tensors = list(_tensors(proto.graph))
    for function in proto.functions:
        for node in function.node:
            tensors.extend(_node_tensors(node))
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            _check_tensor(tensor, folder, real_folder, where)


__all__ = ["check_external_data"]
