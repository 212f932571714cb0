"""digits-present: which spoken digits occur in a 4-second recording (multi-label, a sigmoid per digit).

Waveform (B, 32000) at 8 kHz → soft-RMS level normalisation (floor 0.03, as the other digit models) →
log-mel (n_fft 256, hop 128, 40 mels) → three blocks of (Conv2d 3×3, BatchNorm, ReLU, MaxPool) with 16, 32,
64 channels → mean over frequency → Conv1d (k 9) + ReLU → per-frame logits (10 × frames) → auto-pool over
time (``Σ_t l_t·softmax(l)_t``, a smooth maximum). Each digit's logit is driven by the frames where that digit
is spoken: the natural test of word-level explanations. ``embed`` is the time-maximum of the 64 hidden
channels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .audionet import LEVEL_FLOOR, LevelFloorMixin, build_bundled, default_card, rms_normalise
from .base import EarmarkModel, ModelCard
from .melcnn import LogMel
from .registry import ModelSpec, register_model
from ..data.fsdd import SAMPLE_RATE

NAME = "digits-present"
TITLE = "Digits present (multi-label CNN, sequences of FSDD digits)"
WINDOW = 4 * SAMPLE_RATE
CHANNELS = (16, 32, 64)


class DigitsPresent(LevelFloorMixin, EarmarkModel):
    """Multi-label CNN: which digits are spoken in a 4-s recording.

    Shapes:
        ``forward``: (B, 32000) → logits (B, 10) (sigmoid per digit); ``frame_logits``: (B, 10, frames);
        ``embed``: (B, 32000) → (B, 64).

    Example:
        >>> net = DigitsPresent().eval()
        >>> net(torch.zeros(2, 32000)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, *, n_mels: int = 40, card: ModelCard | None = None,
                 level_floor: float = LEVEL_FLOOR):
        super().__init__()
        self.register_buffer("level_floor", torch.tensor(float(level_floor)))
        self.logmel = LogMel(n_mels=n_mels, hop_length=128)
        layers: list[nn.Module] = []
        prev = 1
        for i, ch in enumerate(CHANNELS):
            layers += [nn.Conv2d(prev, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
                       nn.MaxPool2d((2, 2) if i < 2 else (2, 1))]
            prev = ch
        self.features = nn.Sequential(*layers)
        self.temporal = nn.Sequential(nn.Conv1d(prev, 64, 9, padding=4), nn.ReLU())
        self.head = nn.Conv1d(64, num_classes, 1)
        self.card = card or default_card(
            NAME, TITLE, num_samples=WINDOW, activation="sigmoid", embedding_dim=64,
            input_kind="waveform; log-mel (n_fft 256, hop 128, 40 mels) inside the model",
        )

    def hidden(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, 64, frames/4) hidden features over time."""
        x = self.logmel(rms_normalise(wave, self.level_floor)).unsqueeze(1)
        return self.temporal(self.features(x).mean(dim=2))

    def frame_logits(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, 10, frames/4) logits per time step."""
        return self.head(self.hidden(wave))

    def embed(self, wave: Tensor) -> Tensor:
        return self.hidden(wave).amax(dim=-1)

    def forward(self, wave: Tensor) -> Tensor:
        frames = self.frame_logits(wave)
        return (frames * frames.softmax(dim=-1)).sum(dim=-1)


def _build(device: torch.device) -> EarmarkModel:
    return build_bundled(DigitsPresent(), NAME).to(device)


register_model(ModelSpec(name=NAME, title=TITLE, build=_build))
