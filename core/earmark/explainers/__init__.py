"""Explainers registered by name; :func:`explain` is the one entry point.

Each method lives in its own module exposing ``SPEC`` (an :class:`ExplainerSpec`, or ``SPECS`` for several);
importing the module below registers it, in menu order.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from numpy.typing import ArrayLike

from ..cost import check_memory
from ..device import make_generator
from ..errors import ConfigError, ModelError
from .._version import __version__
from ..explanation import Explanation
from ..finite import check_finite
from ..guards import check_map, class_sensitivity, with_sensitivity
from ..models.base import weights_fingerprint
from ..params import Registry, resolve
from ..probe import Probe, ProgressFn
from ..tape import Tape
from ..transforms import Transform
from ..validate import check_count, check_seed, check_target, check_wave
from . import (captum_family, energy, flextime, freqrise, gradcam, ig, learnable_mask, lrp, minimal_mask, relax,
               saliency, smoothgrad, wam)
from .anytime import PartialFn
from .base import Attribution, ExplainerSpec, FirstLook, PlotSpec

EXPLAINERS = Registry("explainer")

for _mod in (saliency, ig, smoothgrad, wam, freqrise, relax, learnable_mask, minimal_mask, energy,
             captum_family, gradcam, lrp, flextime):
    for _spec in getattr(_mod, "SPECS", None) or (_mod.SPEC,):
        EXPLAINERS.register(_spec.name, _spec)


def explain(model, x: ArrayLike, transform: Transform, target: int | None = None, *, method: str = "ig",
            seed: int | None = 0, generator: torch.Generator | None = None, progress: ProgressFn | None = None,
            batch_size: int | None = None, first_look: FirstLook | None = None, on_partial: PartialFn | None = None,
            contrast: int | None = None, tape: Tape | None = None, precision: str = "float32",
            **params: Any) -> Explanation:
    """Explain ``model``'s prediction on ``x`` in ``transform``'s domain with the explainer ``method``.

    Args:
        model: an :class:`~earmark.models.EarmarkModel`.
        x: (L,) waveform at the model's sample rate and length: a tensor, a NumPy array or any array-like.
        transform: the domain (see :func:`earmark.transforms.get_transform`).
        target: class to explain; ``None`` = the predicted class.
        method: registered explainer name (see ``EXPLAINERS.names()``).
        seed: seeds the generator when ``generator`` is not given.
        generator: explicit random generator (on the model's device) for stochastic methods.
        progress: ``progress(fraction, stage)``.
        batch_size: items per model call (default: sized to the device's memory).
        first_look: ``first_look(saliency)`` is called with the final saliency map (*M) as soon as it is
            known, before the uncertainty, by methods that can (``spec.first_look``; IG and WAM-IG);
            ignored by the others.
        on_partial: ``on_partial(saliency, done, total, convergence)`` receives the current estimate (*M)
            on the device as the run goes, from methods that can (``spec.anytime``: FreqRISE, RELAX, the
            learnable and minimal masks); ``done`` / ``total`` count masks or steps
            (``spec.budget_unit``), ``convergence`` is the top-10 % overlap with an earlier estimate
            (``None`` at first). The first call comes after the first chunk or step; the last one carries
            the final saliency, bit for bit (with ``done`` < ``total`` when ``stop="auto"`` ended early).
            Ignored by the other methods. The result does not depend on whether anyone listens.
        contrast: a second class B: explain "target rather than B", the difference of the two classes'
            scores (logits for the gradient methods), with methods whose spec is ``contrastive``.
        tape: a :class:`~earmark.tape.Tape` that records the run's model answers (a job keeps it, so a
            stopped run can continue) and answers the calls it already holds (the continuation: the same
            seed gives the same map as an uninterrupted run, bit for bit).
        precision: the number format of the model's scoring passes: ``"float32"`` (default), or
            ``"bfloat16"`` / ``"float16"`` under autocast, for the sampling methods on hardware where it
            pays (measure it with ``earmark bench --precision``). Gradients are always float32.
        **params: the method's hyperparameters (declared in its spec; defaults from the papers).

    Returns:
        An :class:`Explanation` with saliency and uncertainty in the transform's map space; its ``params``
        name every hyperparameter as used (including values the method resolved itself).

    Raises:
        ConfigError: unknown method, unsupported domain, a bad hyperparameter, a target or contrast that is
            not a class index, a contrast with a method that cannot take one, a seed outside [0, 2**63), or a waveform of the wrong shape, length or rate.
        ModelError: the model cannot run this method (e.g. a gradient method on an ONNX model).
    """
    spec: ExplainerSpec = EXPLAINERS.get(method)
    if not spec.supports(transform.name):
        raise ConfigError(
            f"{spec.title} works in the {', '.join(spec.domains)} domain(s), not '{transform.name}'."
        )
    reason = spec.unavailable(getattr(model, "card", None), model)
    if reason:
        raise ModelError(reason)
    settings = resolve(spec.params, params, owner=f"Explainer '{method}'")
    target, seed = check_target(target), check_seed(seed)
    x = check_wave(x, model, transform)
    if batch_size is not None:
        batch_size = check_count(batch_size, "batch_size (items per model call)")
    if contrast is not None and not spec.contrastive:
        raise ConfigError(f"{spec.title} cannot explain one class rather than another (no contrast); use a "
                          "gradient or sampling method such as ig, saliency, smoothgrad, freqrise or captum:*.")
    probe = Probe(model, transform, x, target=target, batch_size=batch_size, progress=progress, contrast=contrast,
                  tape=tape, precision=precision)
    replayed = tape.replayed if tape is not None else 0
    check_memory(spec.name, settings, probe, budget=spec.budget)   # priced in memory before it runs (EARMARK_MAX_JOB_MB)
    if generator is None:
        generator = make_generator(seed, probe.device)
    started = time.perf_counter()
    early = {"first_look": first_look} if first_look is not None and spec.first_look else {}
    if on_partial is not None and spec.anytime:
        early["on_partial"] = on_partial
    result: Attribution = spec.fn(probe, generator=generator, progress=probe.progress, **settings, **early)
    if probe.device.type == "cuda":
        torch.cuda.synchronize(probe.device)
    seconds = time.perf_counter() - started
    probe.progress(1.0, "done")
    _check(result, probe, spec)
    budget = _budget(result)
    if on_partial is not None and spec.anytime:
        conv = float(result.extras["convergence"]) if "convergence" in result.extras else float("nan")
        on_partial(result.saliency.detach().clone(), budget.get("budget_used", 0), budget.get("budget_total", 0),
                   None if conv != conv else conv)
    contrast = result.extras.pop("contrast_saliency", None), result.extras.pop("contrast_class", None)
    expl = Explanation(
        saliency=result.saliency.detach(),
        uncertainty=result.uncertainty.detach(),
        target=probe.target,
        method=spec.name,
        transform=transform.name,
        uncertainty_meaning=spec.uncertainty,
        params={**settings, **result.resolved},
        seed=seed,
        extras={k: v.detach() for k, v in result.extras.items()},
        meta={
            "seconds": seconds,
            "forward_passes": probe.forward_passes,
            "backward_passes": probe.backward_passes,
            "predicted": int(probe.logits.argmax()),
            "probabilities": probe.probs.detach().cpu().tolist(),
            "transform_settings": dict(transform.settings),
            "device": str(probe.device),
            "precision": probe.precision,
            "chunk": {"fwd": probe.batch_size(backward=False), "fwd+bwd": probe.batch_size(backward=True)},
            "earmark_version": __version__,
            "model_weights_sha256": weights_fingerprint(model),
            **({"contrast": probe.contrast} if probe.contrast is not None else {}),
            **({"replayed_passes": tape.replayed - replayed} if tape is not None and tape.replayed > replayed else {}),
            **({**budget, "budget_unit": spec.budget_unit} if budget else {}),
        },
    )
    if contrast[0] is not None:   # the same run scored for a second class: does the map depend on the class?
        mine = result.extras.get("raw_saliency", result.saliency)   # both maps as estimated (no inert floor)
        expl = with_sensitivity(expl, class_sensitivity(mine, contrast[0], int(contrast[1])))
    # a NaN map is an error (NumericalError, one sentence), never a result; an all-zero one is labelled
    return check_map(check_finite(expl))


def _budget(result: Attribution) -> dict[str, int]:
    """``budget_used`` / ``budget_total`` (masks or steps) from an anytime result's extras, as ints."""
    return {k: int(result.extras[k]) for k in ("budget_used", "budget_total") if k in result.extras}


def _check(result: Attribution, probe: Probe, spec: ExplainerSpec) -> None:
    shape = probe.map_shape
    for label, t in (("saliency", result.saliency), ("uncertainty", result.uncertainty)):
        if tuple(t.shape) != shape:
            raise RuntimeError(f"{spec.name} returned {label} of shape {tuple(t.shape)}, expected {shape}")
    if bool((result.uncertainty < 0).any()):
        raise RuntimeError(f"{spec.name} returned a negative uncertainty")


__all__ = ["Attribution", "EXPLAINERS", "ExplainerSpec", "PlotSpec", "explain"]
