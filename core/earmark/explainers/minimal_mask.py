"""Minimal mask — WAM's meaningful-perturbation explanation (Kasmi et al.; Fong & Vedaldi 2017).

Start from the full clip (``M = 1``) and remove as much as possible while the class score stays up::

    min_M  −f_c(W⁻¹(z ∘ lift(M))) + α · ‖M‖₁/|M|,   M clamped to [0, 1] after every NAdam step

``f_c`` is the target's probability by default (``readout`` can pick the logit or log-probability).
The result reports the sparsity/score trade-off along the optimisation.

Score cap (ours, default ``score_cap="clean"``): the score term is ``min(f_c(masked), f_c(x))``. Without
it (``"none"``, the paper's objective) a mask that *raises* the score above the clean clip's is rewarded
too; in the DWT, where removing coefficients of louder neighbours can add energy to a band, the descent
then keeps distractor cells at exactly 1 (ties) to push the score up. With the cap, once the score is
back at the clip's, only the size term acts and those cells are dropped (``tests/test_minimal_mask_region.py``:
on a model that reads one STFT region's energy, the kept DWT cells lie in the region).

Uncertainty: ``restarts`` copies are optimised together as one batch. Each starts from a slightly
perturbed full mask ``M₀ = 1 − U[0, init_noise]`` (its own draw) and uses its own α, spaced evenly on a
log scale over ``α · 2^[−alpha_spread/2, +alpha_spread/2]`` (just α for one restart). The uncertainty is
the standard deviation of their final masks: cells whose keeping depends on where the descent starts or
on the exact size/score balance are uncertain; cells every restart keeps (or drops) are not. The
restarts' final (sparsity, score) pairs are a small trade-off curve of their own.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from ..params import Param
from ..probe import READOUT_NAMES, READOUTS, Probe, ProgressFn, Readout, read_class, sub_progress
from .anytime import PartialFn, Stop, budget_extras, stop_param
from .base import Attribution, ExplainerSpec, PlotSpec
from .learnable_mask import optimise_anytime, spread
from .masks import INERT_CHOICES, INERT_HELP, Inert, without_inert

ScoreCap = Literal["clean", "none"]

PARAMS = (
    Param("steps", 500, "NAdam steps (one batched forward + backward over all restarts each)",
          low=1, high=5000, step=1),
    Param("alpha", 1.0, "weight α of the mask size ‖M‖₁/|M| against the class score", low=0.0, high=100.0,
          step=0.05),
    Param("readout", "prob", "class score kept up: probability, logit or log-probability", choices=tuple(READOUTS),
          labels=READOUT_NAMES),
    Param("restarts", 4, "perturbed starts optimised together; their spread is the uncertainty",
          low=1, high=64, step=1),
    Param("alpha_spread", 1.0, "restarts use α·2^u, u evenly spaced in [−spread/2, spread/2] (octaves)",
          low=0.0, high=6.0, step=0.25),
    Param("init_noise", 0.05, "each start is 1 − U[0, init_noise] per cell", low=0.0, high=1.0, step=0.01),
    Param("lr", 0.05, "NAdam learning rate (mask values live in [0, 1])", low=1e-4, high=1.0, log=True),
    Param("tolerance", 0.0, "stop early when the loss changed by less than this fraction over 10 steps; 0 = off",
          low=0.0, high=0.1, step=1e-4),
    stop_param("steps"),
    Param("score_cap", "clean", "cap the class score at the clean clip's ('clean': a mask that raises the score "
          "above the clip's gains nothing, so only the size term acts; ours) or not ('none': the paper's objective)",
          choices=get_args(ScoreCap)),
    Param("inert", "none", INERT_HELP, choices=INERT_CHOICES),
)


def restart_alphas(alpha: float, restarts: int, *, spread_octaves: float, device=None, dtype=torch.float32) -> Tensor:
    """(R,) α per restart: ``α · 2^u`` with ``u`` evenly spaced over ``[−spread/2, spread/2]`` (α when R = 1)."""
    if restarts == 1:
        return torch.full((1,), float(alpha), device=device, dtype=dtype)
    u = torch.linspace(-spread_octaves / 2, spread_octaves / 2, restarts, device=device, dtype=dtype)
    return alpha * torch.pow(2.0, u)


def perturbed_full_masks(shape: tuple[int, ...], *, noise: float, generator: torch.Generator,
                         device: torch.device | str, dtype=torch.float32) -> Tensor:
    """(R, *M) starting masks ``1 − U[0, noise]`` (all ones when ``noise`` is 0)."""
    return 1.0 - noise * torch.rand(shape, generator=generator, device=device, dtype=dtype)


def explain_minimal_mask(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                         steps: int = 500, alpha: float = 1.0, readout: Readout = "prob", restarts: int = 4,
                         alpha_spread: float = 1.0, init_noise: float = 0.05, lr: float = 0.05,
                         tolerance: float = 0.0, stop: Stop = "budget", on_partial: PartialFn | None = None,
                         score_cap: ScoreCap = "clean", inert: Inert = "none") -> Attribution:
    """Shrink the mask from the full clip; saliency = mean final mask, uncertainty = spread over restarts.

    Args:
        probe: the clip, model and domain.
        generator: draws the perturbations of the starting masks.
        progress: ``progress(fraction, stage)``, or ``None``.
        steps, alpha, readout, restarts, alpha_spread, init_noise, lr, tolerance: see ``PARAMS``.
        stop: ``"budget"`` (all steps) or ``"auto"`` (see :mod:`earmark.explainers.anytime`).
        on_partial: ``on_partial(saliency, done, total, convergence)`` after every step but the last.

    Returns:
        Attribution with saliency (*M) in [0, 1], uncertainty (*M), extras ``restart_masks`` (R, *M),
        ``loss_curve`` (steps,), ``tradeoff`` (steps, 2) = (sparsity 1 − mean M, target score) of the
        masks scored at each step (means over restarts), ``alphas`` (R,) and ``final_sparsity`` (R,),
        ``final_score`` (R,) of the returned masks (one trade-off point per restart), ``budget_used`` /
        ``budget_total`` (steps) and ``convergence``; ``clean_score`` () the unmasked clip's score (the JSON
        summary reports size and score as ``final_mask``); ``raw_saliency`` / ``inert`` as the learnable mask.
    """
    shape = (restarts, *probe.map_shape)
    init = perturbed_full_masks(shape, noise=init_noise, generator=generator, device=probe.device,
                                dtype=probe.coeffs.real.dtype)
    alphas = restart_alphas(alpha, restarts, spread_octaves=alpha_spread, device=probe.device,
                            dtype=probe.coeffs.real.dtype)

    clean = read_class(probe.logits[None].to(alphas), probe.target, readout, multi_label=probe.multi_label)[0]

    def objective(masks: Tensor) -> dict[str, Tensor]:
        score = read_class(probe.logits_of(probe.apply_masks(masks)), probe.target, readout,
                           multi_label=probe.multi_label)
        size = masks.flatten(1).mean(-1)
        kept = torch.minimum(score, clean) if score_cap == "clean" else score
        return {"loss": -kept + alphas * size, "score": score.detach(), "sparsity": 1.0 - size.detach()}

    masks, curves, monitor, dead = optimise_anytime(
        probe, init, objective, optimizer="nadam", lr=lr, steps=steps, tolerance=tolerance, stop=stop,
        on_partial=on_partial, inert=inert, progress=sub_progress(progress, 0.0, 0.98), stage="shrinking the mask")
    final = probe.score(masks, readout=readout, progress=sub_progress(progress, 0.98, 1.0),
                        stage="scoring the minimal masks")
    extras = {
        "restart_masks": masks,
        "loss_curve": curves["loss"],
        "tradeoff": torch.stack([curves["sparsity"], curves["score"]], dim=-1),
        "alphas": alphas,
        "final_sparsity": 1.0 - masks.flatten(1).mean(-1),
        "final_score": final,
        "clean_score": clean.detach(),
        **budget_extras(len(curves["loss"]), steps, monitor.convergence, device=probe.device),
    }
    return Attribution(*without_inert(masks.mean(0), spread(masks), dead, extras, inert))


SPEC = ExplainerSpec(
    name="minimal_mask",
    title="Minimal mask (meaningful perturbation)",
    fn=explain_minimal_mask,
    params=PARAMS,
    family="optimisation",
    uncertainty="Standard deviation of the minimal mask over restarts from slightly perturbed full masks, "
                "each with its own α spread around the chosen one (dependence on start and size/score balance).",
    reference="Kasmi et al., WAM (meaningful-perturbation minimal mask); Fong & Vedaldi 2017",
    default_transform="dwt",
    plots=(PlotSpec("loss_curve", "line", "Training loss", "NAdam step", "Loss (mean over restarts)"),
           PlotSpec("tradeoff", "xy", "Size against score while shrinking", "Sparsity (share of cells removed)",
                    "Target score", points=("final_sparsity", "final_score"))),
    anytime=True,
    budget=("steps", "restarts"),
    passes=lambda p: (2 * int(p["steps"]) + 1) * int(p["restarts"]),
    units=("steps", "steps"),
    app_defaults=(("stop", "auto"),),
)
