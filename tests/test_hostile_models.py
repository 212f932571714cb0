"""Hostile model files: each case is built here, its payload would touch a marker file in a temporary folder,
and loading it through the API and the CLI must be refused with one sentence and leave no marker.

``python tests/test_hostile_models.py`` prints the table of case family × (cases, refused, escaped) that
docs/guide/security.md shows.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Tuple

import pytest
import torch
from torch import nn

from earmark.errors import EarmarkError

RATE, LENGTH = 16000, 800
CARD = {"sample_rate": RATE, "input_length": LENGTH, "labels": ["a", "b", "c"]}

#: (family, name, build(folder, marker) -> what to load)
CASES: list[tuple[str, str, Callable[[Path, Path], str]]] = []


def case(family: str, name: str):
    def register(fn):
        CASES.append((family, name, fn))
        return fn
    return register


def card(path: Path, **fields) -> str:
    path.with_suffix(".json").write_text(json.dumps({**CARD, **fields}))
    return str(path)


def script_save(module: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(path))


# ---- TorchScript payloads --------------------------------------------------------------------------------

class FromFileForward(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.lin = nn.Linear(8, 3)
        self.path = path

    def forward(self, x):
        t = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        return self.lin(x.reshape(x.shape[0], -1, 8).mean(1)) + t.sum() * 0


class FromFileEmbed(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.lin = nn.Linear(8, 3)
        self.path = path

    def forward(self, x):
        return self.lin(x.reshape(x.shape[0], -1, 8).mean(1))

    @torch.jit.export
    def embed(self, x):
        t = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        return x[:, :8] + t.sum() * 0


class Saver(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        torch.save(x, self.path)
        return x


class SaveInSubmodule(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.inner = Saver(path)
        self.lin = nn.Linear(8, 3)

    def forward(self, x):
        return self.lin(self.inner(x).reshape(x.shape[0], -1, 8).mean(1))


@torch.jit.script
def helper_touch(x: torch.Tensor, path: str) -> torch.Tensor:
    return x + torch.from_file(path, shared=True, size=8, dtype=torch.uint8).sum() * 0


class FromFileInFunction(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.lin = nn.Linear(8, 3)
        self.path = path

    def forward(self, x):
        return self.lin(helper_touch(x, self.path).reshape(x.shape[0], -1, 8).mean(1))


class Printer(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.lin = nn.Linear(8, 3)
        self.path = path

    def forward(self, x):
        print(self.path)
        return self.lin(x.reshape(x.shape[0], -1, 8).mean(1))


class SetStateTouch(nn.Module):
    """``torch.jit.load`` runs ``__setstate__`` while loading: the payload would run before any check."""

    def __init__(self, path: str):
        super().__init__()
        self.w = torch.randn(8, 3)
        self.path = path
        self.buf = torch.zeros(8, dtype=torch.uint8)

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool, torch.Tensor]:
        return (self.path, self.training, self.w)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool, torch.Tensor]):
        self.path, self.training, self.w = state[0], state[1], state[2]
        self.buf = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)

    def forward(self, x):
        return x.reshape(x.shape[0], -1, 8).mean(1) @ self.w


def _script_case(cls):
    def build(folder: Path, marker: Path) -> str:
        path = folder / "model.pt"
        script_save(cls(str(marker)), path)
        return card(path)
    return build


for _name, _cls in [("from_file in forward", FromFileForward), ("from_file in another method", FromFileEmbed),
                    ("torch.save in a submodule", SaveInSubmodule), ("from_file in a called function", FromFileInFunction),
                    ("print in forward", Printer), ("from_file in __setstate__ (runs on load)", SetStateTouch)]:
    case("TorchScript graph", _name)(_script_case(_cls))


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 3)

    def forward(self, x):
        return self.lin(x.reshape(x.shape[0], -1, 8).mean(1))


def _pickle_payload(marker: Path) -> bytes:
    class Touch:
        def __reduce__(self):
            return (Path.touch, (marker,))
    import pickle
    return pickle.dumps(Touch())


def rewrite_zip(src: Path, dst: Path, edit: Callable[[zipfile.ZipFile, zipfile.ZipFile], None]) -> None:
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # zipfile warns about the duplicate names we write on purpose
        edit(a, b)


def _zip_case(fmt: str, how: str):
    def build(folder: Path, marker: Path) -> str:
        good, bad = folder / f"good.{fmt}", folder / f"model.{fmt}"
        if fmt == "pt":
            script_save(Plain(), good)
        else:
            torch.export.save(torch.export.export(Plain().eval(), (torch.randn(2, LENGTH),)), str(good))
        victim = "data.pkl" if fmt == "pt" else "data/sample_inputs/model.pt"

        def edit(a: zipfile.ZipFile, b: zipfile.ZipFile) -> None:
            for item in a.infolist():
                data = a.read(item)
                if how == "duplicate" and item.filename.endswith(victim):
                    b.writestr(item.filename, _pickle_payload(marker))   # the first copy carries the payload
                if how == "stray" and item.filename.endswith(victim):
                    b.writestr(item.filename.split("/")[0] + "/payload.pkl", _pickle_payload(marker))
                if how == "escape" and item.filename.endswith(victim):
                    b.writestr(item.filename.split("/")[0] + "/../payload.pkl", _pickle_payload(marker))
                b.writestr(item, data)
        rewrite_zip(good, bad, edit)
        if how == "local name":   # the local header names another member than the central directory
            blob = bytearray(bad.read_bytes())
            with zipfile.ZipFile(bad) as z:
                info = next(i for i in z.infolist() if i.filename.endswith(victim))
            start = info.header_offset + 30
            n = len(info.filename)
            blob[start:start + n] = info.filename[:-1].encode() + b"X"
            bad.write_bytes(bytes(blob))
        good.unlink()
        return card(bad)
    return build


for _fmt in ("pt", "pt2"):
    for _how in ("duplicate", "stray", "escape", "local name"):
        case(f"{'TorchScript' if _fmt == 'pt' else 'torch.export'} archive", f"{_how} member")(_zip_case(_fmt, _how))


# ---- torch.export payloads -----------------------------------------------------------------------------

def _export_with(node_builder) -> Callable[[Path, Path], str]:
    def build(folder: Path, marker: Path) -> str:
        program = torch.export.export(Plain().eval(), (torch.randn(2, LENGTH),))
        graph = program.graph_module.graph
        out = next(n for n in graph.nodes if n.op == "output")
        logits = out.args[0][0]
        with graph.inserting_before(out):
            extra = node_builder(graph, str(marker), logits)
            total = graph.call_function(torch.ops.aten.sum.default, (extra,))
            total.meta["val"] = logits.meta["val"].new_empty(())
            added = graph.call_function(torch.ops.aten.add.Tensor, (logits, total))
            added.meta["val"] = logits.meta["val"]
        out.args = ((added,),)
        program.graph_module.recompile()
        program.graph_signature.output_specs[0].arg.name = added.name
        path = folder / "model.pt2"
        torch.export.save(program, str(path))
        return card(path)
    return build


def _from_file_node(graph, marker: str, logits):
    node = graph.call_function(torch.ops.aten.from_file.default, (marker,), {"shared": True, "size": 8})
    node.meta["val"] = logits.meta["val"].new_empty((8,))
    return node


_LIB = None


def _custom_op_node(graph, marker: str, logits):
    global _LIB
    if _LIB is None:   # an operator from outside aten: a library's op would be any code at all
        _LIB = torch.library.Library("earmark_hostile", "DEF")
        _LIB.define("touch(Tensor x, str path) -> Tensor")
        _LIB.impl("touch", lambda x, path: (Path(path).touch(), x.clone())[1], "CompositeExplicitAutograd")
        _LIB.impl("touch", lambda x, path: x.clone(), "Meta")
    node = graph.call_function(torch.ops.earmark_hostile.touch.default, (logits, marker))
    node.meta["val"] = logits.meta["val"]
    return node


case("torch.export graph", "aten.from_file node")(_export_with(_from_file_node))
case("torch.export graph", "custom-namespace operator")(_export_with(_custom_op_node))


# ---- SpeechBrain YAML payloads -------------------------------------------------------------------------

def _yaml_case(payload: Callable[[Path], str], *, base: bool = True):
    def build(folder: Path, marker: Path) -> str:
        from loader_models import SPEECHBRAIN_YAML

        sb = folder / "sb"
        sb.mkdir(parents=True, exist_ok=True)
        (sb / "hyperparams.yaml").write_text((SPEECHBRAIN_YAML if base else "") + payload(marker))
        return str(sb)
    return build


def _alias_bomb(levels: int = 24) -> str:
    lines = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


YAML_PAYLOADS: dict[str, Callable[[Path], str]] = {
    "!%61pply (escaped tag)": lambda m: f"boom: !%61pply:os.system ['touch {m}']\n",
    "!new: Popen through torch.utils.cpp_extension": lambda m: f"boom: !new:torch.utils.cpp_extension.subprocess.Popen [[touch, {m}]]\n",
    "!new: Popen through speechbrain.utils.superpowers": lambda m: f"boom: !new:speechbrain.utils.superpowers.subprocess.Popen [[touch, {m}]]\n",
    "!!python/object/apply": lambda m: f"boom: !!python/object/apply:os.system ['touch {m}']\n",
    "!name:": lambda m: "boom: !name:os.system\n",
    "!module:": lambda m: "boom: !module:os\n",
    "!include:": lambda m: f"boom: !include:{m}.yaml\n",
    "!applyref:": lambda m: f"boom: !applyref:os.system ['touch {m}']\n",
    "%TAG handle to !apply": lambda m: f"%TAG !x! !apply:\n---\nboom: !x!os.system ['touch {m}']\n",
    "verbatim tag": lambda m: f"boom: !<!apply:os.system> ['touch {m}']\n",
    "python tag inside a tuple": lambda m: f"boom: (!!python/object/apply:os.system ['touch {m}'])\n",
    "alias bomb (0.4 KB)": lambda m: _alias_bomb(),
    "!ref doubling bomb": lambda m: "r0: xxxxxxxx\n" + "".join(f"r{i}: !ref <r{i - 1}><r{i - 1}>\n" for i in range(1, 40)),
    "!ref power": lambda m: "p: !ref 9**9**9\n",
    "100,000-deep nesting": lambda m: "deep: " + "[" * 100_000 + "]" * 100_000 + "\n",
}
for _name, _payload in YAML_PAYLOADS.items():
    case("SpeechBrain YAML", _name)(_yaml_case(_payload, base=not _name.startswith("%TAG")))


# ---- the runner ---------------------------------------------------------------------------------------

def attempt(build, folder: Path) -> tuple[bool, bool, str]:
    """(refused with an EarmarkError, marker written, message) for one case through the API."""
    from earmark.models import load_model

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "marker"
    target = build(folder, marker)
    if marker.exists():
        marker.unlink()   # a payload ran while we built the file (not the case here, but never count it)
    try:
        load_model(target, "cpu", shared=False)
        refused, message = False, ""
    except EarmarkError as exc:
        refused, message = True, str(exc)
    return refused, marker.exists(), message


@pytest.mark.parametrize("family, name, build", CASES, ids=[f"{f}: {n}" for f, n, _ in CASES])
def test_hostile_model_is_refused_through_the_api(family, name, build, tmp_path):
    refused, escaped, message = attempt(build, tmp_path)
    assert refused and not escaped, (refused, escaped, message)
    assert "\n" not in message and message.endswith((".", ")")), message


CLI_CASES = [c for c in CASES if c[1] in ("from_file in forward", "from_file in __setstate__ (runs on load)",
                                          "duplicate member", "aten.from_file node", "!%61pply (escaped tag)",
                                          "alias bomb (0.4 KB)")]


@pytest.mark.parametrize("family, name, build", CLI_CASES, ids=[f"{f}: {n}" for f, n, _ in CLI_CASES])
def test_hostile_model_is_refused_through_the_cli(family, name, build, tmp_path, capsys):
    from earmark.cli import main

    marker = tmp_path / "marker"
    target = build(tmp_path, marker)
    code = main(["list", "--model", target])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("earmark: ") and err.count("\n") == 1, err
    assert not marker.exists()


def test_payloads_are_real_without_the_checks(tmp_path):
    """The payloads are not toothless: loaded and run by torch alone they write the marker."""
    marker = tmp_path / "marker"
    script_save(FromFileForward(str(marker)), tmp_path / "a.pt")
    torch.jit.load(str(tmp_path / "a.pt"))(torch.zeros(2, LENGTH))
    assert marker.exists()
    marker.unlink()
    script_save(SetStateTouch(str(marker)), tmp_path / "b.pt")
    torch.jit.load(str(tmp_path / "b.pt"))
    assert marker.exists()
    marker.unlink()
    target = _export_with(_from_file_node)(tmp_path, marker)
    torch.export.load(target).module()(torch.zeros(2, LENGTH))
    assert marker.exists()


def test_yaml_bomb_is_refused_fast(tmp_path):
    import time

    from earmark.models.loaders.yamlcheck import safe_hyperparams

    for text in (_alias_bomb(), "r0: xxxxxxxx\n" + "".join(f"r{i}: !ref <r{i - 1}><r{i - 1}>\n" for i in range(1, 40))):
        start = time.perf_counter()
        with pytest.raises(EarmarkError, match="alias|bomb"):
            safe_hyperparams(text, "x.yaml")
        assert time.perf_counter() - start < 1.0


def test_plain_models_still_load(tmp_path):
    from earmark.models import load_model

    script_save(Plain(), tmp_path / "s.pt")
    model = load_model(card(tmp_path / "s.pt"), "cpu", shared=False)
    assert model(torch.zeros(2, LENGTH)).shape == (2, 3)
    program = torch.export.export(Plain().eval(), (torch.randn(2, LENGTH),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", max=64)},))
    torch.export.save(program, str(tmp_path / "e.pt2"))
    model = load_model(card(tmp_path / "e.pt2"), "cpu", shared=False)
    assert model(torch.zeros(2, LENGTH)).shape == (2, 3)


def report(folder: Path) -> str:
    """The Markdown table family × (cases, refused, escaped)."""
    rows: dict[str, list[int]] = {}
    for i, (family, name, build) in enumerate(CASES):
        refused, escaped, _ = attempt(build, folder / str(i))
        row = rows.setdefault(family, [0, 0, 0])
        row[0] += 1
        row[1] += refused
        row[2] += escaped
    lines = ["| family | cases | refused | escaped |", "|---|---:|---:|---:|"]
    lines += [f"| {f} | {c} | {r} | {e} |" for f, (c, r, e) in rows.items()]
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    lines.append(f"| **all** | **{total[0]}** | **{total[1]}** | **{total[2]}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(report(Path(tmp)))
