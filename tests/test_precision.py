"""Reduced-precision scoring: an option measured against float32, never a silent default."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from earmark.bench import run_bench
from earmark.errors import ConfigError
from earmark.explainers import explain
from earmark.metrics.randomisation import spearman
from earmark.models.base import from_module
from earmark.precision import MIN_SPEARMAN, precision_rows, top10_overlap
from earmark.probe import Probe
from earmark.transforms import get_transform

L = 512


def band_model():
    """Logit of class 1 = energy of a band of the spectrum (a known answer for where the map must look)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(L, 32), nn.Tanh(), nn.Linear(32, 2))
    return from_module(net, sample_rate=8000, num_samples=L, labels=["a", "b"])


def test_float32_is_the_default_and_reduced_scoring_answers_in_float32():
    model, x = band_model(), torch.randn(L, generator=torch.Generator().manual_seed(1))
    probe = Probe(model, get_transform("fourier", 8000), x)
    assert probe.precision == "float32"
    reduced = Probe(model, get_transform("fourier", 8000), x, precision="bfloat16")
    masks = torch.rand(16, *reduced.map_shape, generator=torch.Generator().manual_seed(2))
    full, half = probe.score(masks, readout="logit"), reduced.score(masks, readout="logit")
    assert half.dtype == torch.float32 and not torch.equal(full, half)            # it really ran in 16 bits
    assert torch.allclose(full, half, atol=0.05 * float(full.abs().max()) + 1e-3)  # and stayed close


def test_reduced_precision_freqrise_map_agrees_with_float32_and_is_recorded():
    model, x = band_model(), torch.randn(L, generator=torch.Generator().manual_seed(3))
    t = get_transform("fourier", 8000)
    full = explain(model, x, t, None, method="freqrise", seed=0, n_masks=400)
    half = explain(model, x, t, None, method="freqrise", seed=0, n_masks=400, precision="bfloat16")
    assert full.meta["precision"] == "float32" and half.meta["precision"] == "bfloat16"
    assert spearman(half.saliency, full.saliency) >= MIN_SPEARMAN
    assert top10_overlap(half.saliency, full.saliency) >= 0.9
    with pytest.raises(ConfigError, match="Unknown precision 'int8'"):
        explain(model, x, t, None, method="freqrise", precision="int8")


def test_bench_precision_rows_cover_the_sampling_methods_only(tmp_path):
    model = band_model()
    rows = precision_rows(model, torch.randn(L), explainers=["ig", "freqrise"], transforms=["fourier"],
                          precision="bfloat16", settings={"freqrise": {"n_masks": 64}}, repeats=1)
    assert [(r.explainer, r.transform, r.precision) for r in rows] == [("freqrise", "fourier", "bfloat16")]
    assert rows[0].float32_s > 0 and rows[0].reduced_s > 0 and -1 <= rows[0].spearman <= 1
    report = run_bench(model, torch.randn(L), explainers=["freqrise"], transforms=["fourier"], out=tmp_path,
                       quick=True, precision="bfloat16")
    assert "## Reduced-precision scoring" in report.markdown
    assert json.loads((tmp_path / "bench.json").read_text())["meta"]["precision"][0]["precision"] == "bfloat16"
