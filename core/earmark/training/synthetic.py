"""Training of the synthetic ground-truth task models (:mod:`earmark.models.synthetic`), on demand and cached.

* ``synth-freq`` — :class:`~earmark.models.synthetic.SpectrumMLP` on :class:`~earmark.data.tasks.FrequencyTask`.
* ``synth-tf`` — :class:`~earmark.models.synthetic.SpectrogramCNN` on
  :class:`~earmark.data.tasks.TimeFrequencyTask`.

Both are trained with a distractor-consistency term (see :class:`Recipe`), so what they rely on is the
key components only.

Training draws fresh clips every step (no data set, no files), is deterministic given the seed (an
explicit ``torch.Generator`` drives the initialisation and the data), and the weights are cached as a plain
state dict (loaded with ``weights_only=True``) under ``$EARMARK_CACHE/synthetic`` or
``~/.cache/earmark/synthetic``, keyed by a hash of the task config, architecture, training settings and seed.
The card (with the measured accuracies) is cached beside them as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..data.tasks import FrequencyTask, SynthBatch, TimeFrequencyTask
from ..models.base import EarmarkModel, ModelCard, load_weights, save_weights
from ..models.registry import ModelSpec, register_model
from ..models.synthetic import TITLES, SpectrogramCNN, SpectrumMLP

#: bump when the architectures or the training recipe change, so stale caches are not reused.
VERSION = 4
EVAL_SAMPLES = 1024
EVAL_SEED_OFFSET = 10_000  # evaluation clips come from a stream the training never sees


@dataclass(frozen=True)
class Recipe:
    """How a synthetic model is trained: AdamW on fresh batches, cosine-decayed learning rate.

    The loss is ``CE(f(x), y) + consistency · mean((f(x) − f(x − u·d))²)`` with ``d`` the clip's distractors
    and ``u ~ U[0, 1]`` per clip: the logits must not move when distractors are removed, so the model
    relies on the key components *only* and the ground truth is the truth of the model, not just of the task.
    """

    steps: int = 400
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    consistency: float = 0.1
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class SynthModelDef:
    """A registered synthetic model: its task, architecture and recipe."""

    name: str
    title: str
    task: FrequencyTask | TimeFrequencyTask
    arch: Callable[[int, int], EarmarkModel]
    arch_name: str
    input_kind: str
    recipe: Recipe


DEFINITIONS: dict[str, SynthModelDef] = {
    "synth-freq": SynthModelDef(
        "synth-freq", TITLES["synth-freq"], FrequencyTask(),
        SpectrumMLP, "SpectrumMLP(hidden=64)", "log-magnitude rFFT, standardised per clip (inside the model)",
        Recipe(steps=200)),
    "synth-tf": SynthModelDef(
        "synth-tf", TITLES["synth-tf"], TimeFrequencyTask(),
        SpectrogramCNN, "SpectrogramCNN(hidden=32, n_fft=256, hop=64, channels=8, stride=2, floor=10, magnitude/8)",
        "log-power STFT above a floor (inside the model)", Recipe(steps=120, label_smoothing=0.1)),
}


def cache_dir() -> Path:
    """``$EARMARK_CACHE/synthetic`` or ``~/.cache/earmark/synthetic``."""
    base = os.environ.get("EARMARK_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "earmark") / "synthetic"


def cache_key(definition: SynthModelDef, seed: int) -> str:
    """A short hash of everything the weights depend on."""
    blob = json.dumps({"task": definition.task.config(), "arch": definition.arch_name,
                       "recipe": asdict(definition.recipe), "seed": int(seed), "version": VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def init_parameters(model: nn.Module, *, generator: torch.Generator) -> nn.Module:
    """Re-initialise every weight uniformly in ±1/√fan_in (PyTorch's default range), biases to 0.

    Uses only ``generator`` so training is reproducible whatever else drew from the global RNG.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                bound = 1.0 / math.sqrt(p[0].numel())
                p.copy_(torch.rand(p.shape, generator=generator, device=generator.device) * 2 * bound - bound)
    return model


def accuracy(model: nn.Module, wave: Tensor, label: Tensor, *, batch: int = 256) -> float:
    """Share of ``wave`` (n, L) classified as ``label`` (n,)."""
    with torch.no_grad():
        pred = torch.cat([model(w).argmax(-1) for w in wave.split(batch)])
    return float((pred == label).float().mean())


def ablations(model: nn.Module, batch: SynthBatch) -> dict[str, float]:
    """Accuracy on the clips, with the keys removed, and with an equal energy of distractors removed.

    "Equal energy": each clip loses ``α·d`` (its distractors ``d`` scaled by ``α = √(E_key / E_distr)``,
    clipped to 1), a perturbation with the keys' energy ``α²·E_distr = E_key``.

    Returns:
        ``{"accuracy", "accuracy_keys_removed", "accuracy_distractors_removed"}``.
    """
    e_key = batch.key_wave.pow(2).sum(-1, keepdim=True)
    e_dis = batch.distractor_wave.pow(2).sum(-1, keepdim=True).clamp_min(1e-12)
    alpha = (e_key / e_dis).sqrt().clamp(max=1.0)
    return {
        "accuracy": accuracy(model, batch.wave, batch.label),
        "accuracy_keys_removed": accuracy(model, batch.wave - batch.key_wave, batch.label),
        "accuracy_distractors_removed": accuracy(model, batch.wave - alpha * batch.distractor_wave, batch.label),
    }


def train(definition: SynthModelDef, *, seed: int = 0, device: torch.device | str = "cpu",
          steps: int | None = None, log: Callable[[str], None] | None = None) -> EarmarkModel:
    """Train a synthetic model from scratch on fresh clips; deterministic given ``seed`` (and device).

    Args:
        definition: which model (see :data:`DEFINITIONS`).
        seed: seeds the one generator behind the initialisation and every training clip.
        device: where to train.
        steps: override the recipe's number of steps (tests use a few).
        log: called with a line of progress every 50 steps.

    Returns:
        The trained model in eval mode, without a card (see :func:`build`).
    """
    task, recipe = definition.task, definition.recipe
    gen = torch.Generator(device=device).manual_seed(int(seed))
    model = definition.arch(task.num_samples, len(task.labels)).to(device)
    init_parameters(model, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    total = recipe.steps if steps is None else int(steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(total, 1))))
    model.train()
    for step in range(total):
        batch = task.sample(recipe.batch, generator=gen)
        u = torch.rand(recipe.batch, 1, generator=gen, device=gen.device)
        logits = model(torch.cat([batch.wave, batch.wave - u * batch.distractor_wave]))
        clean, reduced = logits.split(recipe.batch)
        ce = F.cross_entropy(clean, batch.label, label_smoothing=recipe.label_smoothing)
        loss = ce + recipe.consistency * (clean - reduced).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % 50 == 0:
            log(f"{definition.name} step {step + 1}/{total} loss {loss.item():.4f}")
    return model.eval()


def evaluation_batch(definition: SynthModelDef, *, seed: int = 0, n: int = EVAL_SAMPLES,
                     device: torch.device | str = "cpu") -> SynthBatch:
    """``n`` fresh clips from a stream disjoint from training's (seed + 10,000)."""
    gen = torch.Generator(device=device).manual_seed(int(seed) + EVAL_SEED_OFFSET)
    return definition.task.sample(n, generator=gen)


def is_cached(name: str, *, seed: int = 0) -> bool:
    """Whether :func:`build` will load ``name`` from the cache (``False``: it will train first, minutes on a CPU)."""
    definition = DEFINITIONS[name]
    stem = cache_dir() / f"{name}-{cache_key(definition, seed)}"
    return stem.with_suffix(".pt").exists() and stem.with_suffix(".json").exists()


def build(name: str, device: torch.device | str = "cpu", *, seed: int = 0) -> EarmarkModel:
    """Load the cached weights of a synthetic model, or train, evaluate and cache them first.

    Args:
        name: ``"synth-freq"`` or ``"synth-tf"``.
        device: where the model will run (and train, when the cache is empty).
        seed: training seed (part of the cache key).

    Returns:
        The model in eval mode with its :class:`ModelCard`.
    """
    definition = DEFINITIONS[name]
    task = definition.task
    folder = cache_dir()
    stem = folder / f"{name}-{cache_key(definition, seed)}"
    weights, card_path = stem.with_suffix(".pt"), stem.with_suffix(".json")
    if weights.exists() and card_path.exists():
        model = definition.arch(task.num_samples, len(task.labels))
        load_weights(model, weights)
        model.card = ModelCard.load(card_path)
        return model.to(device).eval()

    started = time.perf_counter()
    model = train(definition, seed=seed, device=device)
    seconds = time.perf_counter() - started
    metrics = {k: round(v, 4) for k, v in ablations(model, evaluation_batch(definition, seed=seed,
                                                                              device=device)).items()}
    metrics.update(eval_clips=EVAL_SAMPLES, train_seconds=round(seconds, 1), train_device=str(device),
                   train_steps=definition.recipe.steps, train_batch=definition.recipe.batch, seed=int(seed))
    model.card = ModelCard(
        name=name, title=definition.title, sample_rate=task.sample_rate, num_samples=task.num_samples,
        labels=task.labels, input_kind=definition.input_kind,
        training_data=(f"generated on the fly: earmark.data.tasks.{type(task).__name__} "
                       f"({definition.recipe.steps} steps × {definition.recipe.batch} fresh clips)"),
        licence="synthetic data, no licence needed",
        metrics=metrics,
        training_command=f"python -c \"from earmark.models import load_model; load_model('{name}')\"",
        embedding_dim=model.out.in_features,
        notes=(f"{definition.arch_name}. Task config: {json.dumps(task.config())}. Accuracy on "
               f"{EVAL_SAMPLES} fresh clips; 'keys removed' subtracts the class-defining components, "
               "'distractors removed' subtracts an equal energy of distractors."),
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = stem.with_suffix(f".{os.getpid()}.tmp")  # atomic renames: concurrent builds never see half a file
    tmp.write_text(model.card.to_json())
    tmp.replace(card_path)
    save_weights(model, tmp, half=False)
    tmp.replace(weights)
    return model


# The synthetic models in the registry: built (trained and cached on first use) by :func:`build`.
for _name, _title in TITLES.items():
    register_model(ModelSpec(name=_name, title=_title, kind="synthetic",
                             build=lambda device, _n=_name: build(_n, device)))

__all__ = ["DEFINITIONS", "Recipe", "SynthModelDef", "ablations", "accuracy", "is_cached",
           "build", "cache_dir", "cache_key", "evaluation_batch", "init_parameters", "train"]
