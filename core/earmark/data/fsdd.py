"""The Free Spoken Digit Dataset (FSDD): file names, the official split, loading to a tensor.

FSDD (Jackson et al., https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0) holds
3,000 mono 8 kHz recordings named ``{digit}_{speaker}_{index}.wav`` under ``<root>/recordings``.
The official split puts index 0–4 in the test set (300 clips) and index 5–49 in the training set
(2,700 clips). The folder is never copied into the project; every function takes its ``root``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from ..audio import fit_length
from ..errors import DataError

SAMPLE_RATE = 8000
NUM_SAMPLES = 8000
LABELS = tuple(str(d) for d in range(10))
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
CREDIT = (
    "Free Spoken Digit Dataset (Jackson et al.), "
    "https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0"
)
LICENCE = "CC BY-SA 4.0 (training data: Free Spoken Digit Dataset; the card must credit it)"
TEST_INDICES = range(0, 5)

Split = Literal["train", "test", "all"]
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class Recording:
    """One FSDD file: its path and what its name says."""

    path: Path
    digit: int
    speaker: str
    index: int

    @property
    def split(self) -> str:
        return "test" if self.index in TEST_INDICES else "train"


@dataclass(frozen=True)
class DigitSet:
    """Loaded clips: ``waves`` (N, 8000) float32, ``labels`` (N,) int64, and per clip the speaker,
    the original length in samples (before padding/cropping) and the file name."""

    waves: Tensor
    labels: Tensor
    speakers: tuple[str, ...]
    lengths: Tensor
    names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def parse_name(name: str | Path) -> tuple[int, str, int]:
    """Split ``"{digit}_{speaker}_{index}.wav"`` into ``(digit, speaker, index)``.

    Raises:
        DataError: the name does not follow the FSDD pattern.
    """
    match = _NAME.match(Path(name).name)
    if match is None:
        raise DataError(
            f"'{Path(name).name}' is not an FSDD file name; expected '{{digit}}_{{speaker}}_{{index}}.wav'."
        )
    return int(match.group(1)), match.group(2), int(match.group(3))


def default_root() -> Path | None:
    """The folder named by ``$EARMARK_DATA``, or ``None`` when it is not set."""
    value = os.environ.get("EARMARK_DATA")
    return Path(value) if value else None


def _recordings_dir(root: str | Path | None) -> Path:
    if root is None:
        raise DataError(
            "No FSDD folder given: pass --data DIR (the Free Spoken Digit Dataset folder, which holds "
            "'recordings/') or set EARMARK_DATA."
        )
    root = Path(root).expanduser()
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    if not folder.is_dir() or not any(folder.glob("*.wav")):
        raise DataError(
            f"No FSDD recordings found in {root}. Point --data (or EARMARK_DATA) at the Free Spoken "
            "Digit Dataset folder that holds 'recordings/*.wav' "
            "(https://github.com/Jakobovski/free-spoken-digit-dataset)."
        )
    return folder


def list_recordings(
    root: str | Path | None,
    *,
    split: Split = "train",
    speakers: Iterable[str] | None = None,
    exclude_speakers: Iterable[str] = (),
) -> list[Recording]:
    """The recordings of one split, sorted by (digit, speaker, index).

    Args:
        root: the FSDD folder (holding ``recordings/``) or the ``recordings`` folder itself.
        split: ``"train"`` (index 5–49), ``"test"`` (index 0–4) or ``"all"``.
        speakers: keep only these speakers (``None``: all).
        exclude_speakers: drop these speakers (e.g. a held-out speaker).

    Raises:
        DataError: the folder is missing or empty, an unknown split, or the selection is empty.
    """
    if split not in ("train", "test", "all"):
        raise DataError(f"Unknown FSDD split '{split}'; use 'train', 'test' or 'all'.")
    folder = _recordings_dir(root)
    keep = None if speakers is None else {s.lower() for s in speakers}
    drop = {s.lower() for s in exclude_speakers}
    out = []
    for path in folder.glob("*.wav"):
        try:
            digit, speaker, index = parse_name(path)
        except DataError:
            continue  # stray files are ignored
        rec = Recording(path, digit, speaker, index)
        if split != "all" and rec.split != split:
            continue
        if (keep is not None and speaker.lower() not in keep) or speaker.lower() in drop:
            continue
        out.append(rec)
    if not out:
        raise DataError(
            f"The FSDD selection is empty (split '{split}', speakers {sorted(keep) if keep else 'all'}, "
            f"excluding {sorted(drop) or 'none'}) in {folder}; check the speaker names."
        )
    return sorted(out, key=lambda r: (r.digit, r.speaker, r.index))


def load_recordings(recordings: Sequence[Recording], *, num_samples: int = NUM_SAMPLES) -> DigitSet:
    """Read the files into one (N, num_samples) float32 tensor, centre-padded or centre-cropped.

    Raises:
        DataError: a file is not 8 kHz mono or cannot be read.
    """
    waves, lengths = [], []
    for rec in recordings:
        try:
            data, sr = sf.read(str(rec.path), dtype="float32", always_2d=True)
        except RuntimeError as exc:
            raise DataError(f"Could not read {rec.path}: {exc}. Is the FSDD folder complete?") from exc
        if sr != SAMPLE_RATE:
            raise DataError(f"{rec.path} is at {sr} Hz; FSDD recordings are {SAMPLE_RATE} Hz.")
        mono = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
        lengths.append(min(mono.shape[0], num_samples))
        waves.append(fit_length(mono, num_samples, policy="center"))
    return DigitSet(
        waves=torch.stack(waves).float(),
        labels=torch.tensor([r.digit for r in recordings], dtype=torch.long),
        speakers=tuple(r.speaker for r in recordings),
        lengths=torch.tensor(lengths, dtype=torch.long),
        names=tuple(r.path.name for r in recordings),
    )


def load_split(
    root: str | Path | None,
    split: Split = "train",
    *,
    speakers: Iterable[str] | None = None,
    exclude_speakers: Iterable[str] = (),
    num_samples: int = NUM_SAMPLES,
) -> DigitSet:
    """:func:`list_recordings` then :func:`load_recordings`.

    Example:
        >>> test = load_split(root, "test")          # doctest: +SKIP
        >>> test.waves.shape, test.labels.shape       # doctest: +SKIP
        (torch.Size([300, 8000]), torch.Size([300]))
    """
    recs = list_recordings(root, split=split, speakers=speakers, exclude_speakers=exclude_speakers)
    return load_recordings(recs, num_samples=num_samples)
