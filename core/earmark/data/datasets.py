"""Labelled clips to evaluate on: a folder of FSDD-named files, a CSV manifest, or a synthetic task.

Every data set iterates as ``(name, wave, label)`` with ``wave`` (L,) float32 at the model's sample rate
and length and ``label`` the class index in the model's label list. Synthetic tasks also know the true
mask of every clip (:meth:`ClipSet.true_mask`), so localisation can be scored.

* **Folder** — files named ``{digit}_{speaker}_{index}.wav`` (the Free Spoken Digit Dataset pattern) in
  ``DIR`` or ``DIR/recordings``; the official split puts index 0–4 in ``test``.
* **Manifest** — a CSV file with the columns ``path,label`` (header optional); paths are relative to the
  manifest's folder; a label is a class name of the model or a class index.
* **Task** — ``synth-freq`` / ``synth-tf`` (:mod:`earmark.data.tasks`), drawn reproducibly from the seed.

Example:
    >>> clips = open_dataset(task="synth-freq", card=model.card, n=12, seed=0)   # doctest: +SKIP
    >>> name, wave, label = next(iter(clips))                                     # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import torch
from torch import Tensor

from ..audio import fit_length, load_clip, prepare
from ..errors import AudioError, ConfigError, DataError
from .fsdd import list_recordings, parse_name

#: ``--task`` names → :data:`earmark.data.tasks.TASKS` keys.
TASK_ALIASES = {"synth-freq": "frequency", "synth-tf": "time-frequency"}


class Item(NamedTuple):
    """One labelled clip: ``name``, ``wave`` (L,) at the model's rate and length, ``label`` (class index)."""

    name: str
    wave: Tensor
    label: int


@dataclass(frozen=True)
class Entry:
    """A clip on disk before loading: name, path, class index."""

    name: str
    path: Path
    label: int


# ---- parsing -----------------------------------------------------------------------------------

def fsdd_entries(root: str | Path, *, split: str = "test") -> list[Entry]:
    """Clips of one split of a folder of FSDD-named files, sorted by (digit, speaker, index).

    Raises:
        DataError: no such folder, no matching files, or an unknown split.
    """
    return [Entry(r.path.name, r.path, r.digit) for r in list_recordings(root, split=split)]


def parse_label(text: str, labels: Sequence[str], *, where: str) -> int:
    """A class name of ``labels`` or a class index → the index.

    Raises:
        DataError: neither a known class name nor an index in range (the message says where).
    """
    text = text.strip()
    if text in labels:
        return list(labels).index(text)
    try:
        index = int(text)
    except ValueError:
        index = -1
    if 0 <= index < len(labels) and str(index) == text:
        return index
    raise DataError(
        f"{where}: label '{text}' is not a class of the model; use one of {', '.join(labels)} "
        f"or a class index 0–{len(labels) - 1}."
    )


def parse_manifest(path: str | Path, labels: Sequence[str]) -> list[Entry]:
    """Read a ``path,label`` CSV manifest.

    Args:
        path: the CSV file; a first row ``path,label`` is taken as a header.
        labels: the model's class names (labels may be given as names or indices).

    Returns:
        Entries in file order; names are the file names (made unique with the row number if repeated).

    Raises:
        DataError: the file is missing, a row has the wrong number of fields, an empty path, a file that
            does not exist, or an unknown label — each with its line number.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"The manifest {path} does not exist. Pass a CSV file with the columns path,label.")
    base = path.parent
    entries: list[Entry] = []
    seen: set[str] = set()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            where = f"{path.name}, line {line}"
            if len(row) != 2:
                raise DataError(f"{where}: expected 2 fields 'path,label', found {len(row)}: {','.join(row)!r}.")
            file, label = (c.strip() for c in row)
            if line == 1 and (file.lower(), label.lower()) == ("path", "label"):
                continue
            if not file:
                raise DataError(f"{where}: the path is empty.")
            clip_path = Path(file).expanduser()
            clip_path = clip_path if clip_path.is_absolute() else base / clip_path
            if not clip_path.is_file():
                raise DataError(f"{where}: the file {clip_path} does not exist (paths are relative to the manifest).")
            index = parse_label(label, labels, where=where)
            name = clip_path.name if clip_path.name not in seen else f"{clip_path.name}#{line}"
            seen.add(name)
            entries.append(Entry(name, clip_path, index))
    if not entries:
        raise DataError(f"The manifest {path} lists no clips. Add rows 'path,label'.")
    return entries


def balanced_subset(labels: Sequence[int], n: int | None, *, per_class: bool = False,
                    generator: torch.Generator) -> list[int]:
    """Indices of a class-balanced random subset, in draw order: round-robin over the classes.

    The order makes every prefix balanced too, so a run that stops early (or a smaller ``n`` with the
    same seed, which picks a prefix of a larger one) still covers every class evenly.

    Args:
        labels: class index per item.
        n: items wanted in total, or per class when ``per_class`` (``None``: everything).
        per_class: read ``n`` as a count per class.
        generator: CPU generator choosing the items within each class.

    Returns:
        Indices: the first draw of every class, then the second, and so on. Classes share ``n`` evenly
        (the first classes take the remainder); a class with too few items gives all it has and the rest
        goes to the others. ``n=None``: every index, in the original order.
    """
    if n is None:
        return list(range(len(labels)))
    if n < 1:
        raise ConfigError(f"--n must be at least 1; got {n}.")
    classes = sorted(set(int(l) for l in labels))
    pools = {c: [i for i, l in enumerate(labels) if int(l) == c] for c in classes}
    for c in classes:  # shuffle each class's pool reproducibly
        perm = torch.randperm(len(pools[c]), generator=generator).tolist()
        pools[c] = [pools[c][p] for p in perm]
    if per_class:
        return round_robin({c: pools[c][:n] for c in classes})
    total = min(n, len(labels))
    quota = {c: 0 for c in classes}
    while sum(quota.values()) < total:  # round-robin over classes that still have items
        for c in classes:
            if sum(quota.values()) < total and quota[c] < len(pools[c]):
                quota[c] += 1
    return round_robin({c: pools[c][:quota[c]] for c in classes})


def round_robin(pools: dict[int, list[int]]) -> list[int]:
    """``{class: [i, …]}`` → the first item of every class, then the second, … (classes in key order)."""
    depth = max((len(p) for p in pools.values()), default=0)
    return [p[r] for r in range(depth) for p in pools.values() if r < len(p)]


# ---- data sets ---------------------------------------------------------------------------------

@dataclass
class ClipSet:
    """Clips from files, loaded and fitted to the model on iteration.

    Attributes:
        entries: the clips.  sample_rate, num_samples: the model's rate and length.
        labels: the model's class names.  description: where the clips come from (for reports).
    """

    entries: list[Entry]
    sample_rate: int
    num_samples: int
    labels: tuple[str, ...]
    description: str = ""

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def load(self, index: int) -> Item:
        """Decode, resample and pad/crop clip ``index``.

        Raises:
            DataError: the file cannot be decoded (names the file).
        """
        entry = self.entries[index]
        try:
            clip = prepare(load_clip(entry.path, name=entry.name), sample_rate=self.sample_rate,
                           num_samples=self.num_samples)
        except AudioError as exc:
            raise DataError(f"{entry.path}: {exc}") from exc
        return Item(entry.name, clip.wave, entry.label)

    def __iter__(self) -> Iterator[Item]:
        for i in range(len(self.entries)):
            yield self.load(i)

    def true_mask(self, name: str, transform) -> Tensor | None:
        """Real recordings have no ground truth."""
        return None


@dataclass
class SynthClipSet:
    """Clips drawn from a synthetic task, with their key components for the ground truth.

    Attributes:
        task_name: ``synth-freq`` / ``synth-tf``.  waves (n, L), label (n,), key_wave (n, L).
    """

    task_name: str
    waves: Tensor
    label: Tensor
    key_wave: Tensor
    labels: tuple[str, ...]
    description: str = ""
    task: Any = None
    _index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self._index = {n: i for i, n in enumerate(self.names())}

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def names(self) -> list[str]:
        return [f"{self.task_name}-{i:04d}" for i in range(len(self))]

    def __iter__(self) -> Iterator[Item]:
        for i, name in enumerate(self.names()):
            yield Item(name, self.waves[i], int(self.label[i]))

    def true_mask(self, name: str, transform) -> Tensor:
        """(*M) bool ground truth of clip ``name`` in ``transform``'s map space."""
        from .tasks import true_mask

        i = self._index[name]
        return true_mask(transform, self.key_wave[i:i + 1])[0]

    def cell_scorer(self, name: str, transform) -> Callable[[Tensor], float] | None:
        """``score(saliency) -> accuracy`` on the task's own cells for clip ``name`` (time–frequency task:
        its 16 (slot, band) cells); ``None`` for a task without such cells."""
        from ..metrics.localisation import task_cell_accuracy
        from .tasks import TimeFrequencyTask

        if not isinstance(self.task, TimeFrequencyTask):
            return None
        label, length = self.label[self._index[name]].reshape(1), int(self.waves.shape[-1])
        return lambda saliency: float(task_cell_accuracy(
            saliency[None].to(label.device), label, transform, task=self.task, length=length)[0])


def make_task(name: str):
    """A synthetic task by ``--task`` name (``synth-freq``, ``synth-tf``) or :data:`earmark.data.tasks.TASKS` key."""
    from .tasks import TASKS

    key = TASK_ALIASES.get(name, name)
    if key not in TASKS:
        raise ConfigError(f"Unknown task '{name}'. Choose one of: {', '.join(TASK_ALIASES)}.")
    return TASKS[key]()


def synthetic_set(name: str, *, card, n: int, seed: int) -> SynthClipSet:
    """Draw ``n`` clips of task ``name`` with a generator seeded by ``seed``.

    Raises:
        ConfigError: unknown task, or a model whose rate or classes do not fit the task.
    """
    task = make_task(name)
    if int(card.sample_rate) != int(task.sample_rate) or len(card.labels) != len(task.labels):
        raise ConfigError(
            f"The model '{card.name}' ({card.sample_rate} Hz, {len(card.labels)} classes) does not fit the task "
            f"'{name}' ({task.sample_rate} Hz, {len(task.labels)} classes); use the model trained on it, --model {name}."
        )
    batch = task.sample(int(n), generator=torch.Generator().manual_seed(int(seed)))
    return SynthClipSet(
        task_name=name, waves=fit_length(batch.wave.float(), card.num_samples, policy="start"),
        label=batch.label.long(), key_wave=batch.key_wave.float(), labels=tuple(card.labels),
        description=f"synthetic task {name}, {n} clips drawn with seed {seed}", task=task,
    )


def open_dataset(*, data: str | Path | None = None, task: str | None = None, card, split: str = "test",
                 n: int | None = None, per_class: bool = False, seed: int = 0) -> ClipSet | SynthClipSet:
    """The clips to evaluate on: a synthetic ``task``, a CSV manifest or an FSDD-named folder.

    Args:
        data: a folder (FSDD file names) or a ``.csv`` manifest; default ``$EARMARK_DATA``.
        task: a synthetic task name instead of ``data``.
        card: the model's :class:`~earmark.models.ModelCard` (rate, length, labels).
        split: ``train`` / ``test`` / ``all`` for a folder (ignored for manifests and tasks).
        n: clips to use (balanced over classes when fewer than all); per class when ``per_class``.
        seed: chooses the subset / draws the synthetic clips.

    Raises:
        DataError: nothing to evaluate on, or a malformed folder or manifest.
    """
    if task:
        count = (n or 50) * (len(card.labels) if per_class else 1)
        return synthetic_set(task, card=card, n=count, seed=seed)
    data = data or os.environ.get("EARMARK_DATA")
    if not data:
        raise DataError("No data to evaluate on: pass --data DIR (or a CSV manifest), set EARMARK_DATA, "
                        "or use --task synth-freq / synth-tf.")
    path = Path(data).expanduser()
    if path.suffix.lower() == ".csv":
        entries, what = parse_manifest(path, card.labels), f"manifest {path}"
    else:
        entries, what = fsdd_entries(path, split=split), f"{path} ({split} split)"
        if len(card.labels) <= max(e.label for e in entries):
            raise DataError(f"The folder {path} holds digits 0–9 but the model '{card.name}' has "
                            f"{len(card.labels)} classes; pick a digit model.")
    chosen = balanced_subset([e.label for e in entries], n, per_class=per_class,
                             generator=torch.Generator().manual_seed(int(seed)))
    subset = [entries[i] for i in chosen]
    note = f"{len(subset)} of {len(entries)} clips" + (" (balanced over classes)" if len(subset) < len(entries) else "")
    return ClipSet(subset, int(card.sample_rate), int(card.num_samples), tuple(card.labels), f"{what}: {note}")


__all__ = ["ClipSet", "Entry", "Item", "SynthClipSet", "TASK_ALIASES", "balanced_subset", "fsdd_entries",
           "make_task", "open_dataset", "parse_label", "parse_manifest", "parse_name",
           "synthetic_set"]
