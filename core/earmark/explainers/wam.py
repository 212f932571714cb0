"""Wavelet Attribution Method (Kasmi et al. 2025, "One wave to explain them all").

WAM explains in the wavelet domain: WAM-SG is SmoothGrad and WAM-IG is Integrated Gradients on the
DWT coefficients (the generic :mod:`smoothgrad` and :mod:`ig` run on a ``dwt`` probe), and WAM reads off
which *scales* matter: ``per_scale[j] = Σ |map|`` over the coefficients of level j, approximation first
(``extras["per_scale"]``, shape (level + 1,), ordered like :meth:`DWTTransform.axes` rows A_J, D_J … D_1).

Defaults follow the authors' audio code (``lib/wam_1D.py``): 25 draws with noise std 0.001·(max − min),
averaging the signed gradient (``mean_gradient``) before taking its magnitude; IG from the zero
baseline (50 midpoint steps, which integrate more accurately than the code's 25-point trapezoid).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ..params import Param
from ..probe import Probe, ProgressFn
from ..transforms import Transform
from . import ig, smoothgrad
from .base import Attribution, ExplainerSpec, PlotSpec


def _with_default(params: tuple[Param, ...], **defaults) -> tuple[Param, ...]:
    """``params`` with some defaults replaced (same ranges and help)."""
    return tuple(dataclasses.replace(p, default=defaults[p.name]) if p.name in defaults else p for p in params)


#: The per-scale chart, one bar per wavelet level named like the map's rows (A_J, D_J … D_1).
PER_SCALE = PlotSpec("per_scale", "bars", "Importance per wavelet scale", "Wavelet level", "Σ |saliency|",
                     x_names="rows")

SG_PARAMS = _with_default(smoothgrad.PARAMS, noise_level=0.001, mode="mean_gradient")
IG_PARAMS = ig.PARAMS


def per_scale_importance(transform: Transform, v: Tensor, *, length: int) -> Tensor:
    """Importance per wavelet level: ``Σ |v|`` over each level's coefficients.

    Args:
        transform: a DWT transform (provides ``band_sums`` over its layout).
        v: (*M) = (N,) map over all levels' coefficients.  length: the clip's length in samples.

    Returns:
        (level + 1,) non-negative sums, approximation first.
    """
    return transform.band_sums(v.abs()[None], length=length)[0]


def _add_per_scale(probe: Probe, result: Attribution) -> Attribution:
    extras = dict(result.extras)
    extras["per_scale"] = per_scale_importance(probe.transform, result.saliency, length=probe.length)
    return dataclasses.replace(result, extras=extras)


def explain_wam_sg(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                   n_samples: int = 25, noise_level: float = 0.001,
                   mode: smoothgrad.Mode = "mean_gradient") -> Attribution:
    """WAM-SG: :func:`~earmark.explainers.smoothgrad.explain_smoothgrad` on DWT coefficients, plus per-scale
    importance.

    Returns:
        Attribution with saliency (N,), uncertainty (N,) (variance over draws), extras ``per_scale``
        (level + 1,) and ``noise_std`` ().
    """
    result = smoothgrad.explain_smoothgrad(probe, generator=generator, progress=progress, n_samples=n_samples,
                                           noise_level=noise_level, mode=mode)
    return _add_per_scale(probe, result)


def explain_wam_ig(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                   **settings) -> Attribution:
    """WAM-IG: :func:`~earmark.explainers.ig.explain_ig` on DWT coefficients, plus per-scale importance.

    Args:
        settings: IG's parameters (``n_steps``, ``noise_scale``, ``blur_ms``).

    Returns:
        IG's Attribution (saliency (N,) signed, uncertainty (N,) spread over baselines, its extras) with
        ``per_scale`` (level + 1,) = Σ |IG| per level.
    """
    result = ig.explain_ig(probe, generator=generator, progress=progress, **settings)
    return _add_per_scale(probe, result)


wam_sg = ExplainerSpec(
    name="wam_sg",
    title="WAM-SG (wavelet SmoothGrad)",
    contrastive=True,
    fn=explain_wam_sg,
    params=SG_PARAMS,
    family="gradient",
    uncertainty="Variance, per wavelet coefficient, of the per-draw gradient over the noise draws.",
    reference="Kasmi et al. 2025, One wave to explain them all (WAM)",
    budget=smoothgrad.SPEC.budget,
    passes=smoothgrad.SPEC.passes,
    units=smoothgrad.SPEC.units,
    domains=("dwt",),
    default_transform="dwt",
    plots=(PER_SCALE,),
)

wam_ig = ExplainerSpec(
    name="wam_ig",
    title="WAM-IG (wavelet Integrated Gradients)",
    contrastive=True,
    fn=explain_wam_ig,
    params=IG_PARAMS,
    family="gradient",
    uncertainty="Standard deviation of the wavelet IG map over zero, noise and blurred baselines.",
    reference="Kasmi et al. 2025, One wave to explain them all (WAM); Sundararajan et al. 2017",
    domains=("dwt",),
    default_transform="dwt",
    first_look=True,
    budget=ig.BUDGET,
    passes=ig.passes,
    plots=(PER_SCALE,),
)

SPECS = (wam_sg, wam_ig)
