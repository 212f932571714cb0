"""Learnable time–frequency masks (Frehr, Brüsch, Alstrøm).

A mask ``M ∈ [0, 1]`` on the map is learned by gradient descent so that the masked clip
``W⁻¹(z ∘ lift(M))`` is still classified as the explained class, while the mask stays small and smooth::

    L(M) = CE(ŷ, f(W⁻¹(z ∘ lift(M)))) + λ_R · max(‖M‖₁/|M| − r, 0) + λ_S · L_S(M)

``ŷ`` is the explained class (the prediction by default). ``L_S`` is the mean squared difference of
neighbouring time frames within each band:

* STFT / mel (F, T): differences along time within every frequency row, averaged over all of them;
* DWT (N,) (levels concatenated): differences within each level only (never across a level boundary),
  each level's mean weighted by its time resolution ``2^j`` (the hop of one coefficient at level ``j``;
  the approximation ``A_J`` counts as level ``J``), normalised by the sum of the weights — so a jump
  between two coarse coefficients, which spans a longer stretch of time, costs more;
* time / Fourier (one axis): differences along that axis.

Parametrisation (as in the paper): ``M`` itself is the parameter; Adam updates it and it is clamped to
[0, 1] after every step. All restarts are one batch ``(R, *M)``: one forward and one backward per step.

Initialisation, our reading of the paper's "init 10 % of each band uniform in [0, a]": in every band
(a frequency row of the STFT/mel map, a level of the DWT, the whole axis of a 1-D map) a random
``init_fraction`` of the cells (at least one) start at ``U[0, a]`` and all other cells start at the
small value :data:`INIT_REST` (``a`` = 0.1 for the DWT and 1 for the STFT). Not exactly 0: a model whose
features are magnitudes or powers of coefficients has no gradient at a coefficient that is exactly zero,
and such a cell could never grow. Each restart draws its own cells and values, so the spread over
restarts is the uncertainty.

Defaults per domain (paper, Table 1): DWT (sym2) λ_R 0.5, λ_S 10, r 0.1, a 0.1; STFT λ_R 2, λ_S 5,
r 0.05, a 1. The paper has no row for mel, time or Fourier; they use the STFT row. Declared parameters
use ``-1`` (any negative value) for "the paper's default for the domain", so the declaration stays a
plain table that the dashboard turns into sliders.

Cross-entropy floor (ours, default ``ce_cap="clean"``): the CE term is ``max(CE(masked), CE(clip))``. Without
it (``"none"``, the paper's objective) a mask that makes the class *more* certain than the clip is rewarded,
and since Adam moves every cell at about the learning rate whatever the size of its gradient, every cell
whose gradient has the right sign — in the DWT, coefficients of other levels that leak a little into the
decisive region — climbs to 1 with the region's cells while the hinge is idle (mask mean below ``r``). With
the floor the push ends once the masked clip scores as the clip does (``docs/studies/dwt-masks.md``: on
decisive-region models the share of the top-2 % cells' mass in the region rises from 0.77 to 0.88 on average
in the DWT, and nothing changes in the STFT, where the floor never binds). It mirrors the minimal mask's
``score_cap``.

Uncertainty: the standard deviation over the restarts of the final masks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..outputs import log_activation
from ..params import Param
from ..probe import Probe, ProgressFn, sub_progress
from ..transforms import DWTTransform, Transform
from .anytime import PartialFn, Stop, StepMonitor, budget_extras, stop_param
from .base import Attribution, ExplainerSpec, PlotSpec, draw_std
from .masks import INERT_CHOICES, INERT_HELP, Inert, inert_cells, without_inert

#: Table 1 of the paper; domains without a row use ``"stft"``.
PAPER_DEFAULTS: dict[str, dict[str, float]] = {
    "dwt": {"lambda_r": 0.5, "lambda_s": 10.0, "r": 0.1, "init_high": 0.1},
    "stft": {"lambda_r": 2.0, "lambda_s": 5.0, "r": 0.05, "init_high": 1.0},
}

PARAMS = (
    Param("steps", 300, "Adam steps (one batched forward + backward over all restarts each)",
          low=1, high=5000, step=1),
    Param("restarts", 4, "random initialisations optimised together; their spread is the uncertainty",
          low=1, high=64, step=1),
    Param("lr", 0.05, "Adam learning rate (mask values live in [0, 1])", low=1e-4, high=1.0, log=True),
    Param("lambda_r", -1.0, "weight of the sparsity hinge; -1 = paper default for the domain (DWT 0.5, STFT 2)",
          low=-1.0, high=100.0, step=0.1),
    Param("lambda_s", -1.0, "weight of the smoothness term; -1 = paper default for the domain (DWT 10, STFT 5)",
          low=-1.0, high=1000.0, step=0.5),
    Param("r", -1.0, "target mask fraction: no sparsity cost below it; -1 = paper default (DWT 0.1, STFT 0.05)",
          low=-1.0, high=1.0, step=0.01),
    Param("init_fraction", 0.1, "share of the cells of each band that start non-zero", low=0.01, high=1.0, step=0.01),
    Param("init_high", -1.0, "those cells start uniform in [0, init_high]; -1 = paper default (DWT 0.1, STFT 1)",
          low=-1.0, high=1.0, step=0.01),
    Param("tolerance", 0.0, "stop early when the loss changed by less than this fraction over 10 steps; 0 = off",
          low=0.0, high=0.1, step=1e-4),
    stop_param("steps"),
    Param("inert", "none", INERT_HELP, choices=INERT_CHOICES),
    Param("ce_cap", "clean", "floor the cross-entropy at the clean clip's ('clean': a mask that makes the class "
          "more certain than the clip gains nothing; ours) or not ('none': the paper's objective)",
          choices=("clean", "none")),
)

#: Starting value of the cells that the random initialisation leaves out (see the module docstring).
INIT_REST = 1e-3

#: Steps over which the early-stopping rule compares the loss.
STOP_WINDOW = 10

Objective = Callable[[Tensor], dict[str, Tensor]]


# ---- domain structure -----------------------------------------------------------------------------
def paper_defaults(domain: str) -> dict[str, float]:
    """The paper's λ_R, λ_S, r and init_high for ``domain`` (the STFT row where the paper has none)."""
    return dict(PAPER_DEFAULTS.get(domain, PAPER_DEFAULTS["stft"]))


def fill_defaults(domain: str, **given: float) -> dict[str, float]:
    """Replace negative (sentinel) values in ``given`` by the paper's default for ``domain``."""
    table = paper_defaults(domain)
    return {k: (table[k] if v < 0 else float(v)) for k, v in given.items()}


def band_segments(transform: Transform, length: int, map_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Lengths of the bands laid along the last (time) axis of the map.

    The DWT concatenates its levels along that axis (approximation first); every other domain has one
    segment spanning the whole axis (for 2-D maps each row is then its own band).
    """
    if isinstance(transform, DWTTransform):
        return tuple(transform.layout(length))
    return (map_shape[-1],)


def dwt_level_weights(num_segments: int) -> Tensor:
    """(J+1,) smoothness weight per DWT segment, approximation first: ``2^J, 2^J, 2^(J−1), …, 2``.

    The weight is the hop in samples of one coefficient: coarser levels weigh more.
    """
    levels = num_segments - 1
    exponents = [levels] + list(range(levels, 0, -1))
    return torch.tensor([2.0 ** e for e in exponents], dtype=torch.float64)


def segment_weights(transform: Transform, segments: tuple[int, ...]) -> Tensor:
    """(len(segments),) smoothness weight per segment: :func:`dwt_level_weights` for the DWT, else ones."""
    if isinstance(transform, DWTTransform):
        return dwt_level_weights(len(segments))
    return torch.ones(len(segments), dtype=torch.float64)


def diff_weights(segments: tuple[int, ...], weights: Tensor) -> Tensor:
    """(n − 1,) weight of each neighbour difference along an axis of ``n = Σ segments`` cells.

    A difference across a segment boundary weighs 0; one inside segment ``s`` weighs
    ``w_s / (n_s − 1) / Σ w`` (the sum over segments with at least two cells), so
    ``Σ weights · Δ²`` is the ``w``-weighted mean over segments of each segment's mean squared difference.

    Args:
        segments: cells per segment, in order.  weights: (len(segments),) non-negative weights.
    """
    if any(n < 1 for n in segments):
        raise ValueError(f"every segment needs at least one cell, got {segments}")
    total = sum(float(w) for w, n in zip(weights, segments) if n >= 2)
    parts = []
    for n, w in zip(segments, weights):
        inside = float(w) / (n - 1) / total if n >= 2 else 0.0
        parts.append(torch.full((n - 1,), inside, dtype=torch.float64))
        parts.append(torch.zeros(1, dtype=torch.float64))  # the boundary to the next segment
    return torch.cat(parts)[:-1]


def smoothness(masks: Tensor, weights: Tensor) -> Tensor:
    """Weighted mean squared neighbour difference along the last axis, averaged over other map axes.

    Args:
        masks: (R, *M) masks.  weights: (M[-1] − 1,) from :func:`diff_weights`.

    Returns:
        (R,) ``L_S`` per restart.
    """
    sq = masks.diff(dim=-1).pow(2) * weights.to(masks)
    return sq.sum(-1).reshape(masks.shape[0], -1).mean(-1)


def sparsity_hinge(masks: Tensor, r: float) -> Tensor:
    """(R, *M) → (R,) ``max(‖M‖₁/|M| − r, 0)`` (masks are non-negative, so ‖M‖₁/|M| is the mean)."""
    return (masks.flatten(1).mean(-1) - r).clamp(min=0)


def initial_masks(shape: tuple[int, ...], segments: tuple[int, ...], *, fraction: float, high: float,
                  generator: torch.Generator, device: torch.device | str, dtype=torch.float32,
                  rest: float = INIT_REST) -> Tensor:
    """Random start: in every band a random ``fraction`` of the cells (≥ 1) ~ U[0, high], the rest ``rest``.

    Args:
        shape: (R, *M).  segments: band lengths along the last axis (:func:`band_segments`).
        fraction: share of each band's cells that start non-zero.  high: upper end of their values.
        generator: the random source (on ``device``).  rest: value of the cells left out.

    Returns:
        (R, *M) masks on ``device``.
    """
    n = shape[-1]
    sizes = torch.tensor(segments, device=device)
    seg_id = torch.repeat_interleave(torch.arange(len(segments), device=device), sizes)   # (n,)
    starts = torch.cumsum(sizes, 0) - sizes
    keys = torch.rand(shape, generator=generator, device=device, dtype=torch.float64) + seg_id.double()
    order = keys.argsort(-1)                                    # cells sorted by band, random inside a band
    position = torch.arange(n, device=device).expand(shape).contiguous()
    rank = torch.empty_like(position).scatter_(-1, order, position) - starts[seg_id]   # rank inside its band
    keep = (sizes.double() * fraction).round().clamp(min=1).long()[seg_id]
    values = torch.rand(shape, generator=generator, device=device, dtype=dtype) * high
    return torch.where(rank < keep, values, torch.full((), rest, device=device, dtype=dtype))


# ---- optimisation (shared with the minimal mask) ------------------------------------------------------
def target_cross_entropy(logits: Tensor, target: int, *, multi_label: bool = False) -> Tensor:
    """(R, C) logits → (R,) cross-entropy of class ``target`` (binary, of that class alone, when multi-label)."""
    return -log_activation(logits, multi_label=multi_label)[:, target]


def optimise_masks(probe: Probe, init: Tensor, objective: Objective, *, optimizer: str, lr: float, steps: int,
                   tolerance: float = 0.0, progress: ProgressFn | None = None,
                   stage: str = "optimising masks",
                   monitor: StepMonitor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Minimise ``objective`` over a batch of masks kept in [0, 1], one forward/backward per step.

    Restarts are independent: the loss is summed over them and Adam/NAdam act per element.

    Args:
        probe: the clip, model and domain (counts the passes).
        init: (R, *M) starting masks.
        objective: masks (R, *M) → dict of (R,) terms; ``"loss"`` is minimised, all are recorded.
        optimizer: ``"adam"`` or ``"nadam"``.  lr: learning rate.  steps: maximum number of steps.
        tolerance: stop when the mean loss changed by less than ``tolerance·|loss|`` over
            :data:`STOP_WINDOW` steps (0 = run all steps; checking syncs the device each step).
        monitor: publishes the estimate after every step and may end the run (``stop="auto"``).

    Returns:
        final masks (R, *M) and curves: each term's mean over restarts per step, (steps_run,).
    """
    report = progress or probe.progress
    masks = init.detach().clone().requires_grad_(True)
    opt = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam}[optimizer]([masks], lr=lr)
    history: list[dict[str, Tensor]] = []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            terms = objective(masks)
            terms["loss"].sum().backward()
        opt.step()
        with torch.no_grad():
            masks.clamp_(0.0, 1.0)
        probe.backward_passes += masks.shape[0]
        history.append({k: v.detach().mean() for k, v in terms.items()})
        report((step + 1) / steps, stage)
        if tolerance > 0 and step >= STOP_WINDOW:
            before, now = float(history[-1 - STOP_WINDOW]["loss"]), float(history[-1]["loss"])
            if abs(before - now) <= tolerance * max(abs(before), 1e-12):
                break
        if monitor is not None and monitor.step(step + 1, masks, history[-1]["loss"]):
            break
    curves = {k: torch.stack([h[k] for h in history]) for k in history[0]}
    return masks.detach(), curves


def optimise_anytime(probe: Probe, init: Tensor, objective: Objective, *, optimizer: str, lr: float, steps: int,
                     tolerance: float, stop: Stop, on_partial: PartialFn | None, inert: Inert,
                     progress: ProgressFn | None, stage: str) -> tuple[Tensor, dict[str, Tensor], StepMonitor, Tensor]:
    """:func:`optimise_masks` with a :class:`StepMonitor` that publishes each step's estimate (inert cells left
    out) and ends the run at ``stop="auto"``.

    Returns:
        ``(masks, curves, monitor, dead)``: as :func:`optimise_masks`, the monitor (its convergence) and the
        (*M) inert cells (:func:`~earmark.explainers.masks.inert_cells`).
    """
    dead = inert_cells(probe)
    monitor = StepMonitor(steps, stop=stop, on_partial=on_partial,
                          present=lambda s: without_inert(s, s, dead, {}, inert)[0])
    masks, curves = optimise_masks(probe, init, objective, optimizer=optimizer, lr=lr, steps=steps,
                                   tolerance=tolerance, progress=progress, stage=stage, monitor=monitor)
    return masks, curves, monitor, dead


def spread(masks: Tensor) -> Tensor:
    """(R, *M) → (*M) standard deviation over restarts (zeros for a single restart)."""
    return draw_std(masks, correction=0)


# ---- the explainer ------------------------------------------------------------------------------------
def explain_learnable_mask(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                           steps: int = 300, restarts: int = 4, lr: float = 0.05, lambda_r: float = -1.0,
                           lambda_s: float = -1.0, r: float = -1.0, init_fraction: float = 0.1,
                           init_high: float = -1.0, tolerance: float = 0.0, stop: Stop = "budget",
                           on_partial: PartialFn | None = None, inert: Inert = "none",
                           ce_cap: str = "clean") -> Attribution:
    """Learn ``restarts`` masks at once; saliency = their mean, uncertainty = their spread.

    Args:
        probe: the clip, model and domain.
        generator: draws the initial masks.
        progress: ``progress(fraction, stage)``, or ``None``.
        steps, restarts, lr, lambda_r, lambda_s, r, init_fraction, init_high, tolerance: see ``PARAMS``;
            negative λ_R, λ_S, r, init_high mean the paper's default for the domain.
        ce_cap: ``"clean"`` floors the cross-entropy at the clip's (ours), ``"none"`` is the paper's objective.
        stop: ``"budget"`` (all steps) or ``"auto"`` (see :mod:`earmark.explainers.anytime`).
        on_partial: ``on_partial(saliency, done, total, convergence)`` after every step but the last.

    Returns:
        Attribution with saliency (*M) in [0, 1], uncertainty (*M) (std over restarts), extras
        ``restart_masks`` (R, *M), ``loss_curve`` (steps,) and the per-term curves ``ce_curve``,
        ``sparsity_curve`` (the hinge), ``smoothness_curve`` and ``mask_mean_curve`` (all means over
        restarts), ``budget_used`` / ``budget_total`` (steps) and ``convergence``; ``raw_saliency`` (*M) the
        mean mask as learned and ``inert`` (*M) the cells where masking changes nothing (zero coefficients),
        which with ``inert="none"`` get no importance in the saliency: the mask there is moved by the
        regularisers only. ``resolved`` names the λ_R, λ_S, r and init_high actually used (the paper's values
        for the domain where the arguments were negative), which :func:`~earmark.explainers.explain` puts in
        ``Explanation.params``.
    """
    domain = probe.transform.name
    cfg = fill_defaults(domain, lambda_r=lambda_r, lambda_s=lambda_s, r=r, init_high=init_high)
    shape = (restarts, *probe.map_shape)
    segments = band_segments(probe.transform, probe.length, probe.map_shape)
    weights = diff_weights(segments, segment_weights(probe.transform, segments)).to(probe.device)
    dtype = probe.coeffs.real.dtype
    init = initial_masks(shape, segments, fraction=init_fraction, high=cfg["init_high"], generator=generator,
                         device=probe.device, dtype=dtype)

    floor = target_cross_entropy(probe.logits[None].to(dtype), probe.target, multi_label=probe.multi_label)[0]

    def objective(masks: Tensor) -> dict[str, Tensor]:
        ce = target_cross_entropy(probe.logits_of(probe.apply_masks(masks)), probe.target,
                                  multi_label=probe.multi_label)
        kept = torch.maximum(ce, floor) if ce_cap == "clean" else ce      # the CE the loss sees
        hinge = sparsity_hinge(masks, cfg["r"])
        smooth = smoothness(masks, weights)
        loss = kept + cfg["lambda_r"] * hinge + cfg["lambda_s"] * smooth
        return {"loss": loss, "ce": ce.detach(), "sparsity": hinge, "smoothness": smooth,
                "mask_mean": masks.detach().flatten(1).mean(-1)}

    masks, curves, monitor, dead = optimise_anytime(
        probe, init, objective, optimizer="adam", lr=lr, steps=steps, tolerance=tolerance, stop=stop,
        on_partial=on_partial, inert=inert, progress=sub_progress(progress, 0.0, 1.0), stage="learning masks")
    extras = {"restart_masks": masks, "loss_curve": curves["loss"], "ce_curve": curves["ce"],
              "sparsity_curve": curves["sparsity"], "smoothness_curve": curves["smoothness"],
              "mask_mean_curve": curves["mask_mean"],
              **budget_extras(len(curves["loss"]), steps, monitor.convergence, device=probe.device)}
    return Attribution(*without_inert(masks.mean(0), spread(masks), dead, extras, inert), resolved=cfg)


SPEC = ExplainerSpec(
    name="learnable_mask",
    title="Learnable time–frequency mask",
    fn=explain_learnable_mask,
    params=PARAMS,
    family="optimisation",
    uncertainty="Standard deviation of the learned mask over restarts from different random initialisations.",
    reference="Frehr, Brüsch, Alstrøm — learnable time–frequency masks for explaining audio classifiers",
    default_transform="dwt",
    plots=(PlotSpec("loss_curve", "line", "Training loss", "Adam step", "Loss (mean over restarts)"),
           PlotSpec("ce_curve", "line", "Cross-entropy term", "Adam step", "Cross-entropy"),
           PlotSpec("mask_mean_curve", "line", "Mask size", "Adam step", "Mean mask value")),
    auto_values=lambda transform: dict(PAPER_DEFAULTS.get(transform, PAPER_DEFAULTS["stft"])),
    anytime=True,
    budget=("steps", "restarts"),
    passes=lambda p: 2 * int(p["steps"]) * int(p["restarts"]),
    units=("steps", "steps"),
    app_defaults=(("stop", "auto"),),
)
