"""Model passes (forward + backward items) of the explainers added with the Captum family, LRP and FLEXtime.

Each spec carries its entry as ``passes`` (the budget check and the progress units read it). Exact for
the gradient and optimisation methods; for the perturbation methods on the display grid the count depends on
the grid (so on the clip's length and the transform), which the spec does not carry: there the estimate is
an upper bound (features ≤ 1.5·``cells`` + 4, occlusion windows ≤ (⌈1/stride⌉ + 2) per axis, ≥ 8 rows kept).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping


def _refs(p: Mapping[str, Any]) -> int:
    return 1 if p.get("baselines") == "zero" else 3


def _features(p: Mapping[str, Any]) -> int:
    cells = int(p.get("cells", 64))
    return cells + cells // 2 + 4


def _windows(p: Mapping[str, Any]) -> int:
    per_axis = math.ceil(1 / float(p.get("stride", 0.05))) + 2
    return 1 + max(8, per_axis) * per_axis


PASSES: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "captum:DeepLift": lambda p: 6 * _refs(p),   # inputs + references with gradients, then both again for the delta
    "captum:GradientShap": lambda p: 2 * _refs(p) * int(p.get("n_samples", 50)),
    "captum:NoiseTunnel": lambda p: 2 * 2 * int(p.get("nt_samples", 25))
    * (int(p.get("n_steps", 50)) if p.get("base") == "IntegratedGradients" else 1),
    "captum:Occlusion": lambda p: _refs(p) * _windows(p),
    "captum:FeatureAblation": lambda p: _refs(p) * (1 + _features(p)),
    "captum:KernelShap": lambda p: _refs(p) * (int(p.get("n_samples", 500)) + 2),
    "captum:Lime": lambda p: _refs(p) * (int(p.get("n_samples", 500)) + 2),
    "captum:ShapleyValueSampling": lambda p: _refs(p) * (1 + int(p.get("n_samples", 25)) * (_features(p) + 1)),
    "lrp": lambda p: 3 * (2 if p.get("uncertainty", "rules") == "rules" else 1),
    "flextime": lambda p: 2 * int(p.get("steps", 1000)) * int(p.get("restarts", 3)),
}
#: Methods whose estimate is an upper bound (the grid sets the count).
UPPER_BOUNDS = frozenset({"captum:Occlusion", "captum:FeatureAblation", "captum:KernelShap", "captum:Lime",
                          "captum:ShapleyValueSampling"})
