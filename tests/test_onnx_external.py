"""ONNX external data: locations outside the model's folder, links out of it, FIFOs and impossible offsets or
lengths are refused with one sentence before onnxruntime opens a file; external data inside the folder loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from earmark.errors import ModelError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

LENGTH, CLASSES = 800, 3
WEIGHTS = (np.arange(LENGTH * CLASSES, dtype=np.float32).reshape(LENGTH, CLASSES) % 7 - 3) / 100
CARD = {"sample_rate": 16000, "input_length": LENGTH, "labels": ["a", "b", "c"]}


def external(tensor, location: str, offset: int | str | None = None, length: int | str | None = None):
    """Move a tensor's bytes out of the proto: it now names ``location`` (and an offset and length)."""
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    fields = [("location", location)] + [(k, str(v)) for k, v in (("offset", offset), ("length", length)) if v is not None]
    for key, value in fields:
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def build(folder: Path, location: str, *, offset=None, length=None, in_constant: bool = False) -> Path:
    """A MatMul classifier (B, 800) → (B, 3) whose weights live at ``location``; returns the .onnx path."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = external(numpy_helper.from_array(WEIGHTS, "W"), location, offset, length)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", LENGTH])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", CLASSES])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    inits = [weights]
    if in_constant:   # the same bytes as a Constant node's attribute instead of an initializer
        nodes.insert(0, helper.make_node("Constant", [], ["W"], value=weights))
        inits = []
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps(CARD))
    return path


def load(path: Path):
    from earmark.models import load_model

    return load_model(str(path), "cpu", shared=False)


def test_external_data_inside_the_folder_loads(tmp_path):
    path = build(tmp_path / "m", "weights/w.bin", offset=16, length=WEIGHTS.nbytes)
    (tmp_path / "m" / "weights").mkdir()
    (tmp_path / "m" / "weights" / "w.bin").write_bytes(b"\0" * 16 + WEIGHTS.tobytes())
    model = load(path)
    wave = torch.randn(2, LENGTH, generator=torch.Generator().manual_seed(0))
    expected = wave.numpy() @ WEIGHTS
    assert np.allclose(model(wave).numpy(), expected, atol=1e-5)


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(WEIGHTS.tobytes())
    return secret


HOSTILE = {
    "absolute path": lambda t: build(t / "m", str(_secret(t))),
    ".. traversal": lambda t: (_secret(t), build(t / "m", "../secret.bin"))[1],
    "hidden .. traversal": lambda t: (_secret(t), (t / "m" / "d").mkdir(parents=True),
                                      build(t / "m", "d/../../secret.bin"))[2],
    "symbolic link out of the folder": lambda t: (build(t / "m", "w.bin"), (t / "m" / "w.bin").symlink_to(_secret(t)))[0],
    "linked folder out of the folder": lambda t: (build(t / "m", "sub/secret.bin"),
                                                  (t / "m" / "sub").symlink_to(_secret(t).parent))[0],
    "FIFO": lambda t: (build(t / "m", "w.bin"), os.mkfifo(t / "m" / "w.bin"))[0],
    "missing file": lambda t: build(t / "m", "w.bin"),
    "huge length": lambda t: (build(t / "m", "w.bin", length=10**15),
                              (t / "m" / "w.bin").write_bytes(WEIGHTS.tobytes()))[0],
    "huge offset": lambda t: (build(t / "m", "w.bin", offset=2**62, length=WEIGHTS.nbytes),
                              (t / "m" / "w.bin").write_bytes(WEIGHTS.tobytes()))[0],
    "negative offset": lambda t: (build(t / "m", "w.bin", offset=-8),
                                  (t / "m" / "w.bin").write_bytes(WEIGHTS.tobytes()))[0],
    "length not the tensor's": lambda t: (build(t / "m", "w.bin", length=16),
                                          (t / "m" / "w.bin").write_bytes(WEIGHTS.tobytes()))[0],
    "absolute path in a Constant": lambda t: build(t / "m", str(_secret(t)), in_constant=True),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_external_data_is_refused_before_onnxruntime(name, tmp_path, monkeypatch):
    import onnxruntime

    path = HOSTILE[name](tmp_path)
    opened = []
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: opened.append(a) or pytest.fail("opened"))
    with pytest.raises(ModelError) as info:
        load(path)
    message = str(info.value)
    assert not opened and "\n" not in message and message.startswith("The ONNX model model.onnx"), message
