"""FreqRISE (Brüsch et al.): RISE with smooth random masks in a signal domain (rFFT, STFT, and any other).

Draw ``N`` smooth masks ``M_n`` (Bernoulli(keep = 1 − p) on a coarse grid of the transform's image,
bilinearly upsampled, randomly shifted; see :func:`~earmark.explainers.masks.smooth_masks`), score each
masked clip ``synthesize(z·M_n + (1 − M_n)·b)`` by the target's probability (the paper; or its logit, as in
the reference code, or its log-probability) ``s_n``, and estimate per map cell ``i``

    importance_i = Σ_n s_n M_{n,i} / (N · (1 − p))            (RISE normalisation, E[M_{n,i}] = 1 − p)

i.e. the sample mean of ``x_{n,i} = s_n M_{n,i} / (1 − p)``, an unbiased estimate of
``E[s · M_i] / E[M_i]`` — the expected score of masks that keep cell ``i`` (weighted by how much they
keep it). ``E[M] = 1 − p`` holds exactly per cell because linear interpolation and ``from_image``
average with weights summing to one.

Fewer masks for the same map (options; the paper's estimator is the default): ``sampler="antithetic"``
draws masks in pairs ``M, 1 − M``; ``sampler="sobol"`` takes the grid cells from a scrambled Sobol
sequence; ``estimator="control_variate"`` uses the mask mean, whose expectation ``1 − p`` is known, as a
control variate: ``x_{n,i} = s_n + (s_n − c)(M_{n,i} − (1 − p)) / (1 − p)`` with ``c`` the mean score of
the earlier chunks. Its expectation is the same ``E[s·M_i] / (1 − p)`` (``c`` does not depend on the
chunk's masks), but the large term ``ŝ·(M − E M)`` that RISE's plain sum carries is gone.

Uncertainty: the Monte-Carlo variance of that estimate, ``Var̂_n(x_{n,i}) / N`` with the unbiased sample
variance over the masks — the squared standard error of the importance; 4× the masks gives ≈ ¼ of it.

The map is *not* min–max normalised (the reference code does that for display), so importance and
uncertainty stay on the score's scale and comparable with each other.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from ..params import Param
from ..guards import contrast_class
from ..probe import BASELINES, READOUT_NAMES, BaselineKind, Probe, ProgressFn, Readout
from .anytime import STABLE_TOP10, PartialFn, SamplingMonitor, SplitHalves, Stop, stability_param, stop_param
from .base import Attribution, ExplainerSpec
from .masks import (INERT_CHOICES, INERT_HELP, SAMPLERS, CellDraws, Inert, RunningMean, Sampler, WeightedMoments,
                    inert_cells, mask_chunks, smooth_masks, without_inert)

Estimator = Literal["plain", "control_variate"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)

PARAMS = (
    Param("n_masks", 3000, "number of random masks (more = smoother map, lower variance)", low=10, high=100000, step=10),
    Param("cells", 200, "cells of the coarse random grid (≈; follows the image's aspect)", low=1, high=20000, step=1),
    Param("p", 0.5, "probability that a grid cell is dropped", low=0.0, high=0.95, step=0.05),
    Param("readout", "prob", "score of a masked clip: the target's probability (the paper), its logit (the "
          "reference code) or its log-probability; the last two stay informative when the model is confident",
          choices=("prob", "logit", "log_prob"), labels=READOUT_NAMES),
    Param("baseline", "zero", "value that replaces dropped coefficients", choices=BASELINES),
    Param("sampler", "bernoulli", "where the masks' cells come from: independent Bernoulli draws (the paper), "
          "antithetic pairs (M, 1 − M) or a scrambled Sobol sequence", choices=SAMPLERS),
    Param("estimator", "plain", "plain: RISE's Σ s·M / (N·keep) (the paper); control_variate: the same expected "
          "map with the mask mean as control variate, lower variance", choices=ESTIMATORS),
    stop_param("masks"),
    stability_param(),
    Param("inert", "none", INERT_HELP, choices=INERT_CHOICES),
)


def explain_freqrise(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                     n_masks: int = 3000, cells: int = 200, p: float = 0.5, readout: Readout = "prob",
                     baseline: BaselineKind = "zero", sampler: Sampler = "bernoulli", estimator: Estimator = "plain",
                     stop: Stop = "budget", on_partial: PartialFn | None = None, inert: Inert = "none",
                     stop_at_stability: float = 0.0) -> Attribution:
    """FreqRISE importance and its Monte-Carlo variance in ``probe``'s domain.

    Masks are drawn and scored in chunks whose size depends on the image shape only (so a seed gives
    the same map on every device); moments are merged chunk by chunk, never storing all masks.

    Args:
        probe: the clip, model and domain.
        generator: random source for the masks, on ``probe.device``.
        progress: ``progress(fraction, stage)``, or ``None``.
        n_masks: N.  cells: coarse grid size.  p: drop probability of a grid cell.
        readout: ``"prob"`` (the paper), ``"logit"`` or ``"log_prob"`` of the target.
        baseline: ``"zero"``, ``"mean"`` or ``"min"``.
        sampler: ``"bernoulli"`` (the paper), ``"antithetic"`` or ``"sobol"`` (:class:`~earmark.explainers.masks.CellDraws`).
        estimator: ``"plain"`` (the paper) or ``"control_variate"`` (see the module docstring).
        stop: ``"budget"`` (all N masks) or ``"auto"`` (see :mod:`earmark.explainers.anytime`).
        stop_at_stability: end at a chunk end where the split-half top-10 % overlap reaches it (0 = off);
            the result's ``stability_top10`` is the figure the rule read.
        on_partial: ``on_partial(saliency, done, total, convergence)`` after every chunk but the last.

    Returns:
        Attribution with saliency (*M) = importance, uncertainty (*M) = ``Var̂(x)/N`` ≥ 0 (N = the masks
        used), and extras ``mean_score`` (scalar mean of ``s_n``), ``std_error`` (*M) = √uncertainty,
        ``budget_used`` / ``budget_total`` (masks), ``convergence``, and the split-half stability
        ``stability_spearman`` / ``stability_top10`` (:class:`~earmark.explainers.anytime.SplitHalves`).
    """
    keep = 1.0 - p
    dtype = probe.coeffs.real.dtype
    moments = WeightedMoments(probe.map_shape, device=probe.device, dtype=dtype)
    halves = SplitHalves(probe.map_shape, device=probe.device, dtype=dtype)
    score_sum = torch.zeros((), device=probe.device, dtype=dtype)
    draws = CellDraws(sampler, generator=generator, device=probe.device)
    draw = lambda b, shape: smooth_masks(b, shape, cells=cells, p=p, generator=generator,  # noqa: E731
                                         device=probe.device, dtype=dtype, draws=draws)
    dead = inert_cells(probe, baseline)
    monitor = SamplingMonitor(n_masks, stop=stop, on_partial=on_partial,
                              present=lambda s: without_inert(s, s, dead, {}, inert)[0],
                              halves=halves, live=~dead, stop_at_stability=stop_at_stability)
    done = 0
    # class sensitivity for free: the same masks scored for a second class (guards.contrast_class)
    other = contrast_class(probe.probs, probe.target)
    contrast = RunningMean(probe.map_shape, device=probe.device, dtype=dtype) if other is not None else None
    other_sum = torch.zeros((), device=probe.device, dtype=dtype)

    def affine(scores: Tensor, total: Tensor) -> tuple[Tensor | None, Tensor]:
        """Each draw's estimate is ``a + b·M``: plain ``a = 0, b = s/keep``; control variate ``a = c,
        b = (s − c)/keep``, since ``s + (s − c)(M − keep)/keep = c + (s − c)·M/keep``. Here c is the mean
        score of the earlier chunks (independent of this chunk's masks), the chunk's own mean for the
        first one, so E[a + b·M] = E[s·M]/keep, the plain map's expectation. ``a = None`` for 0."""
        if estimator == "control_variate":
            c = total / done if done else scores.mean()
            return c, (scores - c) / keep
        return None, scores / keep

    def estimate(scores: Tensor, masks: Tensor, total: Tensor) -> Tensor:
        """The chunk's draws (b, *M): one pass over the masks (the per-draw factors are formed first)."""
        a, b = affine(scores, total)
        b = b.view(-1, *(1,) * (masks.ndim - 1))
        return masks * b if a is None else torch.addcmul(a, masks, b)

    def affine_sum(scores: Tensor, masks: Tensor, total: Tensor) -> Tensor:
        """Σ over the chunk of :func:`estimate` without forming it: ``Σa + b @ M``."""
        a, b = affine(scores, total)
        summed = (b[None] @ masks.reshape(masks.shape[0], -1)).reshape(masks.shape[1:])
        return summed if a is None else summed + a * masks.shape[0]

    one = torch.ones((), device=probe.device, dtype=dtype)
    for masks, chunk_progress in mask_chunks(probe, n_masks, draw, progress=progress):   # (b, *M)
        logits = probe.score(masks, baseline=baseline, readout="logits", progress=chunk_progress,
                             stage="FreqRISE: scoring masks")                 # (b, C)
        scores = probe.class_score(logits, readout).to(dtype)                 # (b,), minus a contrast class's
        x = estimate(scores, masks, score_sum)
        halves.update(x, one)
        moments.update(x, one, consume=True)                                  # x is not read after this
        if contrast is not None:
            others = probe.class_score(logits, readout, other).to(dtype)
            contrast.add(affine_sum(others, masks, other_sum), masks.shape[0])   # its mean is all that is read
            other_sum = other_sum + others.sum()
        score_sum = score_sum + scores.sum()
        done += masks.shape[0]
        if monitor.update(done, lambda: moments.mean,
                          lambda: (moments.spread / max(done - 1, 1) / done).sqrt()):
            break
    variance = moments.spread / max(done - 1, 1) / done
    extras = {"mean_score": score_sum / done, "std_error": variance.sqrt(), **monitor.extras(probe.device)}
    if contrast is not None:   # read and removed by explain(): meta["class_sensitivity"]
        extras.update(contrast_saliency=contrast.mean, contrast_class=torch.tensor(other))
    return Attribution(*without_inert(moments.mean, variance, dead, extras, inert))


SPEC = ExplainerSpec(
    name="freqrise",
    title="FreqRISE (random smooth masks)",
    contrastive=True,
    fn=explain_freqrise,
    params=PARAMS,
    family="sampling",
    uncertainty="Monte-Carlo variance of the importance estimate (squared standard error over the masks; "
                "shrinks as 1/N).",
    reference="Brüsch et al. 2024, FreqRISE: Explaining time series using frequency masking; Petsiuk et al. 2018 (RISE)",
    default_transform="fourier",
    colour_reference="mean",
    baseline_extra="mean_score",
    anytime=True,
    budget=("n_masks",),
    units=("n_masks", "masks"),
    # readout: the logit's maps are the steadier on FSDD at the app's setting (docs/studies/readouts.md)
    app_defaults=(("stop", "auto"), ("sampler", "sobol"), ("estimator", "control_variate"), ("readout", "logit"),
                  ("stop_at_stability", STABLE_TOP10)),
)
