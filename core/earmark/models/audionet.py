"""AudioNet: the 1D CNN of the AudioMNIST paper, the spoken-digit model of all the seeds (DESIGN §4).

Six blocks of (Conv1d k=3, padding 1, ReLU, MaxPool 2) with 100, 64, 128, 128, 128, 128 channels turn
8,000 samples at 8 kHz into 128 × 125 = 16,000 features, then 1024 → 512 → 10 fully connected with ReLU
and dropout 0.5 between the dense layers. The paper's (1×3) 2D convolutions are the same function as
these 1D ones.

Input level (parameter-free, inside ``forward``): each clip is divided by a *soft* RMS,
``x / sqrt(mean(x²) + floor²)`` with ``floor = 0.03`` (about −30 dBFS, FSDD's median level over the 1 s
window). Clips louder than the floor are brought to about the same level (the model tolerates ordinary
level differences); quieter ones are scaled by a fixed gain, so the model is **not** scale-invariant:
``f(αx)`` moves smoothly from ``f(0)`` to ``f(x)`` and IG from the zero baseline integrates a real path
(completeness gap ≈ 1 % of ``f(x) − f(0)``). Until round 2 the floor was ``1e-3`` (``LEGACY_FLOOR``):
then ``f(αx) = f(x)`` for every α above ~0.01 and the logit jumped before IG's first path step.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from ..assets import models_dir
from .base import EarmarkModel, ModelCard, load_weights
from .registry import ModelSpec, register_model
from ..data.fsdd import CREDIT, LABELS, LICENCE, NUM_SAMPLES, SAMPLE_RATE

NAME = "audionet-digits"
CHANNELS = (100, 64, 128, 128, 128, 128)
RMS_EPS = 1e-3
#: the soft-RMS floor of the bundled AudioNet (see the module docstring); ``LEGACY_FLOOR`` = the old one.
LEVEL_FLOOR = 0.03
LEGACY_FLOOR = RMS_EPS


class LevelFloorMixin:
    """The soft-RMS floor lives in the weights (a buffer), so a weights file brings its own front end.

    Weights saved before the floor existed have no ``level_floor`` entry; they load with
    :data:`LEGACY_FLOOR`, the floor they were trained with.
    """

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "level_floor", torch.tensor(LEGACY_FLOOR))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def rms_normalise(wave: Tensor, eps: float | Tensor = RMS_EPS) -> Tensor:
    """(B, L) → (B, L): divide each clip by its root-mean-square level (``eps`` keeps silence finite)."""
    return wave / torch.sqrt(wave.pow(2).mean(dim=-1, keepdim=True) + eps * eps)


def default_card(name: str, title: str, **fields) -> ModelCard:
    """A digit-model card with the FSDD credit filled in; ``fields`` override or add card fields."""
    base = dict(
        name=name, title=title, sample_rate=SAMPLE_RATE, num_samples=NUM_SAMPLES, labels=LABELS,
        training_data=f"{CREDIT}; official training split (index 5-49, 2,700 clips)",
        licence=LICENCE,
    )
    base.update(fields)
    return ModelCard(**base)


def build_bundled(model: EarmarkModel, name: str) -> EarmarkModel:
    """Load ``<assets>/<name>.pt`` into ``model`` and its card from ``<assets>/<name>.json``."""
    folder = models_dir()
    load_weights(model, folder / f"{name}.pt")
    card_path = folder / f"{name}.json"
    if card_path.exists():
        model.card = ModelCard.load(card_path)
    return model.eval()


class AudioNet(LevelFloorMixin, EarmarkModel):
    """AudioNet on 1 s of 8 kHz audio.

    Args:
        num_classes: output classes (10 digits).
        dropout: dropout between the dense layers (0.5 in the paper).
        level_floor: the soft-RMS floor of the input level normalisation (``LEGACY_FLOOR`` for the
            near scale-invariant pre-round-2 front end); a buffer, saved with the weights.
        card: the model card (a default one without metrics when ``None``).

    Shapes:
        ``forward``: (B, 8000) → logits (B, num_classes); ``embed``: (B, 8000) → (B, 512).

    Example:
        >>> net = AudioNet().eval()
        >>> net(torch.zeros(2, 8000)).shape, net.embed(torch.zeros(2, 8000)).shape
        (torch.Size([2, 10]), torch.Size([2, 512]))
    """

    def __init__(self, num_classes: int = 10, *, dropout: float = 0.5, card: ModelCard | None = None,
                 level_floor: float = LEVEL_FLOOR):
        super().__init__()
        self.register_buffer("level_floor", torch.tensor(float(level_floor)))
        layers: list[nn.Module] = []
        prev = 1
        for ch in CHANNELS:
            layers += [nn.Conv1d(prev, ch, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool1d(2)]
            prev = ch
        self.features = nn.Sequential(*layers)
        flat = CHANNELS[-1] * (NUM_SAMPLES // 2 ** len(CHANNELS))  # 128 × 125 = 16,000
        self.fc1 = nn.Linear(flat, 1024)
        self.fc2 = nn.Linear(1024, 512)
        self.fc3 = nn.Linear(512, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.card = card or default_card(NAME, "AudioNet digits (AudioMNIST 1D CNN, FSDD)",
                                         embedding_dim=512)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def embed(self, wave: Tensor) -> Tensor:
        """(B, 8000) → (B, 512): the penultimate (post-ReLU) activation."""
        x = rms_normalise(wave, self.level_floor).unsqueeze(1)
        x = self.features(x).flatten(1)
        x = self.dropout(torch.relu(self.fc1(x)))
        return torch.relu(self.fc2(x))

    def forward(self, wave: Tensor) -> Tensor:
        """(B, 8000) → logits (B, num_classes)."""
        return self.fc3(self.dropout(self.embed(wave)))


def _build(device: torch.device) -> EarmarkModel:
    return build_bundled(AudioNet(), NAME).to(device)


register_model(ModelSpec(name=NAME, title="AudioNet digits (1D CNN on the waveform, FSDD)", build=_build))

