"""Entry points that end, abort, fork or hang are tried in a child process first: the caller gets one sentence
and lives on (the API here; the CLI and the server folder in ``test_hostile_doors.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from earmark.errors import ModelError
from earmark.models import load_model

BODIES = {
    "os.abort()": ("import os\ndef build():\n    os.abort()\n", "killed by SIGABRT (os.abort)"),
    "os._exit(0)": ("import os\ndef build():\n    os._exit(0)\n", "exit code 0 (os._exit)"),
    "os._exit(3)": ("import os\ndef build():\n    os._exit(3)\n", "exit code 3 (os._exit)"),
    "abort at import": ("import os\nos.abort()\ndef build():\n    return None\n", "killed by SIGABRT"),
    "sys.exit at import": ("import sys\nsys.exit(4)\ndef build():\n    return None\n", "SystemExit 4"),
    "builtins.exit": ("def build():\n    exit(5)\n", "SystemExit 5"),
    "SIGKILL to itself": ("import os, signal\ndef build():\n    os.kill(os.getpid(), signal.SIGKILL)\n",
                          "killed by SIGKILL"),
    "fork": ("import os\ndef build():\n    os.fork()\n    return None\n", "started 1 process(es)"),
    "subprocess left running": ("import subprocess\ndef build():\n    subprocess.Popen(['sleep', '5'])\n",
                                "started 1 process(es)"),
}


def _module(folder: Path, name: str, body: str, monkeypatch) -> str:
    module = f"trial_{abs(hash((name, str(folder)))) % 10**8}"
    (folder / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(folder))
    return f"{module}:build"


@pytest.mark.parametrize("name", list(BODIES))
def test_entry_point_that_ends_its_process_is_one_sentence(name, tmp_path, monkeypatch):
    body, words = BODIES[name]
    target = _module(tmp_path, name, body, monkeypatch)
    with pytest.raises(ModelError) as info:
        load_model(target, "cpu", shared=False)
    message = str(info.value)
    assert words in message and message.startswith(f"The entry point {target}") and "\n" not in message, message


def test_a_hanging_entry_point_is_stopped(tmp_path, monkeypatch):
    target = _module(tmp_path, "hang", "import time\ndef build():\n    time.sleep(600)\n", monkeypatch)
    monkeypatch.setenv("EARMARK_ENTRY_TRIAL_S", "3")
    with pytest.raises(ModelError, match="did not return within 3 s"):
        load_model(target, "cpu", shared=False)


def test_a_card_in_the_models_folder_is_tried_with_its_kwargs(tmp_path, monkeypatch):
    """The card's entry_kwargs reach the trial: the same callable aborts for one value and builds for another."""
    body = ("import os, torch\nclass Net(torch.nn.Module):\n    def __init__(self, abort=False):\n"
            "        super().__init__()\n        if abort:\n            os.abort()\n"
            "        self.lin = torch.nn.Linear(8, 3)\n    def forward(self, x):\n"
            "        return self.lin(x.reshape(x.shape[0], -1, 8).mean(1))\n")
    (tmp_path / "card_trial_net.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("EARMARK_MODELS", str(tmp_path))
    card = {"sample_rate": 16000, "input_length": 800, "labels": ["a", "b", "c"], "entry_point": "card_trial_net:Net"}
    for name, kwargs in (("good", {}), ("bad", {"abort": True})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "card.json").write_text(json.dumps({**card, "entry_kwargs": kwargs}))
    assert load_model(str(tmp_path / "good"), "cpu", shared=False).card.labels == ("a", "b", "c")
    with pytest.raises(ModelError, match=r"named by the card card.json\) was killed by SIGABRT"):
        load_model(str(tmp_path / "bad"), "cpu", shared=False)


GUARD = r"""
import os, sys
sys.path[:0] = [sys.argv[1]]
from earmark.errors import ModelError
from earmark.models.loaders.entrypoint import call_guarded
said = []
for name, fn in [("abort", lambda: os.abort()), ("_exit", lambda: os._exit(0)), ("fork", lambda: os.fork()),
                 ("exit", lambda: exit(0))]:
    try:
        call_guarded(fn, name)
    except ModelError as exc:
        said.append(str(exc))
assert os.abort.__name__ == "abort" and os._exit.__name__ == "_exit"   # put back after the call
print("\n".join(said))
"""


def test_in_process_guard_turns_exits_into_sentences(tmp_path):
    """The second line, for code that behaves differently after its trial: the call here cannot end us either."""
    core = str(Path(__file__).resolve().parents[1] / "core")
    done = subprocess.run([sys.executable, "-c", GUARD, core], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-1000:]
    lines = done.stdout.strip().splitlines()
    assert [line.split(" called ")[-1].split(";")[0] for line in lines[:3]] == ["os.abort", "os._exit", "os.fork"]
    assert "tried to end the process (SystemExit 0)" in lines[3]
