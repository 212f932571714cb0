"""Synthetic ground-truth tasks: signals whose class-defining part is known, so localisation can be scored.

Two tasks at 8 kHz, 4,000 samples (0.5 s):

* :class:`FrequencyTask` — the frequency task of FreqRISE (Brüsch et al.): every clip is a sum of 10–50
  distractor sinusoids (random frequency, phase and amplitude) plus white noise, plus exactly two of four
  *key* sinusoids at fixed frequencies (440, 1060, 1780, 2620 Hz). The class is *which pair* of keys is
  present: the 6 two-element subsets of the 4 keys, so every class needs both of its keys (each key is
  shared by three classes). Key frequencies fall exactly on rFFT bins (2 Hz spacing) and distractors keep
  a 30 Hz guard band away from them, so in the Fourier domain the truth is exactly the two key bins.
* :class:`TimeFrequencyTask` — tone bursts on a 4 × 4 grid of cells (four 125 ms time slots × four
  frequencies 375, 750, 1500, 3000 Hz — one per octave, so each lies in its own DWT band). The diagonal
  cells (slot i, frequency i) are the keys; the class is which pair of keys is present (6 classes). The
  off-diagonal cells at least two octaves from their slot's key — (0,2), (0,3), (1,3), (2,0), (3,0), (3,1)
  — each hold a distractor burst with probability 0.5, so key frequencies 0, 2 and 3 also sound as
  distractors at other times and every slot holds distractors at other frequencies: neither a pure-time
  nor a pure-frequency explanation can be right. The two-octave gap keeps a distractor sharing a key's
  slot out of the key's neighbouring wavelet bands (short wavelets such as sym2 leak about one octave).

Both give :class:`SynthBatch` with the key components alone (``key_wave``), from which
:func:`true_mask` derives the ground truth in any domain (scored by
:func:`earmark.metrics.localisation.relevance_rank_accuracy`).

Example:
    >>> task = FrequencyTask()
    >>> batch = task.sample(4, generator=torch.Generator().manual_seed(0))
    >>> batch.wave.shape, batch.label.shape
    (torch.Size([4, 4000]), torch.Size([4]))
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch import Tensor

from ..errors import ConfigError

PAIRS: tuple[tuple[int, int], ...] = tuple(itertools.combinations(range(4), 2))


@dataclass(frozen=True)
class SynthBatch:
    """A batch drawn from a synthetic task (all on one device).

    Attributes:
        wave: (n, L) the clips: keys + distractors + noise.
        label: (n,) int64 class indices.
        key_wave: (n, L) the class-defining components alone.
        distractor_wave: (n, L) the distractor components alone (``wave − key_wave − distractor_wave``
            is the noise).
    """

    wave: Tensor
    label: Tensor
    key_wave: Tensor
    distractor_wave: Tensor


class SynthTask(Protocol):
    """What both tasks offer (see :class:`FrequencyTask`, :class:`TimeFrequencyTask`)."""

    name: str
    sample_rate: int
    num_samples: int

    @property
    def labels(self) -> tuple[str, ...]: ...

    def sample(self, n: int, *, generator: torch.Generator) -> SynthBatch: ...

    def config(self) -> dict: ...


def _uniform(shape: tuple[int, ...], low: float, high: float, *, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=generator.device)


def _pair_labels(n: int, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(n,) labels uniform over the 6 pairs and the (n, 4) 0/1 presence of each key."""
    label = torch.randint(len(PAIRS), (n,), generator=generator, device=generator.device)
    table = torch.zeros(len(PAIRS), 4, device=generator.device)
    for c, (i, j) in enumerate(PAIRS):
        table[c, i] = table[c, j] = 1.0
    return label, table[label]


@dataclass(frozen=True)
class FrequencyTask:
    """FreqRISE's synthetic frequency task (see the module docstring).

    Attributes:
        key_freqs: the four key frequencies in Hz (multiples of ``sample_rate / num_samples``).
        key_amplitude: keys' amplitude range (uniform).
        distractors: inclusive range of the number of distractor sinusoids per clip.
        distractor_amplitude: distractors' amplitude range (uniform).
        guard_hz: distractors stay at least this far from every key frequency.
        noise_std: std of the additive white Gaussian noise.
    """

    sample_rate: int = 8000
    num_samples: int = 4000
    key_freqs: tuple[float, ...] = (440.0, 1060.0, 1780.0, 2620.0)
    key_amplitude: tuple[float, float] = (0.8, 1.2)
    distractors: tuple[int, int] = (10, 50)
    distractor_amplitude: tuple[float, float] = (0.2, 1.0)
    guard_hz: float = 30.0
    noise_std: float = 0.5
    name: str = "frequency"

    def __post_init__(self):
        if len(self.key_freqs) != 4:
            raise ConfigError(f"The frequency task needs 4 key frequencies, got {len(self.key_freqs)}.")
        spacing = self.sample_rate / self.num_samples
        off_bin = [f for f in self.key_freqs if abs(f / spacing - round(f / spacing)) > 1e-9]
        if off_bin:
            raise ConfigError(f"Key frequencies {off_bin} are not multiples of the rFFT bin spacing "
                              f"{spacing:g} Hz; pick ones that are, so the Fourier truth is exact.")

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f"{self.key_freqs[i]:g}+{self.key_freqs[j]:g} Hz" for i, j in PAIRS)

    def config(self) -> dict:
        return asdict(self)

    def key_bins(self) -> Tensor:
        """(4,) rFFT bin index of each key frequency for a ``num_samples``-long clip."""
        return torch.tensor([round(f * self.num_samples / self.sample_rate) for f in self.key_freqs])

    def _distractor_freqs(self, shape: tuple[int, int], *, generator: torch.Generator) -> Tensor:
        """(n, m) frequencies in [20 Hz, Nyquist − 20 Hz] at least ``guard_hz`` from every key."""
        keys = torch.tensor(self.key_freqs, device=generator.device)
        freqs = _uniform(shape, 20.0, self.sample_rate / 2 - 20.0, generator=generator)
        for _ in range(100):  # redraw the few that fell into a guard band (≈ 3 % per round)
            bad = ((freqs[..., None] - keys).abs() < self.guard_hz).any(-1)
            if not bool(bad.any()):
                return freqs
            fresh = _uniform(shape, 20.0, self.sample_rate / 2 - 20.0, generator=generator)
            freqs = torch.where(bad, fresh, freqs)
        raise ConfigError("The guard bands leave too little room for distractors; lower guard_hz.")

    def sample(self, n: int, *, generator: torch.Generator) -> SynthBatch:
        """Draw ``n`` clips.

        Args:
            n: number of clips.
            generator: the only source of randomness; the batch is created on its device.

        Returns:
            A :class:`SynthBatch` with waves (n, L), labels (n,) in ``range(6)``, key and distractor waves.
        """
        dev = generator.device
        t = torch.arange(self.num_samples, device=dev) / self.sample_rate               # (L,)
        label, present = _pair_labels(n, generator=generator)                             # (n,), (n, 4)
        amp = _uniform((n, 4), *self.key_amplitude, generator=generator) * present
        phase = _uniform((n, 4), 0.0, 2 * math.pi, generator=generator)
        keys = torch.tensor(self.key_freqs, device=dev)
        key_wave = (amp[..., None] * torch.sin(2 * math.pi * keys[:, None] * t + phase[..., None])).sum(1)

        lo, hi = self.distractors
        count = torch.randint(lo, hi + 1, (n, 1), generator=generator, device=dev)
        d_freq = self._distractor_freqs((n, hi), generator=generator)
        d_amp = _uniform((n, hi), *self.distractor_amplitude, generator=generator)
        d_amp = d_amp * (torch.arange(hi, device=dev) < count)                          # first `count` used
        d_phase = _uniform((n, hi), 0.0, 2 * math.pi, generator=generator)
        distractor_wave = torch.zeros(n, self.num_samples, device=dev)
        for k in range(hi):  # one (n, L) slice at a time keeps memory at O(nL)
            distractor_wave += d_amp[:, k, None] * torch.sin(2 * math.pi * d_freq[:, k, None] * t
                                                              + d_phase[:, k, None])
        noise = self.noise_std * torch.randn(n, self.num_samples, generator=generator, device=dev)
        return SynthBatch(key_wave + distractor_wave + noise, label, key_wave, distractor_wave)


@dataclass(frozen=True)
class TimeFrequencyTask:
    """Tone bursts on a time × frequency grid (see the module docstring).

    Attributes:
        freqs: the four cell frequencies in Hz (one per DWT octave band at 8 kHz).
        slots: number of equal time slots (one per frequency: the keys sit on the diagonal).
        burst_fraction: share of a slot a burst lasts (Hann envelope, centred in the slot).
        key_amplitude: keys' amplitude range.  distractor_amplitude: distractors' amplitude range.
        distractor_prob: chance that each distractor cell holds a burst.
        min_octaves: distractor cells lie at least this many grid steps (octaves) from the key frequency
            of their slot (2: six cells (0,2), (0,3), (1,3), (2,0), (3,0), (3,1); 1: all 12 off-diagonal).
        noise_std: std of the additive white Gaussian noise.
    """

    sample_rate: int = 8000
    num_samples: int = 4000
    freqs: tuple[float, ...] = (375.0, 750.0, 1500.0, 3000.0)
    burst_fraction: float = 0.8
    key_amplitude: tuple[float, float] = (0.8, 1.2)
    distractor_amplitude: tuple[float, float] = (0.6, 1.4)
    distractor_prob: float = 0.5
    min_octaves: int = 2
    noise_std: float = 0.1
    name: str = "time-frequency"

    def __post_init__(self):
        if len(self.freqs) != 4:
            raise ConfigError(f"The time–frequency task needs 4 cell frequencies, got {len(self.freqs)}.")
        if not 0.0 < self.burst_fraction <= 1.0:
            raise ConfigError(f"burst_fraction must lie in (0, 1], got {self.burst_fraction}.")

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f"cells {i}+{j}" for i, j in PAIRS)

    def config(self) -> dict:
        return asdict(self)

    def distractor_cells(self, device=None) -> Tensor:
        """(4, 4) bool: (slot, freq) cells that may hold a distractor — at least ``min_octaves`` from the key
        of that slot, so no distractor shares a key's time slot *and* its (DWT) octave neighbourhood."""
        i = torch.arange(4, device=device)
        return (i[:, None] - i[None, :]).abs() >= self.min_octaves

    def slot_bounds(self) -> list[tuple[int, int]]:
        """[(start, stop)) sample range of each of the 4 bursts' slots."""
        width = self.num_samples // 4
        return [(s * width, (s + 1) * width) for s in range(4)]

    def burst(self, slot: int, *, device=None) -> tuple[Tensor, Tensor]:
        """The (L,) Hann envelope of a burst in ``slot`` and the (L,) time axis in seconds."""
        start, stop = self.slot_bounds()[slot]
        length = int(round((stop - start) * self.burst_fraction))
        offset = start + (stop - start - length) // 2
        env = torch.zeros(self.num_samples, device=device)
        env[offset: offset + length] = torch.hann_window(length, periodic=False, device=device)
        return env, torch.arange(self.num_samples, device=device) / self.sample_rate

    def _cells(self, amp: Tensor, phase: Tensor) -> Tensor:
        """(n, 4, 4) amplitudes and phases per (slot, freq) cell → (n, L) sum of the bursts.

        ``sin(ωt + φ) = sin(ωt)·cos φ + cos(ωt)·sin φ``: two small matrix products with the 16 enveloped
        sine and cosine bursts.
        """
        dev = amp.device
        rows_sin, rows_cos = [], []
        for s in range(4):
            env, t = self.burst(s, device=dev)
            for freq in self.freqs:
                rows_sin.append(env * torch.sin(2 * math.pi * freq * t))
                rows_cos.append(env * torch.cos(2 * math.pi * freq * t))
        a, p = amp.flatten(1), phase.flatten(1)
        return (a * torch.cos(p)) @ torch.stack(rows_sin) + (a * torch.sin(p)) @ torch.stack(rows_cos)

    def sample(self, n: int, *, generator: torch.Generator) -> SynthBatch:
        """Draw ``n`` clips.

        Args:
            n: number of clips.
            generator: the only source of randomness; the batch is created on its device.

        Returns:
            A :class:`SynthBatch` with waves (n, L), labels (n,) in ``range(6)``, key and distractor waves.
        """
        dev = generator.device
        label, present = _pair_labels(n, generator=generator)                              # (n, 4)
        key_amp = torch.diag_embed(present * _uniform((n, 4), *self.key_amplitude, generator=generator))
        on = torch.rand((n, 4, 4), generator=generator, device=dev) < self.distractor_prob
        d_amp = _uniform((n, 4, 4), *self.distractor_amplitude, generator=generator) * (on & self.distractor_cells(dev))
        phase = _uniform((n, 4, 4), 0.0, 2 * math.pi, generator=generator)
        key_wave = self._cells(key_amp, phase)
        distractor_wave = self._cells(d_amp, phase)
        noise = self.noise_std * torch.randn(n, self.num_samples, generator=generator, device=dev)
        return SynthBatch(key_wave + distractor_wave + noise, label, key_wave, distractor_wave)


    # ---- the task's own (time slot, frequency band) cells, for cell-level localisation -----------------
    def band_edges(self) -> Tensor:
        """(5,) edges in Hz of the four frequency bands, one octave around each cell frequency.

        Band ``i`` is ``[2f_i/3, 4f_i/3)`` for octave-spaced frequencies: the edges between neighbours are
        their harmonic mean ``2 f_i f_{i+1} / (f_i + f_{i+1})``, the outer edges ``2f_0/3`` and ``4f_3/3``
        (capped at Nyquist). With the defaults they are 250, 500, 1000, 2000, 4000 Hz — exactly the DWT
        bands D4, D3, D2, D1 at 8 kHz, so a wavelet level never straddles two task bands.
        """
        f = torch.tensor(self.freqs, dtype=torch.float64)
        inner = 2 * f[1:] * f[:-1] / (f[1:] + f[:-1])
        top = min(4 * float(f[-1]) / 3, self.sample_rate / 2)
        return torch.cat([(2 * f[:1] / 3), inner, torch.tensor([top], dtype=torch.float64)])

    def slot_edges(self) -> Tensor:
        """(5,) edges in seconds of the four time slots."""
        bounds = self.slot_bounds()
        return torch.tensor([b[0] for b in bounds] + [bounds[-1][1]], dtype=torch.float64) / self.sample_rate

    def cell_weights(self, transform, length: int | None = None) -> Tensor:
        """(16, F, T) weight of every image cell of ``transform`` in each task cell (slot-major: slot·4 + band).

        An image cell belongs to task cell (slot s, band b) when its time centre (``transform.axes``) lies
        in slot ``s`` and its frequency centre in band ``b`` (:meth:`band_edges`; the last slot and band
        include their upper edge). Image cells outside every band (below 250 Hz: DWT A5 and D5, the lowest
        STFT bins) belong to none. Where :meth:`~earmark.transforms.Transform.to_image` shows a map cell more
        than once (the DWT stretches coarse levels over the columns), each copy weighs ``1/copies``, so
        every map cell counts once in total, whatever its level.
        """
        length = self.num_samples if length is None else int(length)
        axes = transform.axes(length)
        shape = transform.map_shape(length)
        probe = torch.zeros((1, *shape), dtype=torch.float64, requires_grad=True)
        with torch.enable_grad():
            transform.to_image(probe, length=length).sum().backward()  # adjoint on ones = copies per map cell
        copies = transform.to_image(probe.grad.detach(), length=length)[0]  # (F, T) copies of the cell shown
        share = torch.where(copies > 0, 1.0 / copies.clamp_min(1e-12), torch.zeros_like(copies))

        def bucket(values: Tensor, edges: Tensor) -> Tensor:  # index of the bin, -1 outside
            idx = torch.bucketize(values.to(torch.float64), edges, right=True) - 1
            idx = torch.where(values.to(torch.float64) == edges[-1], torch.full_like(idx, len(edges) - 2), idx)
            return torch.where((idx >= 0) & (idx < len(edges) - 1), idx, torch.full_like(idx, -1))

        band = bucket(axes.freqs, self.band_edges())            # (F,)
        slot = bucket(axes.times, self.slot_edges())            # (T,)
        weights = torch.zeros(16, *share.shape, dtype=torch.float64)
        for s in range(4):
            for b in range(4):
                inside = (band[:, None] == b) & (slot[None, :] == s)
                weights[s * 4 + b] = share * inside
        return weights

    def footprints(self, transform, length: int | None = None) -> Tensor:
        """(16,) number of map cells a lone unit burst in each task cell occupies (its :func:`true_mask`).

        Constant in the STFT (a tone line is a few bins wide whatever the band), growing with the band in
        the DWT (a tone fills its whole wavelet level, and finer levels have more coefficients per second).
        """
        length = self.num_samples if length is None else int(length)
        if length != self.num_samples:
            raise ConfigError(f"Footprints need clips of the task's length {self.num_samples}, got {length}.")
        amp = torch.eye(16, dtype=torch.float32).view(16, 4, 4)
        return true_mask(transform, self._cells(amp, torch.zeros_like(amp))).flatten(1).sum(1).to(torch.float64)

    def cell_scores(self, transform, saliency: Tensor, length: int | None = None, *,
                    centre: bool = True, per_footprint: bool = True) -> Tensor:
        """Aggregate maps into the task's 4 × 4 grid: (n, *M) → (n, 16), index ``slot·4 + band``.

        Score of a task cell = sum over the map cells in it (:meth:`cell_weights`) of the *positive part*
        of the saliency, after subtracting the map's median when ``centre`` (default):

        * positive part, not ``|saliency|``: the truth is where the evidence *for* the explained class
          lies; a signed map (IG) puts negative relevance on what argues against the class (e.g. a
          distractor looking like another key), which must not count as finding a key.
        * median: the sampling methods' maps sit on an offset (every cell of a FreqRISE map is about the
          mean score of all masks; RELAX's about the mean similarity), and the task bands hold different
          numbers of map cells (an octave is 8 STFT bins at 375 Hz and 64 at 3 kHz), so a plain sum of
          the offset would rank the widest band first whatever the explainer says. Most map cells lie in
          no burst, so the median is the map's "nothing here" level; for maps that are already zero
          there (IG, learned masks) it changes little.
        * divided by the cell's :meth:`footprints` (when ``per_footprint``): saliency per map cell a key
          burst there would occupy. In the STFT every footprint is the same (a plain sum); in the DWT a
          tone fills its whole level and D1 has 8× the coefficients of D4, so a plain sum would favour the
          fine levels for any map that spreads over a level.

        Args:
            transform: the map's domain.  saliency: (n, *M) or (*M) maps.
            length: clip length in samples (default ``num_samples``).  centre: subtract the per-map median.
            per_footprint: divide by :meth:`footprints`.

        Returns:
            (n, 16) float64 scores (n = 1 for a single map).
        """
        length = self.num_samples if length is None else int(length)
        shape = tuple(transform.map_shape(length))
        v = saliency.detach().real.to(torch.float64).cpu()
        v = v.reshape(-1, *shape)
        if centre:
            v = v - v.flatten(1).median(1).values.view(-1, *(1,) * len(shape))
        image = transform.to_image(v.clamp_min(0), length=length)  # (n, F, T)
        weights = self.cell_weights(transform, length)              # (16, F, T)
        scores = torch.einsum("nft,cft->nc", image, weights)
        return scores / self.footprints(transform, length) if per_footprint else scores

    @staticmethod
    def true_cells(label: Tensor) -> Tensor:
        """(n,) class labels → (n, 16) bool: the two present key cells (slot i, band i) — index ``i·4 + i``."""
        pairs = torch.tensor(PAIRS, device=label.device)[label]     # (n, 2)
        truth = torch.zeros(label.shape[0], 16, dtype=torch.bool, device=label.device)
        return truth.scatter(1, pairs * 5, True)


TASKS: dict[str, type] = {"frequency": FrequencyTask, "time-frequency": TimeFrequencyTask}


def true_mask(transform, key_wave: Tensor, *, energy: float = 0.9) -> Tensor:
    """The ground-truth cells: the fewest map cells holding ``energy`` of the key components' energy.

    The energy per cell is ``transform.pool(|transform.analyze(key_wave)|²)``, so the truth exists in
    every domain (time, fourier, stft, mel, dwt) and in its map space.

    Args:
        transform: a :class:`~earmark.transforms.Transform`.
        key_wave: (n, L) the class-defining components alone.
        energy: share of the key energy the mask must hold, in (0, 1].

    Returns:
        (n, *M) bool mask, at least one cell per clip with key energy.

    Raises:
        ConfigError: ``energy`` outside (0, 1].
    """
    if not 0.0 < energy <= 1.0:
        raise ConfigError(f"energy must lie in (0, 1], got {energy}.")
    with torch.no_grad():
        power = transform.pool(transform.analyze(key_wave).abs() ** 2).to(torch.float64)
    flat = power.flatten(1)
    values, order = flat.sort(dim=1, descending=True, stable=True)
    cum = values.cumsum(1)
    # number of cells needed: first position where the running sum reaches the target, plus one
    need = (cum < energy * cum[:, -1:] * (1 - 1e-9)).sum(1, keepdim=True) + 1
    keep = torch.arange(flat.shape[1], device=flat.device) < need
    keep &= values > 0
    mask = torch.zeros_like(keep).scatter(1, order, keep)
    return mask.view(power.shape)


__all__ = ["FrequencyTask", "PAIRS", "SynthBatch", "SynthTask", "TASKS", "TimeFrequencyTask", "true_mask"]
