"""Cross-domain Integrated Gradients (Kechris et al. 2025).

``IG_i = Re(conj(z_i − z0_i) · mean_α g_i(z0 + α(z − z0)))`` with ``g`` the gradient of the class logit
with respect to the coefficients (PyTorch's conjugate convention for complex ones), so completeness
``Σ_i IG_i ≈ f_c(x) − f_c(x0)`` holds in every domain. The map is pooled into map space (a sum, so
completeness holds there too).

Uncertainty: the standard deviation, per cell, of the attributions obtained from three baselines
(zero, Gaussian noise, and the blurred clip): how much the map depends on the choice of reference.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from ..params import Param
from ..probe import Probe, ProgressFn, Readout, attribution_from_grad, sub_progress
from .base import Attribution, ExplainerSpec, FirstLook, PlotSpec, draw_std

#: The references integrated from: all three (their spread is the uncertainty) or the zero baseline only.
Baselines = Literal["zero+noise+blur", "zero"]

PARAMS = (
    Param("n_steps", 50, "points on the straight path from baseline to input", low=4, high=512, step=1),
    Param("noise_scale", 0.1, "std of the noise baseline, relative to the clip's RMS", low=0.0, high=2.0, step=0.01),
    Param("blur_ms", 4.0, "std of the Gaussian blur of the blurred baseline, in ms", low=0.1, high=50.0, step=0.1),
    Param("spacing", "cubic", "where the path points sit: 'uniform' (the midpoint rule, the paper) or 'cubic' "
          "(ours: α = u³, the same integral with points crowded towards the baseline, so a model whose output "
          "changes right next to it, e.g. one that normalises the input level, is integrated accurately)",
          choices=("cubic", "uniform")),
    Param("baselines", "zero+noise+blur", "references integrated from: all three (their spread is the uncertainty) "
          "or the zero baseline only (a third of the cost, no uncertainty)", choices=get_args(Baselines)),
)
#: The declared parameters that set IG's cost.
BUDGET = ("n_steps", "baselines")


def passes(p) -> int:
    """Model passes of a run: the zero path (n points + f(x) + f(x0)), then, with all three baselines, noise
    and blur together (2n + f(x) + 2 baselines); each item forward and backward."""
    n = int(p["n_steps"])
    items = n + 2 if p["baselines"] == "zero" else 3 * n + 5
    return 2 * items


def path_alphas(n_steps: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Midpoint rule on [0, 1]: (n_steps,) α values whose mean integrates a smooth path to O(1/n²)."""
    return (torch.arange(n_steps, device=device, dtype=dtype) + 0.5) / n_steps


def path_points(n_steps: int, spacing: str = "uniform", *, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """(n_steps,) α values on [0, 1] and their quadrature weights (summing to 1).

    ``"uniform"``: the midpoint rule, weights 1/n (the paper). ``"cubic"``: the same integral after the
    change of variables α = u³, midpoint rule in u: ``α_k = u_k³``, weights ``3u_k²/n``. Points crowd
    towards the baseline (α from 1.0e-6 up, spacing ≈ 3/n near 1), so a model whose output changes at
    α ≪ 1/n — one that normalises the input level, whose logit moves before the midpoint rule's first
    step — is integrated as accurately as a smooth one (still O(1/n²) for smooth paths).
    """
    u = path_alphas(n_steps, device=device, dtype=torch.float64)
    if spacing == "uniform":
        return u.to(dtype), torch.full_like(u, 1.0 / n_steps).to(dtype)
    return (u ** 3).to(dtype), (3 * u ** 2 / n_steps).to(dtype)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """(B, L) → (B, L) waveform smoothed by a Gaussian of std ``sigma`` samples (reflect padding)."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    pad = min(radius, x.shape[-1] - 1)
    padded = torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect") if pad > 0 else x[:, None]
    if pad < radius:
        padded = torch.nn.functional.pad(padded, (radius - pad, radius - pad))
    return torch.nn.functional.conv1d(padded, kernel)[:, 0]


def reference_waves(x: Tensor, *, generator: torch.Generator, noise_scale: float, blur_samples: float) -> Tensor:
    """(3, L) baselines in the time domain: zeros, Gaussian noise, blurred clip."""
    rms = x.pow(2).mean().sqrt()
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * noise_scale * rms
    return torch.cat([torch.zeros_like(x), noise, gaussian_blur(x, blur_samples)])


def integrated_gradients(probe: Probe, baselines: Tensor, *, n_steps: int, progress: ProgressFn | None = None,
                         readout: Readout = "logit", spacing: str = "uniform") -> tuple[Tensor, Tensor, Tensor]:
    """IG in coefficient space for several baselines at once, all their path points in one batched pass.

    Args:
        probe: the clip, model and domain.
        baselines: (K, *S) baseline coefficients.
        n_steps: path points per baseline.  spacing: see :func:`path_points`.

    Returns:
        attributions (K, *S) real, the completeness gaps (K,) ``Σ IG − (f(x) − f(x0))`` and the output
        changes (K,) ``f(x) − f(x0)`` the gaps are measured against.
    """
    z = probe.coeffs
    k = baselines.shape[0]
    alphas, weights = path_points(n_steps, spacing, device=z.device, dtype=z.real.dtype)
    delta = z[None] - baselines                                             # (K, *S)
    shape = (1, n_steps) + (1,) * z.ndim
    points = baselines[:, None] + alphas.view(shape) * delta[:, None]      # (K, n, *S)
    ends = torch.cat([z[None], baselines])                                 # f(x), f(x0_k)
    values, grads = probe.grad(torch.cat([points.flatten(0, 1), ends]), readout=readout, progress=progress,
                               stage="integrated gradients")
    path_grads = grads[: k * n_steps].unflatten(0, (k, n_steps))
    mean_grad = (path_grads * weights.to(path_grads.dtype).view((1, n_steps) + (1,) * z.ndim)).sum(1)
    attributions = attribution_from_grad(delta, mean_grad)
    f_x, f_base = values[k * n_steps], values[k * n_steps + 1:]
    gaps = attributions.flatten(1).sum(1) - (f_x - f_base)
    return attributions, gaps, f_x - f_base


def explain_ig(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None, n_steps: int = 50,
               noise_scale: float = 0.1, blur_ms: float = 4.0, spacing: str = "cubic",
               baselines: Baselines = "zero+noise+blur", first_look: FirstLook | None = None) -> Attribution:
    """Integrated gradients from the zero baseline; uncertainty = spread over zero/noise/blur baselines.

    The zero path is integrated first, so its map (the saliency) can be handed to ``first_look`` while the
    other two paths run; with ``baselines="zero"`` they are skipped: the same saliency for a third of the
    passes, and an all-zero uncertainty map (there is no spread to measure).

    Returns:
        Attribution with saliency (*M) (signed: positive cells raise the class logit), uncertainty (*M),
        extras ``completeness_gap`` (K,), ``output_change`` (K,) ``f(x) − f(x0)`` and ``baseline_maps``
        (K, *M), K = 3 or 1. :func:`earmark.explanation.completeness` turns the first two into the report
        (and warning) that the CLI and the app show.
    """
    refs = reference_waves(probe.x, generator=generator, noise_scale=noise_scale,
                           blur_samples=blur_ms * 1e-3 * probe.transform.sample_rate)
    coeffs = probe.transform.analyze(refs)
    zero_only = baselines == "zero"
    share = 1.0 if zero_only else 1 / 3
    attr0, gap0, change0 = integrated_gradients(probe, coeffs[:1], n_steps=n_steps, spacing=spacing,
                                                progress=sub_progress(progress, 0.0, share))
    map0 = probe.transform.pool(attr0)                                      # (1, *M)
    if zero_only:
        return Attribution(map0[0], torch.zeros_like(map0[0]),
                           {"completeness_gap": gap0, "output_change": change0, "baseline_maps": map0})
    if first_look is not None:
        first_look(map0[0].detach())
    attr, gaps, changes = integrated_gradients(probe, coeffs[1:], n_steps=n_steps, spacing=spacing,
                                                 progress=sub_progress(progress, share, 1.0))
    maps = torch.cat([map0, probe.transform.pool(attr)])                    # (3, *M)
    spread = draw_std(maps, correction=0)
    return Attribution(maps[0], spread, {"completeness_gap": torch.cat([gap0, gaps]),
                                         "output_change": torch.cat([change0, changes]), "baseline_maps": maps})


SPEC = ExplainerSpec(
    name="ig",
    title="Integrated Gradients (cross-domain)",
    contrastive=True,
    fn=explain_ig,
    params=PARAMS,
    family="gradient",
    uncertainty="Standard deviation of the IG map over zero, noise and blurred baselines (dependence on the reference).",
    reference="Kechris et al. 2025, cross-domain integrated gradients; Sundararajan et al. 2017",
    first_look=True,
    plots=(PlotSpec("completeness_gap", "bars", "Completeness gap per baseline",
                    "Baseline", "Σ map − (f(x) − f(baseline))", x_names=("zero", "noise", "blur")),),
    budget=BUDGET,
    passes=passes,
)
