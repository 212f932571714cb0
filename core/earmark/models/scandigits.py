"""Scan digits: a small spoken-digit model with a background class, made to slide along a recording.

A softmax digit classifier must name a digit for every window, silence and noise included. This model
answers "which digit is spoken **at the centre of this 1 s window**", with an eleventh class
``background`` for everything else: silence, noise, hum, clicks, breath-like bursts, time-reversed speech,
and a window whose centre falls in a pause between words (a word off-centre is context, not the answer).
Its probability track over a recording (one window per hop, the value placed at the window's centre, see
:mod:`earmark.timeline`) is therefore a frame-level answer, and events from it have the words' own times.

Waveform (B, 8000) at 8 kHz → soft-RMS level normalisation (floor 0.03, as AudioNet) → log-mel (n_fft 256,
hop 80, 40 bands) → BatchNorm over bands → four Conv1d blocks over time (kernel 5, dilation 1, 2, 4, 8;
48, 48, 64, 64 channels; BatchNorm, ReLU; receptive field 0.6 s) → [mean of the central 0.1 s, max over
the window] → Linear 128 → 96 + ReLU (the embedding) → dropout → Linear 96 → 11.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .audionet import LEVEL_FLOOR, build_bundled, default_card, rms_normalise
from .base import EarmarkModel, ModelCard
from .melcnn import LogMel
from .registry import ModelSpec, register_model
from ..data.fsdd import LABELS

NAME = "scan-digits"
BACKGROUND = "background"
SCAN_LABELS = (*LABELS, BACKGROUND)
CHANNELS = (48, 48, 64, 64)
HOP = 80
CENTRE_FRAMES = 11   # 0.1 s at the 10 ms frame hop


class ScanDigits(EarmarkModel):
    """Digits at the window's centre, or ``background``.

    Shapes:
        ``forward``: (B, 8000) → logits (B, 11); ``embed``: (B, 8000) → (B, 96).

    Example:
        >>> net = ScanDigits().eval()
        >>> net(torch.zeros(2, 8000)).shape, net.embed(torch.zeros(2, 8000)).shape
        (torch.Size([2, 11]), torch.Size([2, 96]))
    """

    def __init__(self, *, n_mels: int = 40, dropout: float = 0.2, card: ModelCard | None = None):
        super().__init__()
        self.register_buffer("level_floor", torch.tensor(LEVEL_FLOOR))
        self.logmel = LogMel(n_mels=n_mels, hop_length=HOP)
        self.norm = nn.BatchNorm1d(n_mels)
        layers: list[nn.Module] = []
        prev = n_mels
        for i, ch in enumerate(CHANNELS):
            d = 2 ** i
            layers += [nn.Conv1d(prev, ch, 5, padding=2 * d, dilation=d, bias=False), nn.BatchNorm1d(ch),
                       nn.ReLU()]
            prev = ch
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * prev, 96)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(96, len(SCAN_LABELS))
        self.card = card or default_card(
            NAME, "Scan digits (digit at the window centre, or background)", labels=SCAN_LABELS,
            embedding_dim=96, input_kind="waveform; log-mel (n_fft 256, hop 80, 40 mels) inside the model")

    def embed(self, wave: Tensor) -> Tensor:
        """(B, 8000) → (B, 96)."""
        x = self.features(self.norm(self.logmel(rms_normalise(wave, self.level_floor))))
        mid = x.shape[-1] // 2
        centre = x[..., mid - CENTRE_FRAMES // 2: mid + CENTRE_FRAMES // 2 + 1].mean(-1)
        return torch.relu(self.proj(torch.cat([centre, x.amax(-1)], dim=-1)))

    def forward(self, wave: Tensor) -> Tensor:
        """(B, 8000) → logits (B, 11); the last class is ``background``."""
        return self.head(self.dropout(self.embed(wave)))


def _build(device: torch.device) -> EarmarkModel:
    return build_bundled(ScanDigits(), NAME).to(device)


register_model(ModelSpec(name=NAME, title="Scan digits (digit at the window centre, or background)", build=_build))
