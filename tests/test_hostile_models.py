"""Hostile model files: each case is built here, its payload would touch a marker file in a temporary folder,
and loading it through the API and the CLI must be refused with one sentence and leave no marker.

``python tests/test_hostile_models.py`` prints the table of case family × (cases, refused, escaped) that
docs/guide/security.md shows.
"""

from __future__ import annotations

import json
import os
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


# ---- cards, paths, Hugging Face folders, entry points -------------------------------------------------

def _card_case(**fields):
    def build(folder: Path, marker: Path) -> str:
        path = folder / "model.pt"
        script_save(Plain(), path)
        return card(path, **fields)
    return build


def _raw_card_case(text: Callable[[], str]):
    def build(folder: Path, marker: Path) -> str:
        path = folder / "model.pt"
        script_save(Plain(), path)
        path.with_suffix(".json").write_text(text())
        return str(path)
    return build


for _name, _fields in [("input_length 10**12", {"input_length": 10**12}), ('logits_output "abc"', {"logits_output": "abc"}),
                       ('sample_rate "nan"', {"sample_rate": "nan"}), ("labels not a list", {"labels": "abc"}),
                       ("max_length 10**12", {"input_length": "variable", "max_length": 10**12}),
                       ("embedding_output -1", {"embedding_output": -1}), ("sample_rate 16000.5", {"sample_rate": 16000.5})]:
    case("Cards", _name)(_card_case(**_fields))
case("Cards", "nested 100,000 deep")(_raw_card_case(lambda: '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"))
case("Cards", "sample_rate 1e400")(_raw_card_case(lambda: json.dumps(CARD).replace("16000", "1e400")))
case("Cards", "NaN token")(_raw_card_case(lambda: json.dumps(CARD).replace("16000", "NaN")))
case("Cards", "2 MB card")(_raw_card_case(lambda: json.dumps({**CARD, "notes": "x" * 2_000_000})))


@case("Paths", "symbolic-link loop as the model path")
def _loop(folder: Path, marker: Path) -> str:
    (folder / "a.pt").symlink_to(folder / "b.pt")
    (folder / "b.pt").symlink_to(folder / "a.pt")
    return str(folder / "a.pt")


@case("Paths", "FIFO as the model file")
def _fifo(folder: Path, marker: Path) -> str:
    os.mkfifo(folder / "model.pt")
    return card(folder / "model.pt")


def _hf_case(config_extra: dict, code: bool):
    def build(folder: Path, marker: Path) -> str:
        hf = folder / "hf"
        hf.mkdir()
        (hf / "config.json").write_text(json.dumps({"model_type": "custom", "id2label": {"0": "a"}, **config_extra}))
        (hf / "preprocessor_config.json").write_text(json.dumps({"sampling_rate": RATE}))
        (hf / "model.safetensors").write_bytes(b"")
        if code:
            (hf / "modeling_custom.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
        return str(hf)
    return build


case("Hugging Face", "auto_map with its Python file")(
    _hf_case({"auto_map": {"AutoModelForAudioClassification": "modeling_custom.Net"}}, True))
case("Hugging Face", "auto_map alone")(_hf_case({"auto_map": {"AutoConfig": "modeling_custom.Cfg"}}, False))
case("Hugging Face", "a Python file beside the config")(_hf_case({}, True))


def _entry_case(body: str | None, target: str | None = None):
    def build(folder: Path, marker: Path) -> str:
        if body is None:
            return target
        name = f"hostile_{abs(hash((body, str(folder)))) % 10**8}"
        (folder / f"{name}.py").write_text(body.replace("MARKER", repr(str(marker))))
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        return f"{name}:build"
    return build


case("Entry points", "sys:exit")(_entry_case(None, "sys:exit"))
case("Entry points", "builtins:exit")(_entry_case(None, "builtins:exit"))
case("Entry points", "raises SystemExit(0)")(_entry_case("def build():\n    raise SystemExit(0)\n"))
case("Entry points", "forks")(_entry_case(
    "import os\ndef build():\n    pid = os.fork()\n    if pid == 0:\n        return None\n    return None\n"))
case("Entry points", "returns no model")(_entry_case(
    "import pathlib\ndef build():\n    return 42\n"))


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
                                          "alias bomb (0.4 KB)", "nested 100,000 deep",
                                          "auto_map with its Python file", "sys:exit", "builtins:exit",
                                          "symbolic-link loop as the model path")]


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


def test_models_folder_with_loops_fifos_and_broken_links(tmp_path, monkeypatch, capsys):
    from dashboard import services
    from earmark.cli import main

    script_save(Plain(), tmp_path / "good.pt")
    card(tmp_path / "good.pt")
    (tmp_path / "loop.pt").symlink_to(tmp_path / "loop2.pt")
    (tmp_path / "loop2.pt").symlink_to(tmp_path / "loop.pt")
    (tmp_path / "dirloop").symlink_to(tmp_path / "dirloop")
    (tmp_path / "broken.pt").symlink_to(tmp_path / "nowhere.pt")
    os.mkfifo(tmp_path / "pipe.pt")
    monkeypatch.setenv("EARMARK_MODELS", str(tmp_path))
    found = services.disk_models()
    assert [Path(p).name for p in found] == ["good.pt"]
    notes = " ".join(services.SCAN_NOTES[str(tmp_path)])
    for name in ("loop.pt", "dirloop", "broken.pt", "pipe.pt"):
        assert name in notes
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "good.pt" in out and "pipe.pt: skipped" in out and "broken.pt: skipped (a broken link)" in out


def test_onnx_metadata_rate_must_be_a_finite_whole_number():
    from earmark.errors import ModelError
    from earmark.models.loaders.cardcheck import declared_rate

    assert declared_rate("16000", "m") == 16000 and declared_rate(None, "m") is None
    for bad in ("nan", "1e400", "inf", "16k", "16000.5", float("nan"), -16000, "1e3000"):
        with pytest.raises(ModelError, match="not a whole number of Hz"):
            declared_rate(bad, "the metadata of m.onnx")


def test_hf_never_trusts_remote_code(monkeypatch, tmp_path):
    transformers = pytest.importorskip("transformers")
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")
    monkeypatch.setattr(transformers.AutoModelForAudioClassification, "from_pretrained", spy)
    target = _hf_case({}, False)(tmp_path, tmp_path / "marker")
    with pytest.raises(EarmarkError, match="could not build"):
        from earmark.models import load_model
        load_model(target, "cpu", shared=False)
    assert seen.get("trust_remote_code") is False and seen.get("local_files_only") is True


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
