"""The bundled Hugging Face model ``ast-digits``: the folder, the loader path, its accuracy, the app.

The folder in ``assets/models/ast-digits`` is what ``earmark train ast`` wrote; these tests check that it
is a plain Hugging Face folder (safetensors, labels, a 16 kHz AST extractor), that Earmark's loader gives
the same logits as ``transformers``' own extractor + network, that the accuracy on the bundled espeak-ng
digits is the one recorded, and that the app explains it at 16 kHz end to end.
"""

from __future__ import annotations

import json
import json as _json

import pytest
import torch

from earmark.models import ast_digits, load_model

FOLDER = ast_digits.folder()
pytestmark = pytest.mark.skipif(not (FOLDER / "model.safetensors").is_file(),
                                reason="ast-digits weights not trained (earmark train ast)")


def test_folder_is_a_small_hugging_face_audio_classifier():
    config = json.loads((FOLDER / "config.json").read_text())
    pre = json.loads((FOLDER / "preprocessor_config.json").read_text())
    assert config["model_type"] == "audio-spectrogram-transformer"
    assert [config["id2label"][str(i)] for i in range(10)] == [str(i) for i in range(10)]
    assert pre["feature_extractor_type"] == "ASTFeatureExtractor" and pre["sampling_rate"] == 16000
    assert (FOLDER / "model.safetensors").stat().st_size < 20e6
    assert not list(FOLDER.glob("*.bin")) and not list(FOLDER.glob("*.wav"))   # no pickles, no FSDD files
    card = (FOLDER / "README.md").read_text()
    assert "CC BY-SA 4.0" in card and "Free Spoken Digit Dataset" in card and "earmark train ast" in card


def test_loader_matches_transformers_and_the_recorded_accuracy():
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    from earmark.training.ast import espeak_digit_clips, fbank_features

    model = load_model("ast-digits", "cpu")
    card = model.card
    assert (card.sample_rate, card.num_samples, card.format) == (16000, 16000, "hf")
    assert card.labels == tuple(str(i) for i in range(10)) and "CC BY-SA" in card.licence
    names, waves, labels = espeak_digit_clips()
    with torch.no_grad():
        ours = model(waves)
        net = ASTForAudioClassification.from_pretrained(FOLDER).eval()
        ref = net(input_values=fbank_features(ASTFeatureExtractor.from_pretrained(FOLDER), waves)).logits
    assert float((ours - ref).abs().max()) < 1e-4
    recorded = json.loads((FOLDER / "training.json").read_text())["espeak_digits"]
    assert int((ours.argmax(-1) == labels).sum()) == recorded["correct"]


def test_app_explains_ast_digits_at_16_khz():
    from test_app import explain, make_app, run

    at = run(make_app(w_model="ast-digits", w_transform="stft", w_explainer="ig"))
    assert any(str(o).startswith("ast-digits") for o in at.selectbox(key="w_model").options)
    assert not at.error, [e.value for e in at.error]
    explain(at)
    assert not at.exception
    heats = [t for c in at.get("plotly_chart") for t in _json.loads(c.proto.spec)["data"]
             if t.get("type") == "heatmap"]
    assert heats, "no saliency heatmap drawn"
    ys = [_array(t["y"]) for t in heats]
    assert any(len(y) == 129 and y.max() == pytest.approx(8000.0) for y in ys), [len(y) for y in ys]
    # 129 rows: the 256-point STFT at 16 kHz, 0 .. 8000 Hz (at 8 kHz the top row would be 4000 Hz)


def _array(v):
    """A Plotly array from a figure's JSON: a list, or a typed array ``{"dtype", "bdata"}`` (base64)."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)
