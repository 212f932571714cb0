"""The oracle check for the new methods: the synthetic time–frequency model decides on two known
(time slot, octave band) cells of 16; each method must rank them on top (relevance-rank accuracy at the
task-cell level, as in ``tests/test_localisation.py``; a random map scores ≈ 0.19 on these clips).

Measured on the first 8 clips (``docs/guide/methods.md``); the suite runs the first 4 with floors below
the measured means. FLEXtime is checked on the frequency task in ``tests/test_flextime.py`` (a band oracle).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("captum")
pytest.importorskip("zennit")

from earmark.explainers import explain  # noqa: E402
from earmark.metrics.localisation import task_cell_accuracy  # noqa: E402
from test_localisation import case_data, random_maps  # noqa: E402

N = 4
#: method → (settings, floor); the measured 8-clip means are in docs/guide/methods.md
CASES = {
    "captum:DeepLift": ({}, 0.9),
    "captum:GradientShap": ({"n_samples": 10}, 0.9),
    "captum:Occlusion": ({"stride": 0.1, "baselines": "zero"}, 0.75),
    "lrp": ({"uncertainty": "none"}, 0.5),
}


@pytest.mark.parametrize("method", list(CASES))
def test_new_method_finds_the_key_cells(method):
    model, transform, wave, label, _ = case_data("tf-stft")
    settings, floor = CASES[method]
    maps = torch.stack([explain(model, wave[i], transform, target=int(label[i]), method=method, seed=i,
                                **settings).saliency for i in range(N)])
    acc = task_cell_accuracy(maps, label[:N], transform)
    rnd = task_cell_accuracy(random_maps("tf-stft", 1)[:N], label[:N], transform)
    assert float(acc.mean()) >= floor, (method, acc.tolist())
    assert float(acc.mean()) - float(rnd.mean()) >= 0.3
