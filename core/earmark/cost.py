"""A request priced in memory before it runs: peak bytes from the explainer, its budget, the domain's
coefficient size and the chunk, against a cap (``EARMARK_MAX_JOB_MB``, default 4096).

The estimate is a sum of what the method holds at once (:func:`estimate_peak_bytes`):

* gradient methods (IG, WAM-IG, SmoothGrad, saliency) build every path or noise point at once and keep a
  gradient for each: ``2 · points · coefficient bytes``, plus one backward chunk of work;
* sampling methods (FreqRISE, RELAX) hold one chunk of masks in map space and their masked coefficients;
* mask optimisation holds one mask, its optimiser state and one backward pass per restart;
* a chunk of model work costs the probe's own per-item figure (:func:`earmark.probe.default_batch_size`:
  ~800 bytes per sample forward, ×3 with the graph) plus three copies of an item's coefficients (the
  synthesis back to a waveform).

Coefficients (``COEFF_COPIES`` and the model figure) were fitted on CPU runs of AudioNet (8 kHz, 1 s) in
the time, STFT and mel domains; ``docs/guide/security.md`` lists estimate against measured peak. The
estimate errs high: it is a cap, not a forecast.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Mapping

from .errors import ConfigError

#: Default cap of one request's peak memory (MB).
DEFAULT_MAX_JOB_MB = 4096
#: Copies of one item's coefficients alive during a model call (the masked or shifted coefficients, the
#: synthesis' intermediate, its gradient).
COEFF_COPIES = 3
#: Bytes of model activations per input sample per item on a forward pass (×3 with the graph kept).
MODEL_BYTES_PER_SAMPLE = 800


#: Transform parameters that set the coefficient count, named in the refusal.
RESOLUTION_PARAMS = ("hop", "hop_length", "n_fft", "win_length", "n_mels", "level", "n_bins")
#: Masks per chunk of the sampling explainers (``explainers.masks.STEADY_CHUNK``).
MASK_CHUNK = 200


def max_job_mb(env: Mapping[str, str] | None = None) -> int:
    """``EARMARK_MAX_JOB_MB`` (a whole number ≥ 64), else :data:`DEFAULT_MAX_JOB_MB`.

    Raises:
        ConfigError: the variable is not a whole number of at least 64.
    """
    raw = (os.environ if env is None else env).get("EARMARK_MAX_JOB_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_JOB_MB
    if not raw.isdigit() or int(raw) < 64:
        raise ConfigError(f"EARMARK_MAX_JOB_MB must be a whole number of megabytes, at least 64; got {raw!r}.")
    return int(raw)


def held_points(method: str, params: Mapping[str, Any]) -> int:
    """Coefficient points a gradient method builds at once (0 for the others)."""
    if method in ("ig", "wam_ig"):
        n = int(params.get("n_steps", 50))
        return n + 2 if params.get("baselines") == "zero" else 3 * n + 5
    if method in ("smoothgrad", "wam_sg"):
        return int(params.get("n_samples", 25))
    if method == "saliency":
        return 1 + int(params.get("n_draws", 8))
    return 0


def estimate_peak_bytes(method: str, params: Mapping[str, Any], *, coeff_bytes: int, map_cells: int,
                        num_samples: int, grad_chunk: int, forward_chunk: int) -> int:
    """Peak bytes of one explanation beyond the loaded model.

    Args:
        method: explainer name.  params: its resolved hyperparameters.
        coeff_bytes: bytes of one clip's coefficients in the domain (complex STFT: 8 per cell).
        map_cells: cells of the saliency map.  num_samples: input samples.
        grad_chunk, forward_chunk: items per model call with and without a gradient.
    """
    forward_item = MODEL_BYTES_PER_SAMPLE * num_samples + COEFF_COPIES * coeff_bytes + 4 * num_samples
    backward_item = 3 * MODEL_BYTES_PER_SAMPLE * num_samples + COEFF_COPIES * coeff_bytes + 8 * num_samples
    base = 4 * coeff_bytes + 6 * 4 * map_cells                     # the clip, baselines, map, uncertainty, moments
    points = held_points(method, params)
    if points:
        held = 2 * points * coeff_bytes                              # the points and their gradients
        return base + held + min(points, grad_chunk) * backward_item
    if method in ("freqrise", "relax"):
        chunk = min(MASK_CHUNK, int(params.get("n_masks", 3000)))
        masks = chunk * (3 * 4 * map_cells + 2 * coeff_bytes)        # masks, weighted copies, masked coefficients
        return base + masks + min(chunk, forward_chunk) * forward_item
    if method in ("learnable_mask", "minimal_mask"):
        restarts = int(params.get("restarts", 4))
        return base + restarts * (4 * 4 * map_cells + backward_item)   # mask, Adam moments, gradient
    return base + forward_item


def _chunk(probe, backward: bool) -> int:
    """The probe's chunk, without recording it as used (``model=None``: :func:`earmark.probe.measured_chunks`
    lists only what a run used)."""
    from .probe import chunk_size
    return probe._batch or chunk_size(None, probe.device, probe.length, backward=backward)


def check_memory(method: str, params: Mapping[str, Any], probe, *, budget: tuple[str, ...] = (),
                 cap_mb: int | None = None) -> int:
    """Refuse an explanation whose estimated peak is above the cap, before it runs; return the estimate (MB).

    Raises:
        ConfigError: one sentence with the estimate, the cap and the parameters to lower.
    """
    cap = max_job_mb() if cap_mb is None else int(cap_mb)
    coeffs = probe.coeffs
    estimate = estimate_peak_bytes(
        method, params, coeff_bytes=coeffs.numel() * coeffs.element_size(), map_cells=math.prod(probe.map_shape),
        num_samples=probe.length, grad_chunk=_chunk(probe, True), forward_chunk=_chunk(probe, False))
    mb = int(math.ceil(estimate / 2**20))
    if mb > cap:
        settings = getattr(probe.transform, "settings", {}) or {}
        knobs = [f"{k}={params[k]}" for k in budget if k in params and k != "baselines"]
        knobs += [f"{k}={settings[k]}" for k in RESOLUTION_PARAMS if k in settings]
        raise ConfigError(
            f"This {method} request would need about {mb:,} MB at its peak, more than the {cap:,} MB one request "
            f"may use (EARMARK_MAX_JOB_MB); lower {', '.join(knobs) or 'its budget'} (fewer steps or masks, a "
            "larger hop, fewer bins) and try again.")
    return mb


# ---- time: passes at the domain's resolution ------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def resolution_factor(transform: str, tparams: tuple) -> int:
    """How many times more coefficients a clip has in ``transform`` at ``tparams`` than at its defaults
    (rounded, at least 1): each model pass costs about that much more (masking, synthesis, gradients)."""
    import torch

    from .transforms import get_transform

    x = torch.zeros(1, 8000)
    mine = get_transform(transform, 8000, **dict(tparams)).analyze(x)[0].numel()
    reference = get_transform(transform, 8000).analyze(x)[0].numel()
    return max(1, round(mine / reference))


def check_time(spec, passes: int, cap: int, *, budget: tuple[str, ...] = (),
               error: type[Exception] = ConfigError) -> int:
    """Price a job spec in pass-equivalents (passes × :func:`resolution_factor`); refuse above ``cap``.

    Returns:
        the priced passes (the job service checks them against its cap as before).

    Raises:
        BudgetExceeded: a request cheap in passes but not at its resolution, naming what to lower.
    """
    if getattr(spec, "kind", "") != "explanation":
        return passes
    factor = resolution_factor(spec.transform, tuple(spec.tparams))
    priced = passes * factor
    if factor > 1 and priced > cap:
        knobs = [f"{k}={v}" for k, v in spec.eparams if k in budget and k != "baselines"]
        knobs += [f"{k}={v}" for k, v in spec.tparams if k in RESOLUTION_PARAMS]
        raise error(
            f"This request needs {passes:,} model passes at {factor}× the default resolution of {spec.transform}, "
            f"about {priced:,} pass-equivalents, more than the {cap:,} this server allows per request "
            f"(EARMARK_MAX_MODEL_PASSES); lower {', '.join(knobs)}.")
    return priced


__all__ = ["DEFAULT_MAX_JOB_MB", "check_memory", "check_time", "resolution_factor", "estimate_peak_bytes", "held_points", "max_job_mb"]
