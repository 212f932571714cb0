"""Uploaded models run in a confined worker process: limits, no writes outside its scratch folder, no
network, only tensors across the boundary."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from earmark.errors import ModelError

CORE = str(Path(__file__).resolve().parents[1] / "core")

PROBE = r"""
import json, socket, sys
from pathlib import Path
sys.path[:0] = [sys.argv[1]]
from earmark.sandbox import confine
scratch, outside = Path(sys.argv[2]), Path(sys.argv[3])
enforced = confine(scratch)
result = {"enforced": enforced}
def attempt(name, fn):
    try:
        fn(); result[name] = "allowed"
    except BaseException as exc:
        result[name] = type(exc).__name__
attempt("write outside", lambda: outside.write_text("x"))
attempt("touch outside", lambda: outside.with_name("touched").touch())
attempt("write inside", lambda: (scratch / "ok.txt").write_text("x"))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", 9), timeout=2))
attempt("allocate 16 GB", lambda: bytearray(16 << 30))
print(json.dumps(result))
"""


def test_confinement_blocks_writes_network_and_memory(tmp_path):
    scratch, outside = tmp_path / "scratch", tmp_path / "outside" / "marker"
    scratch.mkdir()
    outside.parent.mkdir()
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, CORE, str(scratch), str(outside)], capture_output=True,
                         text=True, cwd=scratch, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["write inside"] == "allowed"
    assert result["allocate 16 GB"] == "MemoryError"
    if any(e.startswith("Landlock ABI") for e in result["enforced"]):
        assert result["write outside"] == "PermissionError" and result["touch outside"] == "PermissionError"
        assert not outside.exists() and not outside.with_name("touched").exists()
    if "network namespace" in result["enforced"] or any(e.startswith("Landlock ABI") for e in result["enforced"]):
        assert result["connect"] != "allowed"


class Plain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.lin(torch.tanh(x.reshape(x.shape[0], -1, 8).mean(1)))


def test_uploaded_model_in_the_sandbox_matches_and_hostile_one_is_refused(tmp_path, monkeypatch):
    import warnings

    from dashboard import services as sv
    from earmark.sandbox import load_sandboxed
    from test_hostile_models import FromFileForward, card, script_save

    monkeypatch.setenv("EARMARK_ALLOW_MODEL_UPLOAD", "1")
    monkeypatch.delenv("EARMARK_MODEL_UPLOADS", raising=False)
    folder = sv.upload_folder()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.name != "earmark-model-uploads"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torch.jit.script(Plain().eval())
    net.save(str(tmp_path / "plain.pt"))
    good = sv.save_upload([("plain.pt", (tmp_path / "plain.pt").read_bytes()),
                           ("plain.json", json.dumps({"sample_rate": 16000, "input_length": 800,
                                                      "labels": ["a", "b", "c"]}).encode())])
    assert sv.is_upload(good) and Path(good).parent.parent == folder
    model = load_sandboxed(good)
    try:
        x = (0.1 * torch.randn(2, 800)).requires_grad_(True)
        y = model(x)
        (g,) = torch.autograd.grad(y[:, 1].sum(), x)
        x2 = x.detach().clone().requires_grad_(True)
        (g2,) = torch.autograd.grad(net(x2)[:, 1].sum(), x2)
        assert torch.allclose(y, net(x), atol=1e-6) and torch.allclose(g, g2, atol=1e-7)
        assert model.worker.proc.pid != os.getpid() and model.card.labels == ("a", "b", "c")
    finally:
        model.worker.close()
    marker = tmp_path / "marker"
    script_save(FromFileForward(str(marker)), tmp_path / "bad.pt")
    card(tmp_path / "bad.pt")
    bad = sv.save_upload([("bad.pt", (tmp_path / "bad.pt").read_bytes()), ("bad.json", (tmp_path / "bad.json").read_bytes())])
    with pytest.raises(ModelError, match="aten::from_file"):
        load_sandboxed(bad)
    assert not marker.exists()
