"""A saved explanation names the Earmark version, the weights (a hash) and the chunk sizes used."""

from __future__ import annotations

import torch
from torch import nn

import earmark
from earmark.explainers import explain
from earmark.models.base import from_module, weights_fingerprint
from earmark.transforms import get_transform


def _model(seed: int):
    torch.manual_seed(seed)
    return from_module(nn.Sequential(nn.Linear(64, 3)), sample_rate=8000, num_samples=64, labels=list("abc"))


def test_json_names_version_weights_and_chunks():
    a, b = _model(0), _model(1)
    assert weights_fingerprint(a) == weights_fingerprint(_model(0)) != weights_fingerprint(b)
    exp = explain(a, torch.randn(64), get_transform("time", 8000), method="saliency")
    out = exp.to_dict()
    assert out["earmark_version"] == earmark.__version__
    assert out["model_weights_sha256"] == weights_fingerprint(a) and len(out["model_weights_sha256"]) == 16
    assert out["chunk"] == {"fwd": 64, "fwd+bwd": 64}
