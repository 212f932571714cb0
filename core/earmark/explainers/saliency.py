"""Saliency (Simonyan et al. 2014) in any domain: ``|∂f_c(W⁻¹(z))/∂z|`` at the clip's coefficients.

For complex coefficients the map is the modulus of PyTorch's gradient ``∂f/∂Re z + i·∂f/∂Im z``: the
steepest-ascent rate of the logit per unit change of the coefficient. For the orthonormal rFFT this is
``|rfft(∇ₓf)|`` at DC and Nyquist and twice that at every other bin (changing ``z_k`` also changes its
mirror bin ``z_{L−k}``). Cell maps are pooled into map space (a sum, so mel bands add their bins).

Uncertainty: the standard deviation, per cell, of the saliency map over ``n_draws`` copies of the clip
with a small Gaussian noise added to the waveform, ``W(x + δ)``, ``δ ~ N(0, σ²)``,
``σ = noise_level·(max x − min x)``: how much the map changes under a perturbation a listener barely
hears. All draws and the clean point go through the model in one batched gradient call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..params import Param
from ..probe import Probe, ProgressFn
from .base import Attribution, ExplainerSpec, draw_std

PARAMS = (
    Param("n_draws", 8, "noisy copies used for the uncertainty map (std of the saliency over them)",
          low=2, high=256, step=1),
    Param("noise_level", 0.01, "noise std for the uncertainty draws, as a fraction of the clip's max − min",
          low=0.0, high=1.0, step=0.001),
)


def noise_std(x: Tensor, noise_level: float) -> Tensor:
    """SmoothGrad's noise scale ``σ = noise_level·(max x − min x)``.

    Args:
        x: (1, L) or (L,) waveform.
        noise_level: fraction of the clip's peak-to-peak range.

    Returns:
        () scalar tensor on ``x``'s device.
    """
    return noise_level * (x.amax() - x.amin())


def noisy_coeffs(probe: Probe, n: int, *, noise_level: float, generator: torch.Generator) -> Tensor:
    """Coefficients of ``n`` noisy copies of the clip, ``W(x + δ_k)``, ``δ_k ~ N(0, σ²)`` per sample.

    Args:
        probe: the clip, model and domain.
        n: number of draws.
        noise_level: ``σ`` as a fraction of the clip's max − min (see :func:`noise_std`).
        generator: the random generator (on the probe's device).

    Returns:
        (n, *S) coefficients on the probe's device (``analyze`` of an (n, L) batch).
    """
    x = probe.x                                                             # (1, L)
    noise = torch.randn((n, x.shape[-1]), generator=generator, device=x.device, dtype=x.dtype)
    return probe.transform.analyze(x + noise * noise_std(x, noise_level)).detach()


def gradient_maps(probe: Probe, grads: Tensor) -> Tensor:
    """(N, *S) gradients (real or complex) → (N, *M) saliency maps ``pool(|g|)``."""
    return probe.transform.pool(grads.abs())


def explain_saliency(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                     n_draws: int = 8, noise_level: float = 0.01) -> Attribution:
    """Gradient magnitude at the clip; uncertainty = its std over small input-noise draws.

    Args:
        probe: the clip, model and domain.
        generator: draws the uncertainty noise.
        progress: ``progress(fraction, stage)``.
        n_draws: noisy copies for the uncertainty map (≥ 2).
        noise_level: their noise std as a fraction of the clip's max − min.

    Returns:
        Attribution with saliency (*M) ``pool(|∂f_c/∂z|)`` at the clean clip, uncertainty (*M) the std over
        draws (unbiased), and extras ``noise_std`` () (the σ used, in waveform units).
    """
    points = torch.cat([probe.coeffs[None], noisy_coeffs(probe, n_draws, noise_level=noise_level,
                                                         generator=generator)])
    _, grads = probe.grad(points, readout="logit", progress=progress, stage="saliency")
    maps = gradient_maps(probe, grads)                                      # (1 + n_draws, *M)
    return Attribution(maps[0], draw_std(maps[1:]),
                       {"noise_std": noise_std(probe.x, noise_level).detach()})


SPEC = ExplainerSpec(
    name="saliency",
    title="Saliency (gradient magnitude)",
    contrastive=True,
    fn=explain_saliency,
    params=PARAMS,
    family="gradient",
    uncertainty=("Standard deviation of the saliency map over small input-noise draws "
                 "(σ = noise_level·(max − min)): how stable the gradient is under a barely audible perturbation."),
    reference="Simonyan, Vedaldi & Zisserman 2014, Deep inside convolutional networks",
    budget=("n_draws",),
    passes=lambda p: 2 * (1 + int(p["n_draws"])),
)
