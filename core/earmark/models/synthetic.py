"""Small models for the synthetic ground-truth tasks (their training and cache: :mod:`earmark.training.synthetic`).

* ``synth-freq`` — :class:`SpectrumMLP` on :class:`~earmark.data.tasks.FrequencyTask`: log-magnitude rFFT of
  the waveform (inside the model), standardised per clip → dense 64 → ReLU → dense 6.
* ``synth-tf`` — :class:`SpectrogramCNN` on :class:`~earmark.data.tasks.TimeFrequencyTask`: STFT magnitude
  above a floor (torchaudio, inside the model) → conv 5×5 stride 2 (8 channels) → ReLU → average-pool 2 →
  dense 32 → ReLU → dense 6.

Both return *centred* logits (mean over classes subtracted; probabilities unchanged). Loading a model
trains it on demand the first time and caches the weights (:func:`load`).
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn
from torch.nn import functional as F

from .base import EarmarkModel



def _magnitude(z: Tensor) -> Tensor:
    """|z| with a finite gradient at 0 (masking zeroes coefficients)."""
    return torch.sqrt(z.real ** 2 + z.imag ** 2 + 1e-8)


def centred(logits: Tensor) -> Tensor:
    """(B, C) logits minus their mean over classes.

    The probabilities are unchanged, but a class logit then holds only what sets the class apart: a
    common-mode part (e.g. distractor energy raising every logit alike) would otherwise be credited to
    the distractors by logit-based attributions such as IG.
    """
    return logits - logits.mean(-1, keepdim=True)


class SpectrumMLP(EarmarkModel):
    """log(1 + |rFFT(x)|) → Linear(F, hidden) → ReLU → Linear(hidden, C); ``embed`` = the hidden layer.

    Args:
        num_samples: input length L (F = L // 2 + 1 bins).
        num_classes: C.
        hidden: embedding size D.
    """

    def __init__(self, num_samples: int, num_classes: int, *, hidden: int = 64):
        super().__init__()
        self.hidden = nn.Linear(num_samples // 2 + 1, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def features(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, F) log-magnitude spectrum, standardised per clip over the bins."""
        f = torch.log1p(_magnitude(torch.fft.rfft(wave, norm="ortho")))
        return (f - f.mean(-1, keepdim=True)) / (f.std(-1, keepdim=True) + 1e-6)

    def embed(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, hidden)."""
        return F.relu(self.hidden(self.features(wave)))

    def forward(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, C) logits, centred (see :func:`centred`)."""
        return centred(self.out(self.embed(wave)))


class SpectrogramCNN(EarmarkModel):
    """STFT magnitude above a floor → Conv2d(1, 8, 5, stride 2) → ReLU → AvgPool(2) → Linear(·, hidden) →
    ReLU → Linear(·, C); ``embed`` = the hidden layer.

    The STFT (torchaudio, n_fft 256, hop 64, Hann) runs inside the model, on the model's device. Features
    are ``(√(|X|² + floor) − √floor) / 8``: linear in the magnitude well above the floor (a log would
    flatten a burst's relevance so that it no longer follows its energy), and a zeroed (masked) cell looks
    like a quiet one rather than like nothing the model has seen, so masking explainers probe it in
    distribution (``floor`` = 10× the task's noise power per bin). Average pooling spreads the model's
    sensitivity over a whole burst instead of one peak.

    Args:
        num_samples: input length L.  num_classes: C.  hidden: embedding size D.
        n_fft, hop: STFT settings.  channels: conv channels.  floor: spectral floor (STFT power units).
    """

    def __init__(self, num_samples: int, num_classes: int, *, hidden: int = 32, n_fft: int = 256,
                 hop: int = 64, channels: int = 8, floor: float = 10.0):
        super().__init__()
        self.spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop, power=None)
        self.conv = nn.Conv2d(1, channels, 5, stride=2, padding=2)
        self.floor = float(floor)
        self.scale = 8.0
        rows, cols = (n_fft // 2 + 1 + 1) // 2 // 2, (num_samples // hop + 1 + 1) // 2 // 2
        self.hidden = nn.Linear(channels * rows * cols, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def features(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, 1, n_fft//2+1, frames) log power spectrogram above the floor."""
        z = self.spec(wave)
        return ((z.real ** 2 + z.imag ** 2 + self.floor).sqrt() - self.floor ** 0.5)[:, None] / self.scale

    def embed(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, hidden)."""
        h = F.avg_pool2d(F.relu(self.conv(self.features(wave))), 2)
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, wave: Tensor) -> Tensor:
        """(B, L) → (B, C) logits, centred (see :func:`centred`)."""
        return centred(self.out(self.embed(wave)))


#: The synthetic models by registry name → title (their tasks, recipes and cache: :mod:`earmark.training.synthetic`).
TITLES = {
    "synth-freq": "Synthetic frequency task (FreqRISE) — spectrum MLP",
    "synth-tf": "Synthetic time–frequency task — spectrogram CNN",
}


__all__ = ["SpectrogramCNN", "SpectrumMLP", "TITLES", "centred"]
