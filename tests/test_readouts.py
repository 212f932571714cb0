"""FreqRISE's readouts: probability (the paper), logit and log-probability, named in the app with the paper's
marked (issue 29, item 2). Stability per readout on FSDD: ``docs/studies/readouts.md``."""

from __future__ import annotations

import math

import pytest
import torch

from dashboard.widgets import choice_label, start_value
from earmark.explainers import EXPLAINERS, explain
from earmark.models.base import from_module
from earmark.transforms import get_transform


class Constant(torch.nn.Module):
    """Logits (2, −1) whatever the input: every masked clip scores the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([2.0, -1.0]).expand(x.shape[0], 2) + 0 * x[:, :1]


@pytest.mark.parametrize("readout,value", [("prob", 1 / (1 + math.exp(-3))), ("logit", 2.0),
                                           ("log_prob", -math.log1p(math.exp(-3)))])
def test_each_readout_scores_the_masks_by_its_value(readout, value):
    """With a constant score s the control-variate estimate is s in every cell, exactly: the map shows the
    readout's value."""
    model = from_module(Constant(), sample_rate=8000, num_samples=1024, labels=["a", "b"])
    x = torch.randn(1024, generator=torch.Generator().manual_seed(0))
    e = explain(model, x, get_transform("stft", 8000, n_fft=128, hop=32), 0, method="freqrise", seed=0,
                n_masks=40, readout=readout, estimator="control_variate")
    assert torch.allclose(e.saliency, torch.full_like(e.saliency, value), atol=1e-5)


def test_the_app_names_the_readouts_and_marks_the_papers():
    spec = EXPLAINERS.get("freqrise")
    p = next(q for q in spec.params if q.name == "readout")
    assert set(p.choices) == {"prob", "logit", "log_prob"}
    label = choice_label(p, start_value(p, spec))
    assert start_value(p, spec) == "logit"                      # the steadier maps on FSDD
    assert [label(v) for v in ("prob", "logit", "log_prob")] == ["probability (paper)", "logit", "log-probability"]
    relax = next(q for q in EXPLAINERS.get("relax").params if q.name == "similarity")
    assert choice_label(relax, relax.default)("embedding") == "embedding similarity (paper)"
