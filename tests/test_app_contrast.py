"""The sidebar's "Rather than …" picker: off by default; a chosen class B reaches the settings, the job spec
(and the jobs derived from it), the explanation and the map's caption; greyed out for methods that cannot
take a contrast. Grad-CAM is listed only for a model with a convolution over a spectrogram."""

from __future__ import annotations

import pytest

from test_app import make_app, run, texts
from apptest_jobs import explain

pytestmark = pytest.mark.timeout(1800)

DIGITS = "audionet-digits"


def picker(at):
    return next(w for w in at.selectbox if w.key == "w_contrast_class")


def test_contrast_picker_sets_the_spec_the_caption_and_the_map():
    from dashboard import services as sv

    at = run(make_app(w_model=DIGITS, w_transform="stft", w_target=7))
    assert picker(at).value == -1 and not picker(at).disabled          # off by default
    assert at.session_state["current"]["settings"].contrast is None
    assert "rather than" not in texts(at)

    picker(at).set_value(1)
    run(at)
    settings = at.session_state["current"]["settings"]
    assert (settings.target, settings.contrast) == (7, 1)
    spec = sv.job_spec(settings)
    assert spec.contrast == 1 and dict(spec.options) == {"contrast": 1}
    # listening and faithfulness jobs are about the same contrastive explanation
    assert spec.derived("listening", fraction=0.1).explanation == spec
    assert "explaining class 7 rather than 1" in texts(at)
    assert "7: 7" not in picker(at).options and "1: 1" in picker(at).options   # B is another class

    explain(at)
    exp = sv.explanation(settings)
    assert exp is not None and exp.meta["contrast"] == 1 and exp.target == 7
    # the stored value survives a rerun; off again gives the plain spec
    run(at)
    assert picker(at).value == 1
    picker(at).set_value(-1)
    run(at)
    assert at.session_state["current"]["settings"].contrast is None
    assert sv.job_spec(at.session_state["current"]["settings"]).options == ()


def test_picker_is_greyed_out_for_methods_without_a_contrast():
    at = run(make_app(w_model=DIGITS, w_transform="stft", w_target=7, v_contrast_class=1, w_explainer="relax"))
    assert picker(at).disabled
    assert at.session_state["current"]["settings"].contrast is None


def test_gradcam_is_listed_only_for_a_spectrogram_cnn():
    at = run(make_app(w_model=DIGITS, w_transform="mel"))
    names = next(w for w in at.selectbox if w.key == "w_explainer").options
    assert not any("Grad-CAM" in n for n in names)
    assert "Grad-CAM" in texts(at)                                      # greyed out with its reason
    at = run(make_app(w_model="melcnn-digits", w_transform="mel"))
    names = next(w for w in at.selectbox if w.key == "w_explainer").options
    assert any("Grad-CAM" in n for n in names)
