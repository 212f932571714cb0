"""Decisive-region tasks: a model whose answer is the energy of one time–frequency region, and louder
distractors elsewhere — a ground truth for "does the map find the region?" in every domain.

Class 0's logit is ``4·E_R(x)/E_R(x_clip) − 2`` (class 1's is 0), with ``E_R`` the energy of an STFT box
(a band × a time span) of the clip: σ(2) = 0.88 on the clip, 0.12 when the box is silent. The clip is a
burst inside the box (sin²-windowed tone) plus louder distractors: the same band at another time, another
band at the same time, and a long tone in a third band, with a little noise.

The true cells of a domain are the cells whose content the model reads (:func:`truth_cells`): the cells
whose atom (the coefficient synthesised alone) puts at least half the best cell's share of its energy in the
box, and the cells holding 95 % of the energy of the clip's in-box part. That is the box in the STFT, the
mel bands and frames over it, in the DWT the coefficients over its span in the level(s) of its band, and in
time (which cannot resolve frequency) its span.

:func:`region_share` is the score: the share of the top-2 % cells' saliency mass that lies on the true
cells, with ties at the cut shared evenly (a mask method that ends with many cells at exactly 1 is not
scored by the order in which a sort happens to return equal values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

SR, LENGTH, NFFT, HOP = 8000, 4096, 128, 32


@dataclass(frozen=True)
class Placement:
    """One region: a tone at ``freq`` Hz from ``t0`` to ``t1`` s inside the STFT box ``band`` × [t0, t1],
    and the distractors' frequencies (same band later/earlier, another band at the same time, a long tone)."""

    name: str
    freq: float
    t0: float
    t1: float
    band: tuple[float, float]
    other_time: tuple[float, float]
    other_freq: float
    tone_freq: float


#: Placements over the DWT levels at 8 kHz (sym2, level 5: D1 2–4 kHz, D2 1–2, D3 0.5–1, D4 250–500 Hz,
#: D5 125–250 Hz) and over time; "edge" ones straddle a level boundary (the region spans two levels).
PLACEMENTS: tuple[Placement, ...] = (
    Placement("D1 early", 3000.0, 0.08, 0.14, (2750.0, 3250.0), (0.30, 0.38), 750.0, 180.0),
    Placement("D2 middle", 1500.0, 0.20, 0.26, (1375.0, 1625.0), (0.32, 0.40), 3000.0, 600.0),
    Placement("D2|D3 edge late", 1000.0, 0.36, 0.44, (875.0, 1125.0), (0.08, 0.16), 3000.0, 300.0),
    Placement("D3 early", 700.0, 0.05, 0.15, (562.5, 812.5), (0.28, 0.38), 1500.0, 3000.0),
    Placement("D4 middle", 375.0, 0.18, 0.32, (250.0, 500.0), (0.36, 0.48), 1500.0, 3000.0),
    Placement("D4|D5 edge late", 250.0, 0.28, 0.46, (187.5, 312.5), (0.04, 0.20), 1000.0, 3000.0),
    Placement("D5 early", 180.0, 0.04, 0.24, (125.0, 250.0), (0.30, 0.48), 1500.0, 3000.0),
)


def burst(freq: float, t0: float, t1: float, amp: float, *, length: int = LENGTH, sample_rate: int = SR) -> Tensor:
    """(length,) tone of ``freq`` Hz under a sin² window from ``t0`` to ``t1`` s, peak amplitude ``amp``."""
    n = torch.arange(length, dtype=torch.float64) / sample_rate
    inside = ((n >= t0) & (n < t1)).double()
    env = inside * torch.sin(math.pi * ((n - t0) / (t1 - t0)).clamp(0, 1)) ** 2
    return (amp * env * torch.sin(2 * math.pi * freq * n)).float()


class RegionEnergy(torch.nn.Module):
    """(B, L) waveforms → (B, 2) logits: ``[4·E_R/ref − 2, 0]`` with ``E_R`` the STFT box's energy."""

    def __init__(self, band: tuple[float, float], span: tuple[float, float], *, ref: float = 1.0,
                 sample_rate: int = SR, n_fft: int = NFFT, hop: int = HOP):
        super().__init__()
        self.register_buffer("win", torch.hann_window(n_fft))
        bin_hz, frame_s = sample_rate / n_fft, hop / sample_rate
        self.rows = slice(math.ceil(band[0] / bin_hz), math.floor(band[1] / bin_hz) + 1)
        self.cols = slice(math.ceil(span[0] / frame_s), math.floor(span[1] / frame_s) + 1)
        self.n_fft, self.hop, self.ref = n_fft, hop, ref

    def energy(self, x: Tensor) -> Tensor:
        s = torch.stft(x, self.n_fft, self.hop, window=self.win, return_complex=True, center=True)
        return s[:, self.rows, self.cols].abs().pow(2).sum((-2, -1))

    def forward(self, x: Tensor) -> Tensor:
        e = self.energy(x)
        return torch.stack([4.0 * e / self.ref - 2.0, torch.zeros_like(e)], -1)


@dataclass(frozen=True)
class RegionTask:
    """A built placement: the model (an EarmarkModel) around ``net``, the clip (L,) and the in-box burst
    alone (L,)."""

    placement: Placement
    model: object
    net: RegionEnergy
    wave: Tensor
    region: Tensor


def region_task(placement: Placement, *, noise: float = 0.01, seed: int = 0) -> RegionTask:
    """The model and clip of ``placement``: the burst (0.3) and louder distractors (0.6, 0.6, 0.5)."""
    from ..models.base import from_module

    p = placement
    region = burst(p.freq, p.t0, p.t1, 0.3)
    x = (region + burst(p.freq, *p.other_time, 0.6) + burst(p.other_freq, p.t0 - 0.02, p.t1 + 0.02, 0.6)
         + burst(p.tone_freq, 0.02, 0.50, 0.5))
    x = x + noise * torch.randn(LENGTH, generator=torch.Generator().manual_seed(seed))
    net = RegionEnergy(p.band, (p.t0, p.t1))
    with torch.no_grad():
        net.ref = float(net.energy(x[None])[0])
    model = from_module(net, sample_rate=SR, num_samples=LENGTH, labels=["region", "other"])
    return RegionTask(p, model, net, x, region)


def truth_cells(transform, task: "RegionTask", *, share: float = 0.5, energy: float = 0.95,
                chunk: int = 512) -> Tensor:
    """(*M) bool: the map cells of ``transform`` whose content the model reads — the region in that domain:
    the cells that resolve the box (below) and the cells that carry ``energy`` of what the model reads
    (:func:`energy_cells` of :func:`in_box`).

    Every coefficient ``j`` of the domain has an atom ``a_j = W⁻¹(e_j)``; the model reads the part of an atom
    that falls in its STFT box, ``in_j = ‖P_box STFT(a_j)‖²`` of ``tot_j = ‖STFT(a_j)‖²``. A map cell ``i``
    covers coefficients with the weights ``w_ij = lift(e_i)_j`` (one coefficient in the STFT, DWT and time
    domains, a mel band's bins in the mel domain) and belongs to the region when
    ``Σ_j w_ij in_j / Σ_j w_ij tot_j`` is at least ``share`` of the best cell's (relative, since a DWT level
    is an octave wide and sees a box narrower than its band only in part). A waveform domain (``time``)
    cannot resolve frequency: there the box counts over all frequencies, i.e. the region is its time span.

    Args:
        transform: the domain, for clips of the task's length.  task: the built placement.
        share: the part of the best cell's in-box fraction a cell must reach.
        energy: the share of the in-box signal's energy whose cells are added.  chunk: atoms per batch.
    """
    net, length = task.net, task.wave.shape[-1]
    coeffs = transform.analyze(torch.zeros(1, length))
    n = coeffs[0].numel()
    box = torch.zeros(net.n_fft // 2 + 1, length // net.hop + 1)
    box[:, net.cols] = 1
    if transform.name != "time":
        box[: net.rows.start] = 0
        box[net.rows.stop:] = 0
    inside, total = torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)
    with torch.no_grad():
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            e = torch.zeros(hi - lo, n, dtype=coeffs.dtype)
            e[torch.arange(hi - lo), torch.arange(lo, hi)] = 1
            atoms = transform.synthesize(e.view(hi - lo, *coeffs.shape[1:]), length)
            power = torch.stft(atoms.float(), net.n_fft, net.hop, window=net.win, return_complex=True,
                               center=True).abs().pow(2).double()
            inside[lo:hi], total[lo:hi] = (power * box).sum((-2, -1)), power.sum((-2, -1))
        shape = transform.map_shape(length)
        cells = math.prod(shape)
        num, den = torch.empty(cells, dtype=torch.float64), torch.empty(cells, dtype=torch.float64)
        for lo in range(0, cells, chunk):
            hi = min(cells, lo + chunk)
            e = torch.zeros(hi - lo, cells)
            e[torch.arange(hi - lo), torch.arange(lo, hi)] = 1
            w = transform.lift(e.view(hi - lo, *shape)).reshape(hi - lo, -1).double()
            w = w.expand(hi - lo, n) if w.shape[-1] == 1 else w
            num[lo:hi], den[lo:hi] = w @ inside, w @ total
    frac = num / den.clamp_min(1e-30)
    return (frac >= share * frac.max()).view(shape) | energy_cells(transform, in_box(task), share=energy)


def in_box(task: "RegionTask") -> Tensor:
    """(L,) the part of the clip the model reads: its STFT with every cell outside the box zeroed, inverted."""
    net = task.net
    s = torch.stft(task.wave[None], net.n_fft, net.hop, window=net.win, return_complex=True, center=True)
    keep = torch.zeros_like(s.real)
    keep[:, net.rows, net.cols] = 1
    return torch.istft(s * keep, net.n_fft, net.hop, window=net.win, center=True, length=task.wave.shape[-1])[0]


def energy_cells(transform, x: Tensor, *, share: float = 0.95) -> Tensor:
    """(*M) bool: the fewest map cells of ``transform`` holding ``share`` of the energy of ``x`` (L,)."""
    power = transform.pool((transform.analyze(x[None]).abs() ** 2).real)[0].flatten()
    order = power.argsort(descending=True)
    cum = power[order].cumsum(0) / power.sum()
    cells = torch.zeros_like(power, dtype=torch.bool)
    cells[order[: int((cum < share).sum()) + 1]] = True
    return cells.view(transform.map_shape(x.shape[-1]))


def region_share(saliency: Tensor, truth: Tensor, *, top: float = 0.02) -> float:
    """Share of the top-``top`` cells' saliency mass on ``truth`` cells, ties at the cut shared evenly.

    The top set is the ``k = round(top·n)`` (≥ 1) cells of largest saliency (negative values count as 0). Cells above
    the k-th value are in it; the ``m`` cells equal to the k-th value fill the remaining ``k − above`` places
    with weight ``(k − above)/m`` each, so the score does not depend on how a sort orders equal values.

    Args:
        saliency: (*M) map.  truth: (*M) bool.  top: share of cells in the top set.

    Returns:
        A number in [0, 1] (0 when the top cells carry no positive mass).
    """
    s = saliency.detach().flatten().double().clamp_min(0)
    t = truth.flatten().to(s.device)
    k = max(1, int(round(top * s.numel())))
    cut = s.topk(k).values[-1]
    above, tied = s > cut, s == cut
    weight = above.double() + tied.double() * (k - int(above.sum())) / int(tied.sum())
    mass = (weight * s).sum()
    return float((weight * s * t).sum() / mass) if float(mass) > 0 else 0.0
