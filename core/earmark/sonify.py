"""The listening path: hear what an explanation says matters.

Given a clip ``x``, a transform ``W`` and a saliency map in map space ``M`` (see
:mod:`earmark.transforms.base`), build waveforms from

* **keep**: only the top ``fraction`` of map cells (the rest set to 0),
* **remove**: everything except the top ``fraction``,
* **soft**: every coefficient weighted by its normalised saliency,

always as ``synthesize(analyze(x) · lift(mask))``. Because every transform's ``lift`` is linear and
``lift(1) = 1``, keep and remove masks are complementary and ``keep + remove = x`` (before loudness
matching) in every linear domain.

Ranking convention: cells are ranked by the **signed** saliency value, largest first. For maps that are
magnitudes (Saliency, RISE, RELAX, masks) that is "most important first"; for gradient-signed maps
(Integrated Gradients, SmoothGrad with signs) it is "strongest *positive* evidence for the class first",
and cells with negative attribution (evidence against the class) come last. Take ``saliency.abs()``
before calling to rank by magnitude instead.

Example:
    >>> import torch
    >>> from earmark.transforms import get_transform
    >>> t = get_transform("stft", 8000)
    >>> x = torch.randn(8000, generator=torch.Generator().manual_seed(0))
    >>> s = torch.rand(t.map_shape(8000), generator=torch.Generator().manual_seed(1))
    >>> a = keep_top(t, x, s, 0.1); b = remove_top(t, x, s, 0.1)
    >>> float((a + b - x).abs().max()) < 1e-5
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .errors import ConfigError
from .guards import check_listenable
from .transforms import Transform

#: Peak that loudness matching never exceeds (so a matched clip is never clipped on playback).
PEAK_LIMIT = 0.99
#: RMS at or below which a waveform counts as silent and is left alone.
SILENT_RMS = 1e-8


def _check_fraction(fraction: float) -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"The fraction of coefficients to keep or remove must lie in [0, 1]; got {fraction:g}. "
                          "Use e.g. 0.1 for the top 10 %.")
    return fraction


def topk_mask(saliency: Tensor, fraction: float, *, largest: bool = True) -> Tensor:
    """Boolean mask of the top ``fraction`` of cells by signed value.

    ``k = round(fraction · N)`` cells are selected. Ties are broken deterministically: among equal values
    the cell with the smaller flat index wins (a stable sort). NaN counts as the least important value.

    Args:
        saliency: (*M) real map.
        fraction: share of cells to select, in [0, 1].
        largest: select the largest values (default) or the smallest.

    Returns:
        (*M) bool tensor on ``saliency``'s device with exactly ``k`` True entries.

    Raises:
        ConfigError: ``fraction`` outside [0, 1] or a complex map.
    """
    fraction = _check_fraction(fraction)
    if saliency.is_complex():
        raise ConfigError("A saliency map must be real; take .abs() or .real of a complex map first.")
    flat = saliency.detach().reshape(-1).to(torch.float64)
    worst = -math.inf if largest else math.inf
    flat = torch.nan_to_num(flat, nan=worst)
    k = int(math.floor(fraction * flat.numel() + 0.5))
    order = torch.sort(flat, descending=largest, stable=True).indices
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=saliency.device)
    mask[order[:k]] = True
    return mask.reshape(saliency.shape)


def _check_map(transform: Transform, x: Tensor, saliency: Tensor) -> Tensor:
    """``x`` as (1, L) float; raise if ``saliency`` is not a map of ``x`` in ``transform``'s domain."""
    if x.dim() != 1 and not (x.dim() == 2 and x.shape[0] == 1):
        raise ConfigError(f"Listening works on one clip: a waveform of shape (L,); got shape {tuple(x.shape)}.")
    x = x.reshape(1, -1)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    expected = tuple(transform.map_shape(x.shape[-1]))
    if tuple(saliency.shape) != expected:
        raise ConfigError(
            f"The saliency map has shape {tuple(saliency.shape)} but a {x.shape[-1]}-sample clip in the "
            f"'{transform.name}' domain needs {expected}. Explain the clip again with the current transform."
        )
    return x


def _masked(transform: Transform, x: Tensor, masks: Tensor) -> Tensor:
    """(1, L) clip, (N, *M) real masks → (N, L) waveforms ``synthesize(analyze(x) · lift(mask))``."""
    with torch.no_grad():
        z = transform.analyze(x)
        lifted = transform.lift(masks.to(x.device, z.real.dtype))
        return transform.synthesize(z * lifted, x.shape[-1])


def keep_top(transform: Transform, x: Tensor, saliency: Tensor, fraction: float) -> Tensor:
    """Waveform rebuilt from only the top ``fraction`` of map cells (all others set to 0).

    Args:
        transform: the domain ``saliency`` lives in.
        x: (L,) waveform.
        saliency: (*M) map, ``M = transform.map_shape(L)``; ranked by signed value (module docstring).
        fraction: share of cells kept, in [0, 1].

    Returns:
        (L,) waveform on ``x``'s device.
    """
    x = _check_map(transform, x, saliency)
    mask = topk_mask(saliency, fraction)
    return _masked(transform, x, mask[None].float())[0]


def remove_top(transform: Transform, x: Tensor, saliency: Tensor, fraction: float) -> Tensor:
    """Waveform with the top ``fraction`` of map cells set to 0: the complement of :func:`keep_top`.

    Args and returns as :func:`keep_top`.
    """
    x = _check_map(transform, x, saliency)
    mask = ~topk_mask(saliency, fraction)
    return _masked(transform, x, mask[None].float())[0]


def soft_weights(saliency: Tensor, *, gamma: float = 1.0) -> Tensor:
    """Saliency → weights in [0, 1]: clip at 0, divide by the maximum, raise to ``gamma``.

    A map with no positive value gives all-zero weights (nothing is evidence for the class).

    Args:
        saliency: (*M) real map.
        gamma: exponent > 0; above 1 sharpens (only the strongest cells stay loud), below 1 flattens.

    Returns:
        (*M) weights, same dtype and device.
    """
    if not gamma > 0:
        raise ConfigError(f"gamma must be positive; got {gamma:g}. Use 1 for a plain linear weighting.")
    s = torch.nan_to_num(saliency.detach(), nan=0.0).clamp(min=0)
    top = s.max() if s.numel() else s.new_zeros(())
    if float(top) <= 0:
        return torch.zeros_like(s)
    return (s / top) ** gamma


def soft_mask(transform: Transform, x: Tensor, saliency: Tensor, *, gamma: float = 1.0) -> Tensor:
    """Waveform with every coefficient weighted by its normalised saliency (see :func:`soft_weights`).

    Args:
        transform: the domain ``saliency`` lives in.
        x: (L,) waveform.
        saliency: (*M) map.
        gamma: exponent of the weights.

    Returns:
        (L,) waveform ``synthesize(analyze(x) · lift(w))``.
    """
    x = _check_map(transform, x, saliency)
    return _masked(transform, x, soft_weights(saliency, gamma=gamma)[None])[0]


def rms(wave: Tensor) -> Tensor:
    """Root mean square over the last axis: (..., L) → (...)."""
    return wave.pow(2).mean(-1).sqrt()


#: RMS level (dBFS) under which a listening version counts as near silent: the model's answer on it says
#: little about the cells it was built from.
NEAR_SILENT_DBFS = -60.0


def level_dbfs(wave) -> float:
    """RMS level of a waveform in dB relative to full scale (a sine of peak 1 is −3 dBFS); −240 for zeros.

    >>> round(level_dbfs(torch.full((100,), 0.1)), 1)
    -20.0
    """
    w = torch.as_tensor(wave, dtype=torch.float64).reshape(-1)
    level = float(w.pow(2).mean().sqrt()) if w.numel() else 0.0
    return 20.0 * math.log10(max(level, 1e-12))


def near_silence_note(wave, *, threshold_db: float = NEAR_SILENT_DBFS) -> str | None:
    """One sentence when ``wave`` (L,) is near silent (RMS below ``threshold_db`` dBFS), else ``None``."""
    level = level_dbfs(wave)
    if level >= threshold_db:
        return None
    return (f"This version is near silent ({level:.0f} dBFS RMS): the model's answer on it is its answer to "
            "silence, not to the cells kept.")


def match_loudness(wave: Tensor, reference: Tensor) -> Tensor:
    """Scale ``wave`` to the RMS of ``reference``, never beyond a peak of 0.99.

    If reaching the reference RMS would push the peak above :data:`PEAK_LIMIT`, the gain is lowered so the
    peak is exactly 0.99 (quieter rather than clipped). A silent ``wave`` is returned unchanged.

    Args:
        wave: (L,) waveform.
        reference: (L',) waveform whose loudness to match.

    Returns:
        (L,) scaled waveform.
    """
    level = float(rms(wave.reshape(-1)))
    if level <= SILENT_RMS:
        return wave.clone()
    gain = float(rms(reference.reshape(-1))) / level
    peak = float(wave.abs().max())
    if peak * gain > PEAK_LIMIT:
        gain = PEAK_LIMIT / peak
    return wave * gain


def listen(transform: Transform, x: Tensor, saliency: Tensor, fraction: float, *, match: bool = True,
           gamma: float = 1.0) -> dict[str, Tensor]:
    """The four players of the dashboard, in one batched synthesis.

    Args:
        transform: the domain ``saliency`` lives in.
        x: (L,) waveform.
        saliency: (*M) map; ranked by signed value (positive evidence first, see module docstring).
        fraction: share of cells kept / removed, in [0, 1].
        match: scale keep/remove/soft to the original's RMS (:func:`match_loudness`) so a quieter
            version is not mistaken for a less important one.
        gamma: exponent of the soft mask.

    Returns:
        ``{"original", "keep", "remove", "soft"}`` → (L,) waveforms on ``x``'s device.
    """
    x2 = _check_map(transform, x, saliency)
    check_listenable(saliency)   # a NaN or all-zero map is never rendered
    top = topk_mask(saliency, fraction).to(x2.dtype)
    masks = torch.stack([top, 1 - top, soft_weights(saliency, gamma=gamma).to(x2.dtype)])
    keep, remove, soft = _masked(transform, x2, masks)
    out = {"original": x2[0], "keep": keep, "remove": remove, "soft": soft}
    if match:
        for key in ("keep", "remove", "soft"):
            out[key] = match_loudness(out[key], out["original"])
    return out


def keep_region(transform: Transform, x: Tensor, image_mask: Tensor) -> Tensor:
    """Waveform rebuilt from one region of the display grid only (click-a-region-to-hear).

    Args:
        transform: the domain.
        x: (L,) waveform.
        image_mask: (F, T) 0/1 on ``transform``'s display grid (see :func:`earmark.display.region_image`);
            it is taken to map space with ``transform.from_image``.

    Returns:
        (L,) waveform on ``x``'s device (not loudness-matched: a small box is meant to sound quiet).
    """
    x2 = x.reshape(1, -1).float()
    expected = tuple(transform.image_shape(x2.shape[-1]))
    if tuple(image_mask.shape) != expected:
        raise ConfigError(f"The region has shape {tuple(image_mask.shape)}; this clip's display grid is {expected}.")
    m = transform.from_image(image_mask.to(torch.float32)[None].cpu(), length=x2.shape[-1])[0]
    return _masked(transform, x2, m[None].clamp(0, 1))[0]
