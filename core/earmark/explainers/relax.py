"""RELAX (Wickstrøm et al.) and its spectrogram variants: importance and uncertainty from representations.

Draw ``N`` masks ``M_n`` (strategy: unstructured smooth masks as in RELAX, or the spectrogram study's
time stripes, frequency stripes or time–frequency patches; see :func:`~earmark.explainers.masks.strategy_masks`),
replace the masked coefficients by a value ``b`` (zero, the clip's mean or its minimum), and score each
masked clip by the cosine similarity ``s_n`` between the model's embedding of the masked and the clean
clip (or, optionally, between their class-probability vectors). Per map cell ``i``

    R_i = Σ_n s_n M_{n,i} / Σ_n M_{n,i}                 (= mean_n(s_n M_n) / mean_n(M_n))
    U_i = Σ_n (s_n − R_i)² M_{n,i} / Σ_n M_{n,i}

— the mask-weighted mean and variance of the similarity over the masks that keep cell ``i``: how much
of the representation survives when the cell is kept, and how much that varies with the rest of the
mask. The reference code accumulates ``U`` with West's weighted update but leaves out the final
division by ``Σ M``; we divide, so ``U`` is a variance on the scale of ``s`` (with ``Σ M ≈ N/2`` for
every cell the two differ by an almost constant factor). Both are computed chunk by chunk with a
stable pairwise merge, so the masks are never all stored. U-RELAX keeps ``R`` only where ``U`` is at
most its median (``extras["u_relax"]``). A cell no mask ever kept (``Σ M = 0``, practically
impossible with hundreds of masks) gets ``R = U = 0``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

from ..params import Param
from ..probe import BASELINES, BaselineKind, Probe, ProgressFn
from .anytime import STABLE_TOP10, PartialFn, SamplingMonitor, SplitHalves, Stop, stability_param, stop_param
from .base import Attribution, ExplainerSpec
from .masks import (INERT_CHOICES, INERT_HELP, SAMPLERS, STRATEGIES, CellDraws, Inert, Sampler, Strategy,
                    WeightedMoments, inert_cells, mask_chunks, strategy_masks, without_inert)

#: What is compared between the masked and the clean clip: the model's embedding or all class
#: probabilities (the same words as :data:`earmark.probe.Output`).
Similarity = Literal["embedding", "probs"]
SIMILARITIES: tuple[str, ...] = get_args(Similarity)
_STAGES = {"embedding": "RELAX: embedding masked clips", "probs": "RELAX: scoring masked clips"}

PARAMS = (
    Param("n_masks", 3000, "number of random masks", low=10, high=100000, step=10),
    Param("strategy", "unstructured", "masking strategy: smooth random cells, time stripes, frequency stripes "
          "or time–frequency patches", choices=STRATEGIES),
    Param("fraction", 0.5, "expected fraction of the map masked by each mask", low=0.05, high=0.95, step=0.05),
    Param("cells", 200, "cells of the coarse grid (≈); also sets stripe width and patch size", low=1, high=20000,
          step=1),
    Param("replacement", "zero", "value that replaces masked coefficients: zero, the clip's mean or its minimum",
          choices=BASELINES),
    Param("similarity", "embedding", "cosine similarity of the model's embeddings (RELAX) or of its class "
          "probabilities", choices=SIMILARITIES,
          labels={"embedding": "embedding similarity", "probs": "class-probability similarity"}),
    Param("sampler", "bernoulli", "where the masks' cells come from: independent Bernoulli draws (the paper), "
          "antithetic pairs (M, 1 − M) or a scrambled Sobol sequence", choices=SAMPLERS),
    stop_param("masks"),
    stability_param(),
    Param("inert", "none", INERT_HELP, choices=INERT_CHOICES),
)


def u_relax(importance: torch.Tensor, uncertainty: torch.Tensor) -> torch.Tensor:
    """U-RELAX: ``importance`` where ``uncertainty ≤ median(uncertainty)``, 0 elsewhere (same shape)."""
    return importance * (uncertainty <= uncertainty.median()).to(importance.dtype)


def explain_relax(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                  n_masks: int = 3000, strategy: Strategy = "unstructured", fraction: float = 0.5, cells: int = 200,
                  replacement: BaselineKind = "zero", similarity: Similarity = "embedding",
                  sampler: Sampler = "bernoulli", stop: Stop = "budget", on_partial: PartialFn | None = None,
                  inert: Inert = "none", stop_at_stability: float = 0.0) -> Attribution:
    """RELAX importance ``R`` and uncertainty ``U`` in ``probe``'s domain.

    Args:
        probe: the clip, model and domain.
        generator: random source for the masks, on ``probe.device``.
        progress: ``progress(fraction, stage)``, or ``None``.
        n_masks: N.  strategy: one of ``unstructured``, ``time``, ``frequency``, ``patches``.
        fraction: expected masked fraction.  cells: coarse grid size.
        replacement: ``"zero"``, ``"mean"`` or ``"min"`` (Probe baselines).
        similarity: ``"embedding"`` (``model.embed``) or ``"probs"`` (softmax outputs).
        sampler: ``"bernoulli"`` (the paper), ``"antithetic"`` or ``"sobol"`` (:class:`~earmark.explainers.masks.CellDraws`).
        stop: ``"budget"`` (all N masks) or ``"auto"`` (see :mod:`earmark.explainers.anytime`).
        stop_at_stability: end at a chunk end where the split-half top-10 % overlap reaches it (0 = off);
            the result's ``stability_top10`` is the figure the rule read.
        on_partial: ``on_partial(saliency, done, total, convergence)`` after every chunk but the last.

    Returns:
        Attribution with saliency (*M) = R, uncertainty (*M) = U ≥ 0, and extras ``u_relax`` (*M),
        ``mean_similarity`` (scalar), ``budget_used`` / ``budget_total`` (masks), ``convergence`` and the
        split-half stability ``stability_spearman`` / ``stability_top10``.

    Raises:
        ConfigError: a strategy the domain has no axis for (see :func:`strategy_masks`).
    """
    dtype = probe.coeffs.real.dtype
    moments = WeightedMoments(probe.map_shape, device=probe.device, dtype=dtype)
    halves = SplitHalves(probe.map_shape, device=probe.device, dtype=dtype)
    sim_sum = torch.zeros((), device=probe.device, dtype=dtype)
    draws = CellDraws(sampler, generator=generator, device=probe.device)
    draw = lambda b, shape: strategy_masks(b, shape, strategy=strategy, cells=cells,  # noqa: E731
                                           fraction=fraction, generator=generator, device=probe.device,
                                           dtype=dtype, draws=draws)
    dead = inert_cells(probe, replacement)
    clean = probe.clean_embedding() if similarity == "embedding" else probe.probs
    monitor = SamplingMonitor(n_masks, stop=stop, on_partial=on_partial,
                              present=lambda s: without_inert(s, s, dead, {}, inert)[0],
                              halves=halves, live=~dead, stop_at_stability=stop_at_stability)
    done = 0
    for masks, sub in mask_chunks(probe, n_masks, draw, progress=progress):            # (b, *M)
        reps = probe.score(masks, baseline=replacement, readout=similarity, progress=sub, stage=_STAGES[similarity])
        sims = F.cosine_similarity(reps, clean[None].to(reps.dtype), dim=-1).to(dtype)
        moments.update(sims.view(-1, *(1,) * (masks.ndim - 1)), masks)
        halves.update(sims.view(-1, *(1,) * (masks.ndim - 1)), masks)
        sim_sum = sim_sum + sims.sum()
        done += masks.shape[0]
        if monitor.update(done, lambda: moments.mean, lambda: _std_error(moments)):
            break
    safe = moments.weight.clamp_min(torch.finfo(dtype).tiny)
    importance = moments.mean
    uncertainty = torch.where(moments.weight > 0, moments.spread / safe, torch.zeros_like(safe)).clamp_min(0)
    importance, uncertainty, extras = without_inert(
        importance, uncertainty, dead,
        {"mean_similarity": sim_sum / done, **monitor.extras(probe.device)}, inert)
    return Attribution(importance, uncertainty, {**extras, "u_relax": u_relax(importance, uncertainty)})


def _std_error(moments: WeightedMoments) -> torch.Tensor:
    """(*M) standard error of the weighted mean R: √(U / n_eff) with Kish's effective count per cell."""
    safe = moments.weight.clamp_min(torch.finfo(moments.weight.dtype).tiny)
    return (moments.spread / safe / moments.effective_count().clamp_min(1.0)).clamp_min(0).sqrt()


SPEC = ExplainerSpec(
    name="relax",
    title="RELAX (representation similarity under masking)",
    fn=explain_relax,
    params=PARAMS,
    family="sampling",
    uncertainty="Mask-weighted variance of the embedding similarity over the masks that keep the cell "
                "(RELAX's U): high where keeping the cell gives unreliable similarity.",
    reference="Wickstrøm et al. 2022/2023, RELAX: Representation Learning Explainability; "
              "the RELAX spectrogram study (masking strategies, replacement values)",
    default_transform="stft",
    colour_reference="mean",
    baseline_extra="mean_similarity",
    anytime=True,
    budget=("n_masks",),
    units=("n_masks", "masks"),
    app_defaults=(("stop", "auto"), ("sampler", "antithetic"), ("stop_at_stability", STABLE_TOP10)),
)
