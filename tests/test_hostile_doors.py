"""Every family of hostile model files through the four doors a model comes in by:

* **API** — ``earmark.models.load_model(path)`` in this process;
* **CLI** — ``earmark list --model PATH`` as a subprocess (the person running it named the path);
* **EARMARK_MODELS** — the file placed in a server's models folder, found by the dashboard's scan and loaded
  as the server loads a picked model (``dashboard.services.get_model``);
* **upload** — the file's bytes (and its card's) through ``dashboard.services.save_upload`` and then loaded
  in the sandboxed worker (``earmark.sandbox.load_sandboxed``), with uploads switched on.

The cases are those of ``test_hostile_models.py`` (payloads that would touch a marker file in a temporary
folder) and of ``test_onnx_external.py`` (external data outside the model's folder). Each attempt ends as

* **refused** — one sentence (an ``EarmarkError``; on the CLI exit 2 and one ``earmark: …`` line; in the
  server folder also an entry the scan skipped with a note);
* **contained** — no sentence, but the payload did nothing and the caller lived (a traceback, a sandbox
  worker that died);
* **escaped** — the marker was written, the hostile model loaded, or the caller died or hung.

An entry that cannot travel through a door (a FIFO or a link loop cannot be uploaded: a browser sends bytes)
is counted as not applicable. The default test tries one case per family per door; ``make fuzz`` runs
``python tests/test_hostile_doors.py --out docs/results/hostile-models.md`` for every case.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import pytest

from earmark.errors import EarmarkError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_hostile_models as hm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOORS = ("API", "CLI", "EARMARK_MODELS", "upload")
Build = Callable[[Path, Path], str]


def _onnx_cases() -> list[tuple[str, str, Build]]:
    try:
        import test_onnx_external as ox
    except pytest.skip.Exception:   # onnx is not installed: the family is left out, and the table says so
        return []

    def wrap(name: str) -> Build:
        return lambda folder, marker: str(ox.HOSTILE[name](folder))
    return [("ONNX external data", name, wrap(name)) for name in ox.HOSTILE]


ENTRY_EXTRA: list[tuple[str, str, Build]] = [
    ("Entry points", "os.abort()", hm._entry_case("import os\ndef build():\n    os.abort()\n")),
    ("Entry points", "os._exit(0)", hm._entry_case("import os\ndef build():\n    os._exit(0)\n")),
    ("Entry points", "os.abort() at import", hm._entry_case("import os\nos.abort()\ndef build():\n    return None\n")),
    ("Entry points", "sys.exit(0) at import", hm._entry_case("import sys\nsys.exit(0)\ndef build():\n    return None\n")),
    ("Entry points", "os:abort", hm._entry_case(None, "os:abort")),
    ("Entry points", "SIGKILL to itself", hm._entry_case(
        "import os, signal\ndef build():\n    os.kill(os.getpid(), signal.SIGKILL)\n")),
]
CASES: list[tuple[str, str, Build]] = list(hm.CASES) + ENTRY_EXTRA + _onnx_cases()
FAMILIES = list(dict.fromkeys(family for family, _, _ in CASES))
#: One case per family for the default test: the one that did most harm before it was refused.
REPRESENTATIVE = {"TorchScript graph": "from_file in forward", "TorchScript archive": "duplicate member",
                  "torch.export archive": "duplicate member", "torch.export graph": "aten.from_file node",
                  "SpeechBrain YAML": "!%61pply (escaped tag)", "Cards": "nested 100,000 deep",
                  "Paths": "symbolic-link loop as the model path", "Hugging Face": "auto_map with its Python file",
                  "Entry points": "os.abort()", "ONNX external data": ".. traversal"}


def _is_entry(target: str) -> bool:
    from earmark.models.loaders.kinds import ENTRY_POINT

    return bool(ENTRY_POINT.match(target)) and not Path(target).exists()


def _sentence(message: str) -> bool:
    return bool(message) and "\n" not in message.strip() and "Traceback" not in message


@contextmanager
def _env(**values: str | None):
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- the four doors: each returns (outcome, message) ------------------------------------------------------

def door_api(build: Build, folder: Path, marker: Path) -> tuple[str, str]:
    from earmark.models import load_model

    target = build(folder, marker)
    marker.unlink(missing_ok=True)
    try:
        load_model(target, "cpu", shared=False)
    except EarmarkError as exc:
        return ("escaped" if marker.exists() else "refused" if _sentence(str(exc)) else "contained"), str(exc)
    except Exception as exc:   # not a sentence, but nothing escaped unless the marker says so
        return ("escaped" if marker.exists() else "contained"), f"{type(exc).__name__}: {exc}"
    return "escaped", "loaded"


def door_cli(build: Build, folder: Path, marker: Path) -> tuple[str, str]:
    target = build(folder, marker)
    marker.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "core"), str(ROOT), str(folder)]))
    env.pop("EARMARK_MODELS", None)
    try:
        done = subprocess.run([sys.executable, "-m", "earmark", "list", "--model", target], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "escaped", "the CLI hung"
    err = done.stderr.strip()
    if marker.exists() or done.returncode <= 0:   # wrote, obeyed an exit, or was killed by a signal
        return "escaped", f"exit {done.returncode}: {err[-200:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("earmark: ")]
    if done.returncode == 2 and len(said) == 1 and lines[-1] == said[0] and "Traceback" not in err:
        return "refused", said[0]   # (a library's warning may come before the sentence)
    return "contained", f"exit {done.returncode}: {err[-200:]}"


def door_models_folder(build: Build, folder: Path, marker: Path) -> tuple[str, str]:
    from dashboard import services

    server = folder / "server"
    server.mkdir(parents=True, exist_ok=True)
    target = build(server, marker)
    marker.unlink(missing_ok=True)
    if _is_entry(target):   # the server owner's card names the code
        (server / "entry").mkdir()
        (server / "entry" / "card.json").write_text(json.dumps({**hm.CARD, "entry_point": target}))
    with _env(EARMARK_MODELS=str(server)):
        try:
            found = services.disk_models()
        except Exception as exc:
            return "escaped", f"the scan failed: {type(exc).__name__}: {exc}"
        notes = services.SCAN_NOTES.get(str(server), [])
        outcomes = []
        for path in found:
            try:
                services.get_model(path)
                outcomes.append(("escaped", f"{Path(path).name} loaded"))
            except EarmarkError as exc:
                outcomes.append(("refused" if _sentence(str(exc)) else "contained", str(exc)))
            except Exception as exc:
                outcomes.append(("contained", f"{type(exc).__name__}: {exc}"))
    if marker.exists():
        return "escaped", "the marker was written"
    if not outcomes:
        return ("refused", "; ".join(notes)) if notes else ("refused", "the scan found no model")
    worst = max(outcomes, key=lambda o: ("refused", "contained", "escaped").index(o[0]))
    return worst


def _upload_files(target: str, folder: Path) -> list[tuple[str, bytes]] | None:
    """What a visitor could send for this case (bytes only), or ``None`` if it cannot be sent."""
    if _is_entry(target):
        module = target.partition(":")[0]
        code = folder / f"{module}.py"
        files = [(code.name, code.read_bytes())] if code.is_file() else []
        return files + [("card.json", json.dumps({**hm.CARD, "entry_point": target}).encode())]
    path = Path(target)
    try:
        mode = os.stat(path).st_mode
    except (OSError, RuntimeError):
        return None
    if stat.S_ISDIR(mode):
        return [(p.name, p.read_bytes()) for p in sorted(path.iterdir()) if p.is_file() and not p.is_symlink()]
    if not stat.S_ISREG(mode):
        return None
    files = [(path.name, path.read_bytes())]
    card = path.with_suffix(".json")
    if card.is_file():
        files.append((card.name, card.read_bytes()))
    return files


def door_upload(build: Build, folder: Path, marker: Path) -> tuple[str, str]:
    import torch

    from dashboard import services
    from earmark.sandbox import load_sandboxed

    target = build(folder, marker)
    marker.unlink(missing_ok=True)
    files = _upload_files(target, folder)
    if files is None:
        return "n/a", "cannot be uploaded (not a file's bytes)"
    with _env(EARMARK_ALLOW_MODEL_UPLOAD="1", EARMARK_MODEL_UPLOADS=None):
        try:
            saved = services.save_upload(files)
            model = load_sandboxed(saved)
        except EarmarkError as exc:
            text = str(exc)
            died = text.startswith(("The sandboxed model was stopped", "The sandboxed model's process ended"))
            return ("escaped" if marker.exists() else "contained" if died or not _sentence(text) else "refused"), text
        try:
            model(torch.zeros(2, model.card.input_length or hm.LENGTH))
            return ("escaped", "loaded and ran")
        except EarmarkError as exc:
            return ("escaped" if marker.exists() else "contained"), str(exc)
        finally:
            model.worker.close()


DOOR_FN = {"API": door_api, "CLI": door_cli, "EARMARK_MODELS": door_models_folder, "upload": door_upload}


def attempt(door: str, build: Build, folder: Path) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    return DOOR_FN[door](build, folder, folder / "marker")


# ---- the default test: one case per family per door --------------------------------------------------------

REPRESENTATIVE_CASES = [(f, n, b) for f, n, b in CASES if REPRESENTATIVE.get(f) == n]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("family, name, build", REPRESENTATIVE_CASES,
                         ids=[f"{f}: {n}" for f, n, _ in REPRESENTATIVE_CASES])
def test_hostile_family_through_each_door(door, family, name, build, tmp_path):
    outcome, message = attempt(door, build, tmp_path)
    assert outcome in ("refused", "n/a"), (outcome, message)
    assert not (tmp_path / "marker").exists()


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("family, name, build", CASES, ids=[f"{f}: {n}" for f, n, _ in CASES])
def test_every_case_through_every_door(door, family, name, build, tmp_path):
    """The long version (``make fuzz`` writes it as the table): every case, every door."""
    outcome, message = attempt(door, build, tmp_path)
    assert outcome in ("refused", "n/a"), (outcome, message)
    assert not (tmp_path / "marker").exists()


def test_every_family_has_a_representative():
    assert sorted(REPRESENTATIVE) == sorted(FAMILIES), set(FAMILIES) ^ set(REPRESENTATIVE)


# ---- the full table (make fuzz) ------------------------------------------------------------------------------

def table(folder: Path, *, log=None) -> str:
    """Markdown: family × door × (cases, refused, contained, escaped), and every case that was not refused."""
    counts: dict[tuple[str, str], list[int]] = {}
    notes: list[str] = []
    for i, (family, name, build) in enumerate(CASES):
        for door in DOORS:
            start = time.perf_counter()
            outcome, message = attempt(door, build, folder / f"{i}-{door}")
            row = counts.setdefault((family, door), [0, 0, 0, 0, 0])
            row[["refused", "contained", "escaped", "n/a"].index(outcome) + 1] += 1
            row[0] += outcome != "n/a"
            if outcome not in ("refused", "n/a"):
                notes.append(f"- {family} · {name} · {door}: **{outcome}** — {' '.join(message.split())[:200]}")
            if log:
                log(f"{family} · {name} · {door}: {outcome} ({time.perf_counter() - start:.1f} s) {message[:120]}")
    lines = ["| family | door | cases | refused | contained | escaped | not applicable |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for family in FAMILIES:
        for door in DOORS:
            c, r, k, e, na = counts[(family, door)]
            lines.append(f"| {family} | {door} | {c} | {r} | {k} | {e} | {na} |")
    for door in DOORS:
        c, r, k, e, na = (sum(counts[(f, door)][j] for f in FAMILIES) for j in range(5))
        lines.append(f"| **all** | **{door}** | **{c}** | **{r}** | **{k}** | **{e}** | **{na}** |")
    return "\n".join(lines) + ("\n\nNot refused:\n\n" + "\n".join(notes) if notes else "") + "\n"


if __name__ == "__main__":
    import tempfile
    import warnings

    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here (default: print)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        body = table(Path(tmp), log=lambda s: print(s, file=sys.stderr, flush=True))
    head = ("# Hostile model files by door\n\n"
            "Made by `python tests/test_hostile_doors.py --out docs/results/hostile-models.md` (`make fuzz`) in "
            f"{time.perf_counter() - started:.0f} s (2 CPU cores shared with other work); cases are built in the test files, and each payload would touch a "
            "marker file in a temporary folder. *refused*: one sentence; *contained*: no sentence but nothing "
            "written and the caller alive; *escaped*: marker written, hostile model loaded, or the caller died; "
            "*not applicable*: the entry cannot pass that door (a FIFO or a link loop cannot be uploaded).\n\n")
    if args.out:
        args.out.write_text(head + body)
    else:
        print(head + body)
