"""Explainers registered by name; :func:`explain` is the one entry point.

Each method lives in its own module exposing ``SPEC`` (an :class:`ExplainerSpec`); adding a module name
to ``_MODULES`` registers it.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ..device import make_generator
from ..errors import ConfigError
from ..explanation import Explanation
from ..params import Registry, resolve
from ..probe import Probe, ProgressFn
from ..transforms import Transform
from .base import Attribution, ExplainerSpec, FirstLook

EXPLAINERS = Registry("explainer")

_MODULES = ("saliency", "ig", "smoothgrad", "wam", "freqrise", "relax", "learnable_mask", "minimal_mask",
            "energy")
for _name in _MODULES:
    _mod = importlib.import_module(f".{_name}", __name__)
    for _spec in getattr(_mod, "SPECS", None) or (_mod.SPEC,):
        EXPLAINERS.register(_spec.name, _spec)


def explain(model, x: ArrayLike, transform: Transform, target: int | None = None, *, method: str = "ig",
            seed: int | None = 0, generator: torch.Generator | None = None, progress: ProgressFn | None = None,
            batch_size: int | None = None, first_look: FirstLook | None = None, **params: Any) -> Explanation:
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
        **params: the method's hyperparameters (declared in its spec; defaults from the papers).

    Returns:
        An :class:`Explanation` with saliency and uncertainty in the transform's map space; its ``params``
        name every hyperparameter as used (including values the method resolved itself).

    Raises:
        ConfigError: unknown method, unsupported domain, or a bad hyperparameter.
    """
    spec: ExplainerSpec = EXPLAINERS.get(method)
    if not spec.supports(transform.name):
        raise ConfigError(
            f"{spec.title} works in the {', '.join(spec.domains)} domain(s), not '{transform.name}'."
        )
    settings = resolve(spec.params, params, owner=f"Explainer '{method}'")
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    probe = Probe(model, transform, x, target=target, batch_size=batch_size, progress=progress)
    if generator is None:
        generator = make_generator(seed, probe.device)
    started = time.perf_counter()
    early = {"first_look": first_look} if first_look is not None and spec.first_look else {}
    result: Attribution = spec.fn(probe, generator=generator, progress=probe.progress, **settings, **early)
    if probe.device.type == "cuda":
        torch.cuda.synchronize(probe.device)
    seconds = time.perf_counter() - started
    probe.progress(1.0, "done")
    _check(result, probe, spec)
    return Explanation(
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
        },
    )


def _check(result: Attribution, probe: Probe, spec: ExplainerSpec) -> None:
    shape = probe.map_shape
    for label, t in (("saliency", result.saliency), ("uncertainty", result.uncertainty)):
        if tuple(t.shape) != shape:
            raise RuntimeError(f"{spec.name} returned {label} of shape {tuple(t.shape)}, expected {shape}")
    if bool((result.uncertainty < 0).any()):
        raise RuntimeError(f"{spec.name} returned a negative uncertainty")


__all__ = ["Attribution", "EXPLAINERS", "ExplainerSpec", "explain"]
