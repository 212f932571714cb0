"""The dashboard never shows a broken map as a success: a NaN map is refused with its message, an all-zero
IG map and a class-insensitive FreqRISE map are shown with their warnings (headless AppTest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from apptest_jobs import run, settle

pytestmark = [pytest.mark.timeout(1200), pytest.mark.filterwarnings("ignore")]

ROOT = Path(__file__).resolve().parents[1]
HARNESS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from dashboard.app import main
main(st.session_state.get("_test_page", "explore"))
"""


class NanOnZeros(torch.nn.Module):
    """Finite scores; the gradient is NaN wherever a sample is exactly zero (FSDD clips have such samples)."""

    def forward(self, x):
        r = x.abs().sqrt().mean(-1)
        return torch.stack([r, -r], -1)


class Constant(torch.nn.Module):
    def forward(self, x):
        return torch.stack([x.mean(-1) * 0 + 1.0, x.pow(2).mean(-1)], -1)


class Bands(torch.nn.Module):
    """Class 0 follows the low band, class 1 the high band: a class-sensitive model."""

    def forward(self, x):
        spec = torch.fft.rfft(x).abs() ** 2 / x.shape[-1]
        return torch.stack([spec[:, :1000].sum(-1), spec[:, 2000:].sum(-1)], -1) * 10 - 1


class Energy(torch.nn.Module):
    def forward(self, x):
        e = x.pow(2).mean(-1) * 40
        return torch.stack([2 * e - 1, e - 1], -1)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard-models")
    for name, net, extra in (("nan", NanOnZeros(), {}), ("constant", Constant(), {}),
                             ("energy", Energy(), {"activation": "sigmoid"}),
                             ("bands", Bands(), {"activation": "sigmoid"})):
        program = torch.export.export(net.eval(), (torch.randn(2, 8000),),
                                      dynamic_shapes=({0: torch.export.Dim("batch", max=8192)},))
        torch.export.save(program, root / f"{name}.pt2")
        (root / f"{name}.json").write_text(json.dumps({"sample_rate": 8000, "input_length": 8000,
                                                       "labels": ["p", "q"], **extra}))
    return root


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "caption") for e in getattr(at, kind)]
    return "\n".join(map(str, parts))


@pytest.mark.parametrize("name, explainer, settings, words", [
    ("nan", "saliency", {}, "so it is not reported"),
    ("constant", "ig", {"p_explainer_ig_n_steps": 4}, "zero everywhere"),
    ("energy", "freqrise", {"p_explainer_freqrise_n_masks": 200, "p_explainer_freqrise_estimator": "control_variate",
                            "p_explainer_freqrise_readout": "logit"}, "hardly depends on the class"),
    ("bands", "freqrise", {"p_explainer_freqrise_n_masks": 200, "p_explainer_freqrise_estimator": "control_variate",
                           "p_explainer_freqrise_readout": "logit"}, "Class sensitivity: this map correlates"),
])
def test_broken_maps_carry_their_message(models_dir, monkeypatch, name, explainer, settings, words):
    monkeypatch.setenv("EARMARK_MODELS", str(models_dir))
    at = AppTest.from_string(HARNESS, default_timeout=600)
    for key, value in settings.items():
        at.session_state[key] = value
    at.session_state["w_model"] = str((models_dir / f"{name}.pt2").resolve())
    at.session_state["w_explainer"] = explainer
    run(at)
    at.button(key="explain").click()
    settle(run(at))
    assert words in texts(at), texts(at)
