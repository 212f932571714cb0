"""The cooperative game of segments: a coalition of players (segments, or segment × band) → the model's score.

A coalition keeps its players' part of the clip and replaces the other players' parts by a declared
replacement (silence, noise at the segment's level, or the recording's own background). What lies outside
every segment (the pauses between words) is the *rest*: kept in every coalition (``rest="keep"``, the
default: context, not a player) or replaced in every coalition (``rest="replace"``). Coalitions are batches
of map-space masks through :meth:`earmark.probe.Probe.score`, built on the device chunk by chunk.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..probe import Probe, Readout
from ..transforms import STFTTransform, Transform, get_transform
from .base import Segments, frame_levels

Replacement = Literal["silence", "noise", "background"]
REPLACEMENTS: tuple[str, ...] = ("silence", "noise", "background")
#: Coalitions per block of masks built at once (the probe chunks the model calls within a block).
BLOCK = 256


def _level_envelope(x: Tensor, bounds: tuple[np.ndarray, np.ndarray]) -> Tensor:
    """(L,) RMS of ``x`` within each span, laid over the span's samples; the RMS outside all spans elsewhere."""
    a, b = bounds
    inside = torch.zeros_like(x, dtype=torch.bool)
    env = torch.empty_like(x)
    for lo, hi in zip(a.tolist(), b.tolist()):
        inside[lo:hi] = True
    rest = x[~inside]
    env[:] = rest.pow(2).mean().sqrt() if rest.numel() else 0.0
    for lo, hi in zip(a.tolist(), b.tolist()):
        env[lo:hi] = x[lo:hi].pow(2).mean().sqrt()
    return env


def background(x: Tensor, rate: int, generator: torch.Generator, *, frame: float = 0.02,
               quantile: float = 0.2) -> Tensor:
    """(L,) the recording's own background: its quietest ``quantile`` of frames joined and tiled to L samples
    from a random offset (drawn from ``generator``)."""
    hop = max(1, int(round(frame * rate)))
    levels = torch.as_tensor(frame_levels(x, rate, frame))
    quiet = torch.nonzero(levels <= torch.quantile(levels, quantile)).flatten().tolist()
    pieces = [x[i * hop:(i + 1) * hop] for i in quiet]
    bed = torch.cat([p for p in pieces if p.numel()]) if pieces else torch.zeros(1, dtype=x.dtype, device=x.device)
    offset = int(torch.randint(bed.numel(), (1,), generator=generator, device=generator.device))
    reps = (x.numel() + offset) // bed.numel() + 1
    return bed.repeat(reps)[offset:offset + x.numel()]


def replacement_wave(x: Tensor, segments: Segments, rate: int, kind: Replacement,
                     generator: torch.Generator) -> Tensor:
    """(L,) what replaces a removed segment: ``silence`` (zeros), ``noise`` (white noise at each segment's own
    RMS level, at the level outside the segments elsewhere), ``background`` (:func:`background`)."""
    if kind == "silence":
        return torch.zeros_like(x)
    if kind == "noise":
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
        return noise * _level_envelope(x, segments.sample_bounds(rate, x.numel()))
    if kind == "background":
        return background(x, rate, generator).to(x.device)
    raise ConfigError(f"Unknown replacement '{kind}'. Use one of: {', '.join(REPLACEMENTS)}.")


class SegmentGame:
    """The value of every coalition of players, scored through the probe.

    Args:
        probe: the clip and model in the domain of the players' masks (``time`` or ``stft``).
        players: (P, *M) 0/1 map-space masks, one per player.
        baseline: (*S) replacement coefficients (``probe.transform.analyze`` of the replacement wave).
        rest: ``"keep"`` or ``"replace"`` the part outside every player.
        readout: ``prob`` / ``logit`` / ``log_prob`` of the target.

    Attributes:
        evaluations: coalitions scored so far.
    """

    def __init__(self, probe: Probe, players: Tensor, baseline: Tensor, *, rest: str = "keep",
                 readout: Readout = "prob"):
        if rest not in ("keep", "replace"):
            raise ConfigError(f"rest must be 'keep' or 'replace'; got {rest!r}.")
        self.probe = probe
        self.players = players.to(probe.device, torch.float32)
        self.baseline = baseline.to(probe.device)
        covered = self.players.amax(dim=0)
        self.rest_mask = (1 - covered) if rest == "keep" else torch.zeros_like(covered)
        self.readout = readout
        self.evaluations = 0

    @property
    def size(self) -> int:
        return int(self.players.shape[0])

    def masks(self, coalitions: Tensor) -> Tensor:
        """(K, P) 0/1 coalitions → (K, *M) masks: the union of the members' masks and the rest."""
        flat = self.players.reshape(self.size, -1)
        union = (coalitions.to(flat) @ flat).clamp(max=1).reshape(-1, *self.players.shape[1:])
        return torch.maximum(union, self.rest_mask)

    def value(self, coalitions: Tensor, *, stage: str = "scoring coalitions") -> Tensor:
        """(K, P) 0/1 coalitions → (K,) float64 scores of the target, in blocks of :data:`BLOCK`."""
        out = []
        k = coalitions.shape[0]
        for start in range(0, k, BLOCK):
            block = coalitions[start:start + BLOCK].to(self.probe.device)
            out.append(self.probe.score(self.masks(block), baseline=self.baseline, readout=self.readout,
                                        progress=lambda f, s: None).double())
            self.evaluations += block.shape[0]
            self.probe.progress(min(start + BLOCK, k) / k, stage)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64, device=self.probe.device)


def players_for(segments: Segments, probe_rate: int, length: int, *, bands: int = 1) -> tuple[Transform, Tensor]:
    """The domain and (P, *M) player masks for ``segments``: time masks (``bands=1``), or segment × band
    masks in the STFT (``bands=2``: each segment's low and high halves of the spectrum, split at a quarter
    of the sample rate; players ordered segment-major: (s0 low, s0 high, s1 low, …)). The STFT's window is
    the power of two nearest 32 ms (256 samples at 8 kHz), its hop a quarter of that.

    Returns:
        ``(transform, masks)``.
    """
    if bands == 1:
        return get_transform("time", probe_rate), segments.masks(probe_rate, length)
    if bands != 2:
        raise ConfigError(f"bands must be 1 (whole segments) or 2 (low and high halves); got {bands}.")
    n_fft = max(4, 1 << round(math.log2(0.032 * probe_rate)))
    hop = n_fft // 4
    transform = STFTTransform(probe_rate, n_fft=n_fft, hop=hop)
    freqs, frames = transform.map_shape(length)
    times = torch.arange(frames, dtype=torch.float64) * hop / probe_rate
    in_seg = torch.stack([(times >= s) & (times < e) for s, e in zip(segments.start, segments.end)]).float()
    low = (torch.fft.rfftfreq(n_fft, d=1 / probe_rate) < probe_rate / 4).float()
    band_rows = torch.stack([low, 1 - low])                                   # (2, F)
    masks = (in_seg[:, None, None, :] * band_rows[None, :, :, None]).reshape(-1, freqs, frames)
    return transform, masks


__all__ = ["REPLACEMENTS", "Replacement", "SegmentGame", "background", "players_for", "replacement_wave"]
