"""FLEXtime: filterbank masks learned by gradient descent (Brüsch et al. 2024, "FLEXtime: Filterbank learning to
explain time series").

The clip is split by a bank of ``n_filters`` FIR band filters (``scipy.signal.firwin``, ``numtaps`` taps, equal
bandwidth ``(fs/2)/n_filters``: a low-pass, band-passes, a high-pass), each band aligned by the filters' group
delay (a causal filter, then a circular shift of ``(numtaps − 1)/2`` samples back, as the reference code does).
A weight ``m_i ∈ [0, 1]`` per band is learned so that ``Σ_i m_i·band_i`` keeps the explained class::

    L(m) = CE(softmax f(Σ_i m_i band_i), ŷ) + λ·max(mean m − r, 0) + λ_T·mean_i |m_{i+1} − m_i|

with SGD (learning rate 1, momentum 1), ``m`` clamped to [0, 1] after each step, the smoothness term over
neighbouring filters switched on after 10 steps (pairs ``i = 0…n−3``, as in the reference code), and the
cross-entropy taken on the softmax output (the reference code's ``CrossEntropyLoss(softmax(·))``;
``loss="logits"`` takes it on the logits instead). Defaults are the reference repository's (``main.py`` and
``compute_attribution.py``): 128 filters, 51 taps, r = 0.1, λ = 1, λ_T = 1, 1,000 steps, mask initialised at
0.5.

The map lives in the Fourier domain: the importance of rFFT bin ``k`` is the masked filterbank's gain there,
``Σ_i m_i |H_i(f_k)|`` (``H_i`` on the clip's own rFFT bins).

Uncertainty: restart 0 starts from the paper's constant 0.5; the others from ``0.5 + init_noise·U(−½, ½)``
per band (from the explicit generator); all restarts are one batch. Saliency = the mean of the restarts' maps,
uncertainty = their population standard deviation (0 with one restart).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..method_passes import PASSES
from ..params import Param
from ..probe import Probe, ProgressFn, no_progress
from .base import Attribution, ExplainerSpec, PlotSpec, draw_std

PARAMS = (
    Param("n_filters", 128, "band filters (equal bandwidth (fs/2)/n)", low=2, high=1024, step=1),
    Param("numtaps", 51, "taps per FIR filter (odd)", low=3, high=2001, step=2),
    Param("keep_ratio", 0.1, "r: mean mask value allowed before the size penalty starts", low=0.0, high=1.0, step=0.01),
    Param("reg_strength", 1.0, "λ: weight of the size penalty", low=0.0, high=100.0, step=0.1),
    Param("smooth_strength", 1.0, "λ_T: weight of the smoothness over neighbouring filters (from step 10)",
          low=0.0, high=100.0, step=0.1),
    Param("steps", 1000, "SGD steps (one batched forward + backward over all restarts each)", low=1, high=5000,
          step=1),
    Param("lr", 1.0, "SGD learning rate", low=1e-4, high=10.0, log=True),
    Param("momentum", 1.0, "SGD momentum (the reference code's 1.0)", low=0.0, high=1.0, step=0.05),
    Param("restarts", 3, "initialisations optimised together; their spread is the uncertainty", low=1, high=32, step=1),
    Param("init_noise", 0.2, "spread of the other restarts' initial masks around 0.5", low=0.0, high=1.0, step=0.01),
    Param("loss", "reference", "cross-entropy on the softmax output (reference code) or on the logits",
          choices=("reference", "logits")),
)


def fir_bank(n_filters: int, numtaps: int, sample_rate: int) -> np.ndarray:
    """(n_filters, numtaps) FIR taps: a low-pass, ``n_filters − 2`` band-passes, a high-pass, equal bandwidth."""
    from scipy import signal

    if numtaps % 2 == 0:
        raise ConfigError(f"FLEXtime needs an odd number of filter taps; got {numtaps}.")
    width = (sample_rate / 2) / n_filters
    taps = [signal.firwin(numtaps, width, fs=sample_rate, pass_zero="lowpass")]
    start = width
    for _ in range(1, n_filters - 1):
        taps.append(signal.firwin(numtaps, [start, start + width], fs=sample_rate, pass_zero="bandpass"))
        start += width
    taps.append(signal.firwin(numtaps, start, fs=sample_rate, pass_zero="highpass"))
    return np.stack(taps)


def filter_bands(x: Tensor, taps: Tensor) -> Tensor:
    """(L,) clip, (n, K) taps → (n, L) bands: causal FIR filtering, shifted back by the group delay (circularly)."""
    k = taps.shape[-1]
    padded = F.pad(x.reshape(1, 1, -1), (k - 1, 0))
    bands = F.conv1d(padded, taps.flip(-1)[:, None].to(x))[0]                # y[t] = Σ_j h[j] x[t − j]
    return torch.roll(bands, -((k - 1) // 2), dims=-1)


def gains(taps: Tensor, length: int) -> Tensor:
    """(n, K) taps → (n, length//2 + 1) magnitude responses on the rFFT bins of a ``length``-sample clip."""
    return torch.fft.rfft(taps, n=length).abs()


def explain_flextime(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                     n_filters: int = 128, numtaps: int = 51, keep_ratio: float = 0.1, reg_strength: float = 1.0,
                     smooth_strength: float = 1.0, steps: int = 1000, lr: float = 1.0, momentum: float = 1.0,
                     restarts: int = 3, init_noise: float = 0.2, loss: str = "reference") -> Attribution:
    """Learn the band weights (all restarts in one batch) and return their Fourier-domain gain maps.

    Returns:
        Attribution with saliency (K,) the mean gain map over restarts, uncertainty (K,) its std, extras
        ``band_masks`` (R, n_filters), ``loss_curve`` (steps, R), ``band_edges`` (n_filters + 1,) in Hz.
    """
    report = progress or no_progress
    device = probe.device
    taps = torch.as_tensor(fir_bank(n_filters, numtaps, probe.transform.sample_rate), dtype=torch.float32,
                           device=device)
    bands = filter_bands(probe.x[0], taps)                                    # (n, L)
    init = torch.full((restarts, n_filters), 0.5, device=device)
    if restarts > 1:
        jitter = torch.rand((restarts - 1, n_filters), generator=generator, device=generator.device).to(device)
        init[1:] = (0.5 + init_noise * (jitter - 0.5)).clamp(0, 1)
    mask = init.clone().requires_grad_(True)
    optimiser = torch.optim.SGD([mask], lr=lr, momentum=momentum)
    target = torch.full((restarts,), probe.target, device=device, dtype=torch.long)
    curve = torch.empty((steps, restarts), device=device)
    with torch.enable_grad():
        for step in range(steps):
            optimiser.zero_grad()
            logits = probe.model(mask @ bands)                                 # (R, C)
            scores = probe.activate(logits) if loss == "reference" else logits
            ce = F.cross_entropy(scores, target, reduction="none")             # (R,)
            size = (mask.abs().mean(1) - keep_ratio).clamp_min(0)
            smooth = (mask[:, 1:-1] - mask[:, :-2]).abs().mean(1) if step >= 10 else torch.zeros_like(size)
            per_restart = ce + reg_strength * size + smooth_strength * smooth
            per_restart.sum().backward()       # restarts are independent: each gets its own gradient
            optimiser.step()
            with torch.no_grad():
                mask.clamp_(0, 1)
            curve[step] = per_restart.detach()
            probe.forward_passes += restarts
            probe.backward_passes += restarts
            if step % 10 == 9 or step == steps - 1:
                report((step + 1) / steps, "FLEXtime")
    final = mask.detach()
    maps = final @ gains(taps, probe.length)                                   # (R, K)
    maps = probe.transform.pool(maps)
    spread = draw_std(maps, correction=0)
    edges = torch.arange(n_filters + 1, device=device, dtype=torch.float32) * (probe.transform.sample_rate / 2 / n_filters)
    return Attribution(maps.mean(0), spread, {"band_masks": final, "loss_curve": curve, "band_edges": edges})


SPEC = ExplainerSpec(
    name="flextime",
    passes=PASSES["flextime"],
    budget=("steps", "restarts"),
    title="FLEXtime (filterbank masks)",
    fn=explain_flextime,
    params=PARAMS,
    family="optimisation",
    uncertainty="Standard deviation over the restarts (the reference's 0.5 start and jittered starts) of the "
                "masked filterbank's gain per frequency bin.",
    reference="Brüsch, Wickstrøm, Schmidt, Jenssen & Alstrøm 2024, FLEXtime: Filterbank learning to explain "
              "time series",
    domains=("fourier",),
    default_transform="fourier",
    plots=(PlotSpec("loss_curve", "line", "Training loss per restart", "SGD step", "Loss"),),
)
