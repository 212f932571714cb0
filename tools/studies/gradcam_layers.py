"""Which activation Grad-CAM weights on melcnn-digits: the last Conv2d's output (Earmark's choice, as Captum's
examples), its batch norm, its ReLU, or the block's max-pool; mean I / D on the first N FSDD test clips (mel).

Usage (FSDD in ``$EARMARK_DATA``):  python tools/studies/gradcam_layers.py [N]
"""

import os
import sys

from torch import nn

import earmark.explainers.gradcam as G
from earmark.data.datasets import open_dataset
from earmark.explainers import explain
from earmark.metrics import MetricContext, compute_metrics
from earmark.models import load_model
from earmark.probe import Probe
from earmark.transforms import get_transform

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
model = load_model("melcnn-digits", "cpu")
clips = open_dataset(data=os.environ["EARMARK_DATA"], card=model.card, split="test", n=n, seed=0)
mel = get_transform("mel", 8000)
found = G.conv_layers
last = {kind.__name__: [m for m in model.features if isinstance(m, kind)][-1]
        for kind in (nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)}
names = {id(m): k for k, m in model.named_modules()}
for label, pick in [("Conv2d (default)", None)] + list(last.items()):
    def chosen(net, x, pick=pick):
        layers, shape = found(net, x)
        return ([dict(net.named_modules())[names[id(pick)]]] if pick is not None else layers), shape

    G.conv_layers = chosen
    scores = []
    for _, x, target, *_ in clips:
        e = explain(model, x, mel, target=int(target), method="captum:LayerGradCam", seed=0)
        scores.append(compute_metrics(["I", "D"], MetricContext(Probe(model, mel, x, target=int(target)), e.saliency,
                                                                 seed=0)))
    print(f"{label:18s} I {sum(s['I'] for s in scores) / n:.3f}  D {sum(s['D'] for s in scores) / n:.3f}", flush=True)
G.conv_layers = found
