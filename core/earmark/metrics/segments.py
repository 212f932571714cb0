"""Faithfulness at the segment level: deletion and insertion by whole segments.

Segments are removed (deletion: from the full recording) or inserted (insertion: into the recording with
every segment replaced) one at a time in an order, and the target's score is read after each step; the area
under the curve over the fraction of segments (0 … 1, trapezoid) summarises it. The explanation's order
(highest score first) is compared with a random order (mean over ``random_orders`` draws) and the energy
order (loudest segment first). Lower deletion AUC and higher insertion AUC are better. All curves are one
batch of coalitions through the segment game.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..device import make_generator
from ..probe import Probe
from ..transforms import get_transform
from ..segments.base import Segments
from ..segments.game import SegmentGame, replacement_wave

#: Score direction of each curve's AUC.
DIRECTION = {"deletion": "lower", "insertion": "higher"}


@dataclass(frozen=True)
class SegmentCurves:
    """Deletion and insertion by segments.

    Attributes:
        fractions: (n+1,) share of segments removed / inserted.
        deletion, insertion: ``{order: (n+1,) curve}`` for ``score``, ``energy`` and ``random`` (the mean
            curve over the random orders).
        auc: ``{"deletion": {order: AUC}, "insertion": {order: AUC}}``.
        random_sd: ``{"deletion": sd, "insertion": sd}`` of the random orders' AUCs.
    """

    fractions: Tensor
    deletion: dict[str, Tensor]
    insertion: dict[str, Tensor]
    auc: dict[str, dict[str, float]]
    random_sd: dict[str, float]

    def rows(self) -> list[dict]:
        """One row per curve: ``{"curve", "score", "energy", "random", "random_sd", "better"}``."""
        return [{"curve": c, **{k: round(v, 4) for k, v in self.auc[c].items()},
                 "random_sd": round(self.random_sd[c], 4), "better": DIRECTION[c]} for c in ("deletion", "insertion")]


def _auc(curves: Tensor) -> Tensor:
    """(..., n+1) curves over fractions 0 … 1 → (...) trapezoid areas."""
    n = curves.shape[-1] - 1
    return (curves[..., 1:] + curves[..., :-1]).sum(-1) / (2 * n)


def segment_deletion_insertion(model, x: Tensor, segments: Segments, scores: Tensor, *, target: int,
                               replacement: str = "silence", rest: str = "keep", readout: str = "prob",
                               random_orders: int = 16, seed: int = 0) -> SegmentCurves:
    """Deletion and insertion curves by segments in score order, against random and energy orders.

    Args:
        model: the model.  x: (L,) waveform.  segments: n spans.  scores: (n,) one score per segment.
        target: the class whose score is read.
        replacement, rest, readout: the segment game's settings (:mod:`earmark.segments.game`).
        random_orders: random orders averaged for the reference.
        seed: seeds the random orders and a random replacement.

    Returns:
        :class:`SegmentCurves`.
    """
    rate = int(model.card.sample_rate)
    x = x.reshape(-1).float()
    segments = segments.within(x.numel() / rate)
    n = len(segments)
    probe = Probe(model, get_transform("time", rate), x, target=target)
    gen = make_generator(seed, "cpu")
    base = replacement_wave(probe.x[0], segments, rate, replacement, gen)
    game = SegmentGame(probe, segments.masks(rate, probe.length), base, rest=rest, readout=readout)
    masks = segments.masks(rate, probe.length, dtype=torch.float64)
    energy = masks @ (probe.x[0].double().cpu() ** 2)
    orders = [torch.argsort(-torch.as_tensor(scores, dtype=torch.float64)[:n], stable=True),
              torch.argsort(-energy, stable=True)]
    orders += [torch.randperm(n, generator=gen) for _ in range(random_orders)]
    order_t = torch.stack(orders)                                          # (O, n)
    ranks = torch.argsort(order_t, dim=1)
    k = torch.arange(n + 1)
    inserted = (ranks[:, None, :] < k[None, :, None]).float()              # (O, n+1, n): first k in
    coalitions = torch.cat([inserted, 1 - inserted]).reshape(-1, n)
    v = game.value(coalitions, stage="segment curves").cpu().reshape(2, len(orders), n + 1)
    ins, dele = v[0], v[1]
    names = ("score", "energy")
    out_d = {name: dele[i] for i, name in enumerate(names)} | {"random": dele[2:].mean(0)}
    out_i = {name: ins[i] for i, name in enumerate(names)} | {"random": ins[2:].mean(0)}
    auc = {"deletion": {name: float(_auc(dele[i])) for i, name in enumerate(names)},
           "insertion": {name: float(_auc(ins[i])) for i, name in enumerate(names)}}
    auc["deletion"]["random"] = float(_auc(dele[2:]).mean())
    auc["insertion"]["random"] = float(_auc(ins[2:]).mean())
    sd = {"deletion": float(_auc(dele[2:]).std()) if random_orders > 1 else 0.0,
          "insertion": float(_auc(ins[2:]).std()) if random_orders > 1 else 0.0}
    return SegmentCurves(k.double() / n, out_d, out_i, auc, sd)


__all__ = ["DIRECTION", "SegmentCurves", "segment_deletion_insertion"]
