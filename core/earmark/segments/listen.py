"""Hear segments one by one: each segment alone, the recording without it, and only the top-k segments.

Every version is what the model hears in the segment game (the removed parts replaced as declared, the rest
kept or replaced), scored by the model in one batch, then loudness-matched to the original for playback
(:func:`earmark.sonify.match_loudness`, as the map listening does) so that a quieter version is not mistaken
for a less important one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ..probe import Probe
from ..sonify import match_loudness
from ..transforms import get_transform
from .attribution import SegmentExplanation
from .base import Segments
from .game import SegmentGame, replacement_wave

Kind = Literal["original", "alone", "without", "top"]


@dataclass(frozen=True)
class SegmentSound:
    """One version of the recording.

    Attributes:
        kind: ``original``, ``alone`` (only segment ``index``), ``without`` (all but ``index``) or ``top``
            (only the ``k`` best segments).
        index: the segment (``None`` for original and top).  label: a name for a person.
        wave: (L,) waveform for playback (loudness-matched when asked).
        score: the model's score of the target on it (the readout).  predicted: the model's top class on it.
        members: the segment indices kept.
    """

    kind: Kind
    index: int | None
    label: str
    wave: Tensor
    score: float
    predicted: int
    members: tuple[int, ...]


def segment_sounds(model, x: Tensor, segments: Segments, *, target: int, order: list[int] | None = None,
                   top_k: int = 3, replacement: str = "silence", rest: str = "keep", readout: str = "prob",
                   match: bool = True, generator: torch.Generator | None = None) -> list[SegmentSound]:
    """The original, every segment alone and without it, and the top-``k`` segments only, with the model's
    answer on each (one batch of model calls).

    Args:
        model: the model.  x: (L,) waveform.  segments: the spans.  target: class whose score is reported.
        order: segment indices best first (an explanation's :meth:`~SegmentExplanation.order`); the top-k
            version is skipped when ``None``.
        top_k: segments kept in the top-k version (cut to the number of segments).
        replacement, rest: as the segment game (:mod:`earmark.segments.game`).
        match: loudness-match every version to the original for playback.
        generator: draws of a random replacement.

    Returns:
        ``[original, alone 0, without 0, alone 1, without 1, …, top]``.
    """
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1 segment; got {top_k}.")
    rate = int(model.card.sample_rate)
    x = x.reshape(-1).float()
    segments = segments.within(x.numel() / rate)
    probe = Probe(model, get_transform("time", rate), x, target=target)
    gen = generator or torch.Generator(device=probe.device).manual_seed(0)
    base = replacement_wave(probe.x[0], segments, rate, replacement, gen)
    game = SegmentGame(probe, segments.masks(rate, probe.length), base, rest=rest, readout=readout)
    n = len(segments)
    rows, meta = [torch.ones(n)], [("original", None, "original", tuple(range(n)))]
    for i in range(n):
        alone, without = torch.zeros(n), torch.ones(n)
        alone[i], without[i] = 1, 0
        rows += [alone, without]
        meta += [("alone", i, f"{segments.labels[i]} alone", (i,)),
                 ("without", i, f"without {segments.labels[i]}", tuple(j for j in range(n) if j != i))]
    if order is not None:
        keep = sorted(order[:min(top_k, n)])
        top = torch.zeros(n)
        top[keep] = 1
        rows.append(top)
        meta.append(("top", None, f"top {len(keep)} only", tuple(keep)))
    masks = game.masks(torch.stack(rows).to(probe.device))
    with torch.no_grad():
        waves = probe.waves(probe.apply_masks(masks, game.baseline))
        logits = model(waves)
        scores = probe.read(waves, readout)
    out = []
    for (kind, index, label, members), wave, score, lg in zip(meta, waves, scores, logits):
        play = match_loudness(wave, probe.x[0]) if match and kind != "original" else wave
        out.append(SegmentSound(kind, index, label, play.detach(), float(score.detach()), int(lg.argmax()), members))
    return out


def sounds_for(model, x: Tensor, explanation: SegmentExplanation, *, top_k: int = 3, match: bool = True,
               generator: torch.Generator | None = None) -> list[SegmentSound]:
    """:func:`segment_sounds` with the explanation's segments, order, target and game settings."""
    p = explanation.params
    return segment_sounds(model, x, explanation.segments, target=explanation.target, order=explanation.order(),
                          top_k=top_k, replacement=p.get("replacement", "silence"), rest=p.get("rest", "keep"),
                          readout=p.get("readout", "prob"), match=match, generator=generator)


__all__ = ["SegmentSound", "segment_sounds", "sounds_for"]
