"""SmoothGrad (Smilkov et al. 2017) in any domain: gradients averaged over noisy copies ``W(x + δ)``.

``δ ~ N(0, σ²)`` per waveform sample with ``σ = noise_level·(max x − min x)`` (the paper's 10 %), n = 25
draws, all through the model in one batched gradient call. What is averaged is chosen by ``mode``:

* ``magnitude`` (default): ``mean_k |g_k|`` — Captum's ``NoiseTunnel(Saliency)``; equals
  :mod:`saliency` as σ → 0, and ``|w|`` on a linear model for any σ. Robust where gradients flip sign
  between draws, and well defined for complex coefficients.
* ``mean_gradient``: ``|mean_k g_k|`` — the paper's literal average of the gradient (and WAM-SG's),
  shown as a magnitude; opposite-signed draws cancel.
* ``grad_x_input``: ``mean_k Re(conj(z_k)·g_k)`` — SmoothGrad of gradient × input at each noisy point
  ``z_k``; signed (positive cells raise the logit).

Uncertainty: the variance over the noise draws, per cell, of the per-draw maps (unbiased). For
``mean_gradient`` the per-draw quantity is the gradient itself, so the variance is ``pool(Σ_k |g_k − ḡ|² /
(n − 1))`` (real and imaginary parts together for complex coefficients).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from ..params import Param
from ..probe import Probe, ProgressFn, attribution_from_grad
from .base import Attribution, ExplainerSpec, draw_variance
from .saliency import noise_std, noisy_coeffs

Mode = Literal["magnitude", "mean_gradient", "grad_x_input"]
MODES: tuple[str, ...] = get_args(Mode)

PARAMS = (
    Param("n_samples", 25, "noisy copies averaged (the paper's n)", low=2, high=500, step=1),
    Param("noise_level", 0.1, "noise std as a fraction of the clip's max − min (the paper's σ/(max−min))",
          low=0.0, high=1.0, step=0.001),
    Param("mode", "magnitude", "average |gradient|, the gradient (then |·|), or gradient × input",
          choices=MODES),
)


def smoothed_maps(probe: Probe, points: Tensor, grads: Tensor, *, mode: Mode) -> tuple[Tensor, Tensor]:
    """Mean and per-cell variance over draws of the per-draw maps.

    Args:
        probe: supplies the transform's ``pool`` (coefficient space → map space).
        points: (n, *S) noisy coefficients ``z_k`` (used by ``grad_x_input``).
        grads: (n, *S) gradients ``g_k`` at those points (complex for complex domains).
        mode: one of :data:`MODES`.

    Returns:
        saliency (*M) and variance (*M), both real; the variance is unbiased (needs n ≥ 2).
    """
    pool = probe.transform.pool
    if mode == "mean_gradient":
        mean = grads.mean(0)
        spread = (grads - mean).abs().pow(2).sum(0) / max(grads.shape[0] - 1, 1)
        return pool(mean.abs()[None])[0], pool(spread[None])[0]
    if mode == "magnitude":
        per_draw = pool(grads.abs())
    elif mode == "grad_x_input":
        per_draw = pool(attribution_from_grad(points, grads))
    else:
        raise ValueError(f"unknown SmoothGrad mode {mode!r}; use one of {MODES}")
    return per_draw.mean(0), draw_variance(per_draw)


def explain_smoothgrad(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                       n_samples: int = 25, noise_level: float = 0.1, mode: Mode = "magnitude") -> Attribution:
    """SmoothGrad map and its variance over the noise draws, in the probe's domain.

    Args:
        probe: the clip, model and domain.
        generator: draws the noise (on the probe's device).
        progress: ``progress(fraction, stage)``.
        n_samples: number of noisy copies (≥ 2 so the variance is defined).
        noise_level: ``σ / (max x − min x)``; 0 gives the plain gradient.
        mode: ``magnitude`` | ``mean_gradient`` | ``grad_x_input`` (see the module docstring).

    Returns:
        Attribution with saliency (*M), uncertainty (*M) = variance over draws, extras ``noise_std`` ().
    """
    points = noisy_coeffs(probe, n_samples, noise_level=noise_level, generator=generator)   # (n, *S)
    _, grads = probe.grad(points, readout="logit", progress=progress, stage="smoothgrad")
    saliency, variance = smoothed_maps(probe, points, grads, mode=mode)
    return Attribution(saliency, variance.clamp_min(0), {"noise_std": noise_std(probe.x, noise_level).detach()})


SPEC = ExplainerSpec(
    name="smoothgrad",
    title="SmoothGrad",
    contrastive=True,
    fn=explain_smoothgrad,
    params=PARAMS,
    family="gradient",
    uncertainty="Variance, per cell, of the per-draw gradient maps over the noise draws (how much the noise moves the map).",
    reference="Smilkov et al. 2017, SmoothGrad: removing noise by adding noise",
    budget=("n_samples",),
    passes=lambda p: 2 * int(p["n_samples"]),
    units=("n_samples", "noisy copies"),
)
