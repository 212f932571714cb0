"""Synthetic training speech for the digit models: which espeak-ng voices train, which test, the cache.

The speech itself is rendered by ``tools/make_speech.py`` (espeak-ng + sox, not a run-time dependency)
into a git-ignored cache file; this module only names the voices, reads the cache and places words in
the window. Three disjoint voice sets:

* **bundled** — the voices of ``assets/examples/`` (base voice ``en-us`` and variant ``f3``): never in
  training, in any combination, so the 20 bundled clips stay a fair test;
* **held out** — base voices :data:`HELDOUT_BASES` with variants :data:`HELDOUT_VARIANTS` (both unseen
  in training): the "unseen synthetic voices" score;
* **training** — :data:`TRAIN_BASES` × :data:`TRAIN_VARIANTS` (plus each base without a variant).

A cache file (``.npz``) holds ``waves`` (N, 8000) float32 (the word centred, zero-padded), ``lengths``
(N,) the word's length in samples, ``labels`` (N,) the digit, ``voices`` (N,) the espeak-ng voice spec
and ``split`` (N,) ``"train"`` or ``"heldout"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .. import audio, examples
from ..errors import DataError
from .fsdd import DigitSet

#: the bundled examples' voices: excluded from training and from the held-out set.
BUNDLED_BASES = ("en-us",)
BUNDLED_VARIANTS = ("f3",)
TRAIN_BASES = ("en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp")
TRAIN_VARIANTS = ("", "m1", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f4", "f5", "klatt", "klatt3",
                  "klatt4", "croak", "adam", "linda", "steph", "edward", "max")
HELDOUT_BASES = ("en-029", "en-us-nyc")
HELDOUT_VARIANTS = ("m2", "f2", "klatt2", "Andy")

Position = Literal["start", "centre", "end"]


def voice_spec(base: str, variant: str) -> str:
    """espeak-ng's ``-v`` argument: ``"en-gb"`` or ``"en-gb+m3"``."""
    return f"{base}+{variant}" if variant else base


def default_cache_path() -> Path:
    """``$EARMARK_CACHE/speech/digits-8k.npz`` or ``~/.cache/earmark/speech/digits-8k.npz``."""
    base = os.environ.get("EARMARK_CACHE")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "earmark"
    return root / "speech" / "digits-8k.npz"


def load_cache(path: str | Path | None, split: Literal["train", "heldout"]):
    """The cache's clips of one split as a :class:`~earmark.data.fsdd.DigitSet` (speaker = voice).

    Raises:
        DataError: the file is missing, unreadable or holds no clips of that split.
    """
    path = Path(path) if path is not None else default_cache_path()
    if not path.is_file():
        raise DataError(f"No synthetic speech cache at {path}; run `python tools/make_speech.py --out {path}` "
                        "(needs espeak-ng and sox).")
    try:
        data = np.load(path, allow_pickle=False)
        keep = data["split"] == split
        waves, lengths, labels, voices = (data[k][keep] for k in ("waves", "lengths", "labels", "voices"))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path} is not a speech cache written by tools/make_speech.py ({exc}).") from exc
    if not keep.any():
        raise DataError(f"{path} holds no '{split}' clips; regenerate it with tools/make_speech.py.")
    return DigitSet(
        waves=torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        speakers=tuple(str(v) for v in voices),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
        names=tuple(f"{lab}_{v}_{i}" for i, (lab, v) in enumerate(zip(labels, voices))),
    )


def place(waves: Tensor, lengths: Tensor, where: Position) -> Tensor:
    """Move each centred word flush to the window's start or end (``"centre"`` leaves it).

    Args:
        waves: (N, L) clips whose spoken part of ``lengths`` samples sits centred (as FSDD loads them).
        lengths: (N,) spoken lengths.
        where: ``"start"``, ``"centre"`` or ``"end"``.

    Returns:
        (N, L) clips; the samples shifted in from outside the window are zeros.
    """
    if where == "centre":
        return waves.clone()
    if where not in ("start", "end"):
        raise ValueError(f"where must be 'start', 'centre' or 'end', not {where!r}")
    length = waves.shape[-1]
    out = torch.zeros_like(waves)
    for i in range(waves.shape[0]):  # one roll per clip; used for evaluation only
        n = int(min(int(lengths[i]), length))
        first = (length - n) // 2
        word = waves[i, first:first + n]
        if where == "start":
            out[i, :n] = word
        else:
            out[i, length - n:] = word
    return out


def bundled_digits(sample_rate: int = 8000, num_samples: int = 8000) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """The 20 bundled espeak-ng digits, prepared as the app does: (20, L) waves, (20,) labels, names."""
    waves, labels, names = [], [], []
    for ex in examples.list_examples():
        if ex.kind != "speech":
            continue
        clip = audio.prepare(examples.load_example(ex.name), sample_rate=sample_rate, num_samples=num_samples)
        waves.append(clip.wave.float().reshape(-1))
        labels.append(int(ex.label))
        names.append(ex.name)
    return torch.stack(waves), torch.tensor(labels), tuple(names)
