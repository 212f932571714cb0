"""The dashboard with models from ``$EARMARK_MODELS``: picked, explained, greyed out, refused — headless AppTest.

Tiny models with random weights are written into a temporary models folder: a Hugging Face AST folder,
an ONNX file (forward only) and a TorchScript file that outputs NaN (must be refused with a message, and
the page must keep working).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import loader_models as lm
from apptest_jobs import explain, run, settle

pytest.importorskip("transformers")
pytestmark = [pytest.mark.timeout(1200), pytest.mark.filterwarnings("ignore")]

ROOT = Path(__file__).resolve().parents[1]
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main(st.session_state.get("_test_page", "explore"))
"""


class NaNNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8000, 3)

    def forward(self, x):
        return self.fc(x) * float("nan")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("earmark-models")
    lm.hf_ast(root / "tiny-ast")
    lm.save_onnx(lm.Plain(lm.WaveNet().eval()), root / "tiny-wave.onnx", torch.randn(2, 8000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(NaNNet().eval()).save(str(root / "broken.pt"))
    lm.write_card(root / "broken.pt")
    lm.save_onnx(lm.Plain(lm.WaveNet().eval()), root / "four-labels.onnx", torch.randn(2, 8000),
                 labels=["a", "b", "c", "d"])
    lm.save_onnx(lm.Plain(lm.WaveNet().eval()), root / "rate.onnx", torch.randn(2, 8000),
                 metadata={"sample_rate": 8000})
    pickled = lm.hf_ast(root / "pickle-only")
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"never opened")
    return root


@pytest.fixture
def app(models_dir, monkeypatch):
    monkeypatch.setenv("EARMARK_MODELS", str(models_dir))
    monkeypatch.delenv("EARMARK_ALLOW_MODEL_UPLOAD", raising=False)
    at = AppTest.from_string(HARNESS, default_timeout=600)
    at.session_state["p_explainer_ig_n_steps"] = 4
    at.session_state["p_explainer_freqrise_n_masks"] = 20
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "caption", "markdown", "success")
             for e in getattr(at, kind)]
    parts += [e.value for kind in ("error", "caption") for e in getattr(at.sidebar, kind)]
    return "\n".join(map(str, parts))


def key_of(models_dir: Path, name: str) -> str:
    return str((models_dir / name).resolve())


def test_models_folder_appears_in_the_picker_and_an_hf_model_is_explained(app, models_dir):
    run(app)
    options = app.sidebar.selectbox(key="w_model").options
    assert any("tiny-ast (Hugging Face, from EARMARK_MODELS)" in o for o in options)
    assert any("tiny-wave.onnx (ONNX" in o for o in options) and any("audionet-digits" in o for o in options)
    app.sidebar.selectbox(key="w_model").set_value(key_of(models_dir, "tiny-ast"))
    run(app)
    assert "16,000 Hz" in texts(app) and "variable" in texts(app)
    explain(app)
    body = texts(app)
    assert "Explained class" in body and "yes" in body      # a label from id2label
    assert "Format:** hf" in body and "pooled hidden state" in body   # the card's facts in the model card
    app.sidebar.number_input(key="w_window").set_value(0.5)           # a window the user picks
    run(app)
    explain(app)
    assert "8,000 samples (0.5 s)" in texts(app) and "Explained class" in texts(app)
    commands = "\n".join(c.value for c in app.code)
    assert "--window 0.5" in commands and "tiny-ast" in commands
    app.session_state["_test_page"] = "evaluate"                      # faithfulness of the same map
    settle(run(app))
    assert "ranks cells by loudness" in texts(app) and not app.exception   # the scores table was drawn


def test_onnx_model_greys_out_gradient_explainers_and_runs_freqrise(app, models_dir):
    app.session_state["w_model"] = key_of(models_dir, "tiny-wave.onnx")
    run(app)
    usable = app.sidebar.selectbox(key="w_explainer").options
    assert not any("Integrated Gradients" in o for o in usable) and any("FreqRISE" in o for o in usable)
    assert "Not available for this model" in texts(app) and "needs gradients" in texts(app)
    app.sidebar.selectbox(key="w_explainer").set_value("freqrise")
    run(app)
    explain(app)
    assert "Explained class" in texts(app)


@pytest.mark.parametrize("name, words", [("broken.pt", "not finite"),
                                         ("four-labels.onnx", "returns 3 outputs per clip but the card of four-labels.onnx "
                                                              "lists 4 labels"),
                                         ("rate.onnx", "card says 16,000 Hz but the metadata"),
                                         ("pickle-only", "only pytorch_model.bin")])
def test_refused_models_are_one_message_and_the_page_keeps_working(app, models_dir, name, words):
    app.session_state["w_model"] = key_of(models_dir, name)
    run(app)
    assert words in texts(app)
    app.sidebar.selectbox(key="w_model").set_value("synth-tf")
    run(app)
    assert words not in "\n".join(e.value for e in app.sidebar.error)


def test_upload_is_off_by_default_and_on_when_the_server_allows(app, models_dir, monkeypatch, tmp_path):
    run(app)
    assert "Upload a model" not in [e.label for e in app.sidebar.expander]
    from dashboard import services as sv

    with pytest.raises(sv.EarmarkError, match="does not take model uploads"):
        sv.save_upload([("m.onnx", b"x"), ("m.json", b"{}")])
    monkeypatch.setenv("EARMARK_ALLOW_MODEL_UPLOAD", "1")
    monkeypatch.setenv("EARMARK_MODEL_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("EARMARK_MODEL_UPLOAD_MB", "0.001")
    onnx = models_dir / "tiny-wave.onnx"
    card = (models_dir / "tiny-wave.json").read_bytes()
    with pytest.raises(sv.EarmarkError, match="up to 0.001 MB"):
        sv.save_upload([(onnx.name, onnx.read_bytes()), ("tiny-wave.json", card)])
    monkeypatch.setenv("EARMARK_MODEL_UPLOAD_MB", "50")
    with pytest.raises(sv.EarmarkError, match="one model file"):
        sv.save_upload([("weights.bin", b"x"), ("tiny-wave.json", card)])
    path = sv.save_upload([(onnx.name, onnx.read_bytes()), ("tiny-wave.json", card)])
    assert path in sv.model_names() and "uploaded" in sv.model_title(path)
    run(app)
    assert "Upload a model (TorchScript or ONNX)" in [e.label for e in app.sidebar.expander]
    app.sidebar.selectbox(key="w_model").set_value(path)
    run(app)
    assert "no gradients" in texts(app)
