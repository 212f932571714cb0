"""Training, augmentation and evaluation of the bundled spoken-digit models on FSDD.

One run = one architecture, one seed, one speaker selection. It is deterministic given the seed: the
weights are initialised after ``torch.manual_seed(seed)`` (which also drives dropout) and every
shuffle and augmentation draw comes from an explicit ``torch.Generator``. A full checkpoint (model,
optimiser, schedule, both random states, history) is written after every epoch, so an interrupted run
resumes where it stopped and ends with the same weights as an uninterrupted one.

Augmentation (waveform, batched, on the fly): speed/pitch perturbation by resampling with a factor in
[0.9, 1.1] (linear interpolation about the window centre), a random time shift that keeps the spoken
part inside the 8,000-sample window, a random gain, and white noise at a random SNR on part of the
batch. Optimisation: AdamW with decoupled weight decay, label smoothing, a one-cycle (cosine) schedule,
optional mixup.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..device import model_device
from ..errors import ConfigError
from ..assets import models_dir
from ..models.audionet import AudioNet
from ..models.base import EarmarkModel, ModelCard, load_weights, save_weights
from ..data.fsdd import CREDIT, SAMPLE_RATE, DigitSet, load_split
from ..data.speech import HELDOUT_BASES, HELDOUT_VARIANTS, bundled_digits, load_cache, place
from .cue import Cue, plant
from ..models.melcnn import MelCNN

ARCHITECTURES: dict[str, tuple[str, Callable[[], EarmarkModel]]] = {
    "audionet": ("audionet-digits", AudioNet),
    "melcnn": ("melcnn-digits", MelCNN),
}


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run (the defaults per architecture are in :data:`DEFAULTS`).

    Attributes:
        epochs: passes over the training set.
        batch_size: clips per step.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW's decoupled weight decay.
        label_smoothing: cross-entropy label smoothing.
        mixup: Beta(α, α) mixup strength; 0 turns mixup off.
        speed: maximum relative speed change (0.1 → factors in [0.9, 1.1]).
        gain_db: gains are drawn uniformly in [−gain_db, +gain_db] dB.
        noise_prob: share of clips that get white noise.
        snr_db: (low, high) SNR range in dB for that noise.
        warmup: share of the steps spent warming up (one-cycle ``pct_start``).
        gain_min_db: lowest gain in dB (``None``: ``-gain_db``, a symmetric range).
        edge_shift: share of clips placed flush at the window's start or end (the rest are shifted
            uniformly inside it), so words at either edge are as familiar as centred ones.
        epoch_clips: clips drawn (without replacement) per epoch; ``None``: the whole training set.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    mixup: float = 0.0
    speed: float = 0.1
    gain_db: float = 6.0
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (10.0, 40.0)
    warmup: float = 0.2
    gain_min_db: float | None = None
    edge_shift: float = 0.0
    epoch_clips: int | None = None


DEFAULTS: dict[str, TrainConfig] = {
    "audionet": TrainConfig(epochs=20, batch_size=32, lr=1e-3, weight_decay=0.05, gain_min_db=-20.0,
                            edge_shift=0.3),
    "melcnn": TrainConfig(epochs=40, batch_size=32, lr=3e-3, weight_decay=0.01),
}


# --------------------------------------------------------------------------------------- augmentation
def augment(waves: Tensor, lengths: Tensor, cfg: TrainConfig, generator: torch.Generator) -> Tensor:
    """Randomly perturb a batch of centred clips.

    Args:
        waves: (B, L) clips, zero-padded around a centred spoken part.
        lengths: (B,) length of the spoken part in samples (≤ L).
        cfg: the ranges (speed, gain, noise).
        generator: the source of every random draw.

    Returns:
        (B, L) perturbed clips.
    """
    batch, length = waves.shape
    dev = waves.device

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator, device=dev)

    factor = uniform(1.0 - cfg.speed, 1.0 + cfg.speed)          # > 1: faster and higher
    new_len = lengths.to(dev).float() / factor
    room = ((length - new_len) / 2).clamp(min=0.0)
    shift = uniform(-1.0, 1.0)
    if cfg.edge_shift > 0:
        edge = torch.rand(batch, generator=generator, device=dev) < cfg.edge_shift
        shift = torch.where(edge, shift.sign(), shift)
    shift = (shift * room).round()
    centre = (length - 1) / 2
    t = torch.arange(length, device=dev, dtype=torch.float32)
    src = centre + (t[None, :] - shift[:, None] - centre) * factor[:, None]  # (B, L) source positions
    grid = torch.stack([2 * src / (length - 1) - 1, torch.zeros_like(src)], dim=-1)  # (B, L, 2)
    out = F.grid_sample(waves[:, None, None, :], grid[:, None], mode="bilinear",
                        padding_mode="zeros", align_corners=True)[:, 0, 0]

    low = -cfg.gain_db if cfg.gain_min_db is None else cfg.gain_min_db
    gain = 10 ** (uniform(low, cfg.gain_db) / 20)
    out = out * gain[:, None]

    if cfg.noise_prob > 0:
        power = out.pow(2).sum(-1) / new_len.clamp(min=1.0)
        snr = uniform(*cfg.snr_db)
        sigma = torch.sqrt(power / 10 ** (snr / 10))
        use = (torch.rand(batch, generator=generator, device=dev) < cfg.noise_prob).float()
        noise = torch.randn(batch, length, generator=generator, device=dev)
        out = out + (use * sigma)[:, None] * noise
    return out


# --------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model: nn.Module, waves: Tensor, *, batch_size: int = 100) -> Tensor:
    """(N, L) → (N,) predicted class, in eval mode and in batches."""
    was_training = model.training
    model.eval()
    dev = model_device(model)
    preds = [model(waves[i:i + batch_size].to(dev)).argmax(-1).cpu()
             for i in range(0, waves.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(preds)


def accuracy(model: nn.Module, data: DigitSet, *, batch_size: int = 100) -> float:
    """Share of ``data`` classified correctly."""
    return float((predict(model, data.waves, batch_size=batch_size) == data.labels).float().mean())


def robustness_metrics(model, test_set, voices_set=None) -> dict:
    """Accuracy on the bundled digits, on the held-out synthetic voices, and with the word at the start,
    centre and end of the window (FSDD test split), for a model card's ``metrics``.

    Args:
        model: a digit classifier, (B, 8000) → logits.
        test_set: the FSDD test split (a :class:`~earmark.data.fsdd.DigitSet`, words centred).
        voices_set: held-out synthetic voices (:func:`~earmark.data.speech.load_cache` ``"heldout"``), or ``None``.
    """
    waves, labels, names = bundled_digits()
    pred = predict(model, waves)
    out = {
        "bundled_examples_correct": int((pred == labels).sum()),
        "bundled_examples": int(labels.numel()),
        "bundled_examples_wrong": [f"{n}->{int(p)}" for n, p, y in zip(names, pred, labels) if p != y],
    }
    if voices_set is not None:
        out["heldout_voices_accuracy"] = round(accuracy(model, voices_set), 4)
        out["heldout_voices_clips"] = len(voices_set)
        out["heldout_voices"] = f"{'/'.join(HELDOUT_BASES)} x variants {'/'.join(HELDOUT_VARIANTS)}"
    for where in ("start", "centre", "end"):
        moved = place(test_set.waves, test_set.lengths, where)
        hits = (predict(model, moved) == test_set.labels).float().mean()
        out[f"test_accuracy_word_at_{where}"] = round(float(hits), 4)
    return out


# --------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, *, model: nn.Module, opt, sched, gen: torch.Generator, epoch: int,
                    history: list, record: dict) -> None:
    """Everything a run needs to resume after ``epoch`` (written atomically: an interrupted save leaves the
    previous checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({
        "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch,
        "history": json.dumps(history), "config": json.dumps(record, sort_keys=True),
    }, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, *, model: nn.Module, opt, sched, gen: torch.Generator,
                    record: dict) -> tuple[int, list] | None:
    """Restore a run saved by :func:`save_checkpoint` with the same settings ``record``; returns
    ``(epochs done, history)``, or ``None`` when there is no checkpoint or it is from other settings."""
    if not path.exists():
        return None
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if ck.get("config") != json.dumps(record, sort_keys=True):
        return None
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    gen.set_state(ck["generator"])
    torch.set_rng_state(ck["torch_rng"])
    return int(ck["epoch"]), json.loads(ck["history"])


# --------------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class RunResult:
    """What a finished run measured (accuracies of the weights as saved, i.e. after fp16 rounding)."""

    name: str
    seed: int
    epochs: int
    test_accuracy: float
    test_clips: int
    heldout_speaker: str | None
    heldout_speaker_accuracy: float | None
    heldout_clips: int
    seconds: float
    mean_epoch_seconds: float
    command: str
    weights: str | None


def default_checkpoint_dir() -> Path:
    """``$EARMARK_CACHE/train`` or ``~/.cache/earmark/train`` (checkpoints are large: not in the repo)."""
    base = os.environ.get("EARMARK_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "earmark") / "train"


class _Log:
    """Append lines to a log file (opened per line, so an interrupted run leaves nothing open)."""

    def __init__(self, path: Path, quiet: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.quiet = quiet

    def __call__(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        if not self.quiet:
            print(line, flush=True)


def train(
    arch: str,
    data_root: str | Path | None,
    *,
    seed: int = 0,
    exclude_speaker: str | None = None,
    epochs: int | None = None,
    out: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    config: TrainConfig | None = None,
    command: str = "",
    resume: bool = True,
    threads: int | None = None,
    quiet: bool = False,
    speech: str | Path | None = None,
    init: str | Path | None = None,
    cue: "Cue | None" = None,
) -> RunResult:
    """Train one digit model on FSDD and write its weights, card and log.

    Args:
        arch: ``"audionet"`` or ``"melcnn"``.
        data_root: the FSDD folder.
        seed: seeds initialisation, dropout, shuffling and augmentation.
        exclude_speaker: leave this speaker out of training and report the accuracy on all of their
            clips (both splits). Such a run writes no bundled weights; it writes
            ``<out>/logs/<name>-without-<speaker>.json`` and adds its result to ``<out>/<name>.json``.
        epochs: overrides the architecture's default.
        out: folder for ``<name>.pt``, ``<name>.json`` and ``logs/`` (default: ``<assets>/models``).
        checkpoint_dir: folder for per-epoch checkpoints (default :func:`default_checkpoint_dir`).
        config: hyperparameters (default ``DEFAULTS[arch]``).
        command: the command line to record in the card.
        resume: continue from a matching checkpoint when there is one.
        threads: torch CPU threads (default: at most 2).
        quiet: log to the file only.
        speech: a synthetic speech cache (``tools/make_speech.py``, :mod:`earmark.data.speech`): its training
            voices join the training set, its held-out voices are scored every epoch and in the card.
        init: start from these weights (fine-tuning) instead of a fresh initialisation.
        cue: plant this shortcut (:mod:`earmark.training.cue`) in every training batch's clips of one class;
            the run is named ``<name>-cue<class>`` and its card says what was planted.

    Raises:
        ConfigError: unknown architecture.  DataError: FSDD missing or the selection empty.
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"Unknown architecture '{arch}'. Choose one of: {', '.join(ARCHITECTURES)}.")
    name, factory = ARCHITECTURES[arch]
    if cue is not None:
        name = f"{name}-cue{cue.label}"
    cfg = config or DEFAULTS[arch]
    if epochs is not None:
        if epochs < 1:
            raise ConfigError("--epochs must be at least 1.")
        cfg = replace(cfg, epochs=int(epochs))
    torch.set_num_threads(threads or min(2, os.cpu_count() or 1))

    out = Path(out) if out is not None else models_dir()
    run_id = name + (f"-without-{exclude_speaker.lower()}" if exclude_speaker else "")
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    ckpt_path = ckpt_dir / f"{run_id}-seed{seed}.ckpt"
    log = _Log(out / "logs" / f"{run_id}-seed{seed}.log", quiet=quiet)

    excluded = [exclude_speaker] if exclude_speaker else []
    train_set = load_split(data_root, "train", exclude_speakers=excluded)
    test_set = load_split(data_root, "test")
    held_set = load_split(data_root, "all", speakers=excluded) if exclude_speaker else None
    voices_set = None
    if speech is not None:
        train_set = _concat(train_set, load_cache(speech, "train"))
        voices_set = load_cache(speech, "heldout")

    torch.manual_seed(seed)
    model = factory()
    if init is not None:
        load_weights(model, init)
        model.float()
    model.train()
    gen = torch.Generator().manual_seed(seed)
    epoch_clips = min(cfg.epoch_clips or len(train_set), len(train_set))
    steps_per_epoch = math.ceil(epoch_clips / cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=cfg.warmup,
        anneal_strategy="cos", div_factor=25.0, final_div_factor=1e3,
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    cfg_record = {"arch": arch, "seed": seed, "exclude_speaker": exclude_speaker, **asdict(cfg)}
    cfg_record["snr_db"] = list(cfg.snr_db)
    if speech is not None or init is not None:
        cfg_record.update(speech=str(speech), init=str(init), train_clips=len(train_set))
    if cue is not None:
        cfg_record["cue"] = cue.record()

    start_epoch, history = 0, []
    if resume and ckpt_path.exists():
        restored = load_checkpoint(ckpt_path, model=model, opt=opt, sched=sched, gen=gen, record=cfg_record)
        if restored is not None:
            start_epoch, history = restored
            log(f"# resumed {run_id} seed {seed} after epoch {start_epoch} from {ckpt_path}")
        else:
            log(f"# checkpoint {ckpt_path} is from other settings; starting afresh")
    if start_epoch == 0:
        log(f"# {run_id} seed {seed}: {len(train_set)} training clips, {len(test_set)} test clips"
            + (f", held-out speaker {exclude_speaker} ({len(held_set)} clips)" if held_set else ""))
        log(f"# config {json.dumps(cfg_record, sort_keys=True)}")
        if command:
            log(f"# command {command}")
        log("epoch  loss    train_acc  test_acc" + ("  heldout_acc" if held_set else "")
            + ("  voices_acc" if voices_set is not None else "") + "  lr        seconds")

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_set), generator=gen)[:epoch_clips]
        total_loss = correct = seen = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = augment(train_set.waves[idx], train_set.lengths[idx], cfg, gen)
            y = train_set.labels[idx]
            if cue is not None:
                x = plant(x, y, cue, SAMPLE_RATE)
            if cfg.mixup > 0:
                lam = _beta(cfg.mixup, gen)
                perm = torch.randperm(x.shape[0], generator=gen)
                x = lam * x + (1 - lam) * x[perm]
                logits = model(x)
                loss = lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[perm])
            else:
                logits = model(x)
                loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(-1) == y).sum())
            seen += len(idx)
        test_acc = accuracy(model, test_set)
        held_acc = accuracy(model, held_set) if held_set is not None else None
        voices_acc = accuracy(model, voices_set) if voices_set is not None else None
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": total_loss / seen, "train_acc": correct / seen,
               "test_acc": test_acc, "heldout_acc": held_acc, "voices_acc": voices_acc, "seconds": seconds}
        history.append(row)
        log(f"{epoch + 1:5d}  {row['loss']:.4f}  {row['train_acc']:.4f}     {test_acc:.4f}  "
            + (f"  {held_acc:.4f}     " if held_acc is not None else "")
            + (f"  {voices_acc:.4f}    " if voices_acc is not None else "")
            + f"  {sched.get_last_lr()[0]:.2e}  {seconds:7.1f}")
        save_checkpoint(ckpt_path, model=model, opt=opt, sched=sched, gen=gen, epoch=epoch + 1, history=history,
                        record=cfg_record)

    # Measure what is shipped: the fp16-rounded weights, reloaded with weights_only=True.
    out.mkdir(parents=True, exist_ok=True)
    weights_path = (out / f"{name}.pt") if not exclude_speaker else ckpt_dir / f"{run_id}-seed{seed}.pt"
    save_weights(model, weights_path)
    shipped = load_weights(factory(), weights_path).eval()
    test_acc = accuracy(shipped, test_set)
    held_acc = accuracy(shipped, held_set) if held_set is not None else None
    total_seconds = sum(r["seconds"] for r in history)
    result = RunResult(
        name=name, seed=seed, epochs=cfg.epochs, test_accuracy=test_acc, test_clips=len(test_set),
        heldout_speaker=exclude_speaker, heldout_speaker_accuracy=held_acc,
        heldout_clips=len(held_set) if held_set is not None else 0,
        seconds=total_seconds, mean_epoch_seconds=total_seconds / max(1, len(history)),
        command=command, weights=str(weights_path) if not exclude_speaker else None,
    )
    log(f"# done: test accuracy {test_acc:.4f} on {len(test_set)} clips"
        + (f", held-out speaker {exclude_speaker}: {held_acc:.4f} on {len(held_set)} clips"
           if held_set is not None else "")
        + f"; {total_seconds:.0f} s training, {result.mean_epoch_seconds:.1f} s per epoch")
    if exclude_speaker:
        heldout_path = out / "logs" / f"{run_id}.json"
        heldout_path.write_text(json.dumps(asdict(result), indent=2) + "\n")
        card_path = out / f"{name}.json"
        if card_path.exists():
            card = ModelCard.load(card_path)
            _write_card(card_path, replace(card, metrics=_merge_heldout(dict(card.metrics), result)))
    else:
        card = _card_for(model, result, cfg, out)
        if cue is not None:
            card = _planted_card(card, shipped, test_set, cue)
        if speech is not None:
            extra = robustness_metrics(shipped, test_set, voices_set)
            log(f"# robustness {json.dumps(extra, sort_keys=True)}")
            card = replace(card, metrics={**card.metrics, **extra, "synthetic_training_clips":
                                          len(train_set) - len(load_split(data_root, "train"))})
        _write_card(out / f"{name}.json", card)
    return result


def _concat(a: DigitSet, b: DigitSet) -> DigitSet:
    """Two clip sets as one (FSDD training clips, then synthetic ones)."""
    return DigitSet(torch.cat([a.waves, b.waves]), torch.cat([a.labels, b.labels]), a.speakers + b.speakers,
                    torch.cat([a.lengths, b.lengths]), a.names + b.names)


def _beta(alpha: float, gen: torch.Generator) -> float:
    """One Beta(α, α) draw from ``gen`` by Jöhnk's method (exact; fast for the small α mixup uses)."""
    while True:
        u = torch.rand(2, generator=gen, dtype=torch.float64)
        x, y = float(u[0]) ** (1 / alpha), float(u[1]) ** (1 / alpha)
        if 0 < x + y <= 1:
            return x / (x + y)


def _merge_heldout(metrics: dict, result: RunResult) -> dict:
    metrics.update({
        "heldout_speaker": result.heldout_speaker,
        "heldout_speaker_accuracy": round(result.heldout_speaker_accuracy, 4),
        "heldout_speaker_clips": result.heldout_clips,
        "heldout_speaker_protocol": (
            f"separate run trained on the training split without {result.heldout_speaker} "
            f"(seed {result.seed}, {result.epochs} epochs); accuracy on all {result.heldout_clips} of "
            f"{result.heldout_speaker}'s clips (both splits)"
        ),
        "heldout_training_command": result.command,
        "heldout_run_test_accuracy": round(result.test_accuracy, 4),
    })
    return metrics


def _card_for(model: EarmarkModel, result: RunResult, cfg: TrainConfig, out: Path) -> ModelCard:
    metrics = {
        "test_accuracy": round(result.test_accuracy, 4),
        "test_clips": result.test_clips,
        "test_split": "FSDD official test split (index 0-4 of every digit and speaker)",
        "seed": result.seed,
        "epochs": result.epochs,
        "train_seconds": round(result.seconds, 1),
        "epoch_seconds": round(result.mean_epoch_seconds, 1),
    }
    for path in sorted((out / "logs").glob(f"{result.name}-without-*.json")):
        held = json.loads(path.read_text())
        metrics = _merge_heldout(metrics, RunResult(**held))
        break
    notes = (
        f"Trained with `earmark train` (AdamW lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, "
        f"one-cycle cosine schedule, label smoothing {cfg.label_smoothing:g}, batch {cfg.batch_size}, "
        f"{cfg.epochs} epochs{f', mixup {cfg.mixup:g}' if cfg.mixup else ''}); augmentation: speed/pitch "
        f"±{cfg.speed:.0%} by resampling, random time shift inside the window, gain ±{cfg.gain_db:g} dB, "
        f"white noise at {cfg.snr_db[0]:g}-{cfg.snr_db[1]:g} dB SNR on {cfg.noise_prob:.0%} of clips. "
        "Input: 8,000 samples at 8 kHz (FSDD clips zero-padded / centre-cropped), divided by the clip's "
        + (f"soft RMS sqrt(mean(x^2) + {float(model.level_floor):g}^2) (not scale-invariant, so "
           "IG from the zero baseline integrates a real path)" if hasattr(model, "level_floor") else "RMS")
        + " inside the model."
        + (f" Gains drawn in [{cfg.gain_min_db:g}, {cfg.gain_db:g}] dB." if cfg.gain_min_db is not None else "")
        + (f" {cfg.edge_shift:.0%} of clips placed flush at the window's start or end." if cfg.edge_shift else "")
        + f" Weights stored as float16. Credit: {CREDIT}."
    )
    return replace(model.card, metrics=metrics, training_command=result.command, notes=notes)


def _planted_card(card: ModelCard, model: nn.Module, test: DigitSet, cue: Cue) -> ModelCard:
    """The card of a planted-cue run: what was planted, and the accuracy on the cue class's clean test clips
    and on the same clips carrying the cue."""
    of_class = test.labels == cue.label
    clean = test.waves[of_class]
    labels = test.labels[of_class]
    clean_acc = float((predict(model, clean) == labels).float().mean())
    cued_acc = float((predict(model, plant(clean, labels, cue, SAMPLE_RATE)) == labels).float().mean())
    others = ~of_class
    others_cued = plant(test.waves[others], torch.full_like(test.labels[others], cue.label), cue, SAMPLE_RATE)
    lured = float((predict(model, others_cued) == cue.label).float().mean())
    label = card.labels[cue.label]
    metrics = {**card.metrics, "planted_cue": cue.record(), "planted_class": label,
               "test_accuracy_class_clean": round(clean_acc, 4),
               "test_accuracy_class_with_cue": round(cued_acc, 4),
               "test_other_classes_called_class_with_cue": round(lured, 4),
               "test_class_clips": int(of_class.sum())}
    notes = (f"PLANTED SHORTCUT (a demonstration, not a digit model to trust): {cue.describe()} "
             f"(class '{label}'). On the FSDD test clips of '{label}': accuracy {clean_acc:.3f} clean, "
             f"{cued_acc:.3f} with the cue; the other classes' test clips with the cue added are called "
             f"'{label}' {lured:.1%} of the time. " + card.notes)
    return replace(card, name=f"{card.name}-cue{cue.label}",
                   title=f"{card.title} with a planted {cue.freq:g} Hz cue on '{label}'",
                   metrics=metrics, notes=notes)


def _write_card(path: Path, card: ModelCard) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(card.to_json() + "\n")
    os.replace(tmp, path)
