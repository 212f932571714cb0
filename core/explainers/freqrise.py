"""FreqRISE (Brüsch et al.): RISE with smooth random masks in a signal domain (rFFT, STFT, and any other).

Draw ``N`` smooth masks ``M_n`` (Bernoulli(keep = 1 − p) on a coarse grid of the transform's image,
bilinearly upsampled, randomly shifted; see :func:`~earmark.explainers.masks.smooth_masks`), score each
masked clip ``synthesize(z·M_n + (1 − M_n)·b)`` by the target's probability (or logit, as in the
reference code) ``s_n``, and estimate per map cell ``i``

    importance_i = Σ_n s_n M_{n,i} / (N · (1 − p))            (RISE normalisation, E[M_{n,i}] = 1 − p)

i.e. the sample mean of ``x_{n,i} = s_n M_{n,i} / (1 − p)``, an unbiased estimate of
``E[s · M_i] / E[M_i]`` — the expected score of masks that keep cell ``i`` (weighted by how much they
keep it). ``E[M] = 1 − p`` holds exactly per cell because linear interpolation and ``from_image``
average with weights summing to one.

Uncertainty: the Monte-Carlo variance of that estimate, ``Var̂_n(x_{n,i}) / N`` with the unbiased sample
variance over the masks — the squared standard error of the importance; 4× the masks gives ≈ ¼ of it.

The map is *not* min–max normalised (the reference code does that for display), so importance and
uncertainty stay on the score's scale and comparable with each other.
"""

from __future__ import annotations

import torch

from ..params import Param
from ..probe import BASELINES, BaselineKind, Probe, ProgressFn, Readout
from .base import Attribution, ExplainerSpec
from .masks import WeightedMoments, mask_chunks, smooth_masks

PARAMS = (
    Param("n_masks", 3000, "number of random masks (more = smoother map, lower variance)", low=10, high=100000, step=10),
    Param("cells", 200, "cells of the coarse random grid (≈; follows the image's aspect)", low=1, high=20000, step=1),
    Param("p", 0.5, "probability that a grid cell is dropped", low=0.0, high=0.95, step=0.05),
    Param("readout", "prob", "score of a masked clip: target probability, or target logit (reference code)",
          choices=("prob", "logit")),
    Param("baseline", "zero", "value that replaces dropped coefficients", choices=BASELINES),
)


def explain_freqrise(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                     n_masks: int = 3000, cells: int = 200, p: float = 0.5, readout: Readout = "prob",
                     baseline: BaselineKind = "zero") -> Attribution:
    """FreqRISE importance and its Monte-Carlo variance in ``probe``'s domain.

    Masks are drawn and scored in chunks whose size depends on the image shape only (so a seed gives
    the same map on every device); moments are merged chunk by chunk, never storing all masks.

    Args:
        probe: the clip, model and domain.
        generator: random source for the masks, on ``probe.device``.
        progress: ``progress(fraction, stage)``, or ``None``.
        n_masks: N.  cells: coarse grid size.  p: drop probability of a grid cell.
        readout: ``"prob"`` or ``"logit"`` of the target.  baseline: ``"zero"``, ``"mean"`` or ``"min"``.

    Returns:
        Attribution with saliency (*M) = importance, uncertainty (*M) = ``Var̂(x)/N`` ≥ 0, and extras
        ``mean_score`` (scalar mean of ``s_n``) and ``std_error`` (*M) = √uncertainty.
    """
    keep = 1.0 - p
    dtype = probe.coeffs.real.dtype
    moments = WeightedMoments(probe.map_shape, device=probe.device, dtype=dtype)
    score_sum = torch.zeros((), device=probe.device, dtype=dtype)
    draw = lambda b, shape: smooth_masks(b, shape, cells=cells, p=p, generator=generator,  # noqa: E731
                                         device=probe.device, dtype=dtype)
    for masks, chunk_progress in mask_chunks(probe, n_masks, draw, progress=progress):   # (b, *M)
        scores = probe.score(masks, baseline=baseline, readout=readout, progress=chunk_progress,
                             stage="FreqRISE: scoring masks").to(dtype)      # (b,)
        weighted = scores.view(-1, *(1,) * (masks.ndim - 1)) * masks / keep
        moments.update(weighted, torch.ones((), device=probe.device, dtype=dtype))
        score_sum = score_sum + scores.sum()
    variance = moments.spread / max(n_masks - 1, 1) / n_masks
    return Attribution(moments.mean, variance,
                       {"mean_score": score_sum / n_masks, "std_error": variance.sqrt()})


SPEC = ExplainerSpec(
    name="freqrise",
    title="FreqRISE (random smooth masks)",
    fn=explain_freqrise,
    params=PARAMS,
    family="sampling",
    uncertainty="Monte-Carlo variance of the importance estimate (squared standard error over the masks; "
                "shrinks as 1/N).",
    reference="Brüsch et al. 2024, FreqRISE: Explaining time series using frequency masking; Petsiuk et al. 2018 (RISE)",
    default_transform="fourier",
)
