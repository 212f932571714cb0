"""Training of the bundled scan model (:mod:`earmark.models.scandigits`): digits at the window centre or
``background``, on windows composed on the fly from FSDD's **training** split and generated backgrounds.

Each training window (1 s at 8 kHz) is built like a moment of a long recording:

* 55 %: a digit whose spoken part (:func:`earmark.data.recording.speech_extent`) covers the window's
  centre, at a random point of the word (its central 90 %), sometimes with neighbouring words before and
  after it across a pause; label = the digit.
* 45 %: ``background``: the centre falls in a pause (words may sit off-centre on either side), or the
  window holds no words, time-reversed speech (speech-like, not a digit), clicks, breaths or hum only,
  or near-digital silence.

Every window gets a speed change (±10 %), a level drawn over 32 dB, and a noise bed (white, pink, brown or
hum at 5–40 dB SNR), often with clicks and breath-like bursts. The run is deterministic given the seed and
resumable (a checkpoint every ``checkpoint_every`` steps, restored when the settings match).

Run: ``python -m earmark.training.scan --data $EARMARK_DATA --out assets/models``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.fsdd import CREDIT, SAMPLE_RATE, default_root, list_recordings
from ..data.recording import _read, background, speech_extent
from ..models.base import save_weights
from ..models.scandigits import BACKGROUND, NAME, SCAN_LABELS, ScanDigits
from .digits import load_checkpoint, save_checkpoint

WINDOW = 8000
BG = len(SCAN_LABELS) - 1


def load_words(root) -> tuple[list[np.ndarray], np.ndarray]:
    """The spoken parts of FSDD's training split and their digits."""
    recs = list_recordings(root, split="train")
    words, labels = [], []
    for rec in recs:
        wave = _read(rec.path)
        a, b = speech_extent(wave, SAMPLE_RATE)
        words.append(wave[a:b].astype(np.float32))
        labels.append(rec.digit)
    return words, np.asarray(labels)


def _speed(word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    factor = rng.uniform(0.9, 1.1)
    n = max(2, int(round(word.shape[0] / factor)))
    return np.interp(np.linspace(0, word.shape[0] - 1, n), np.arange(word.shape[0]), word).astype(np.float32)


def _put(canvas: np.ndarray, word: np.ndarray, pos: int) -> None:
    lo, hi = max(0, pos), min(canvas.shape[0], pos + word.shape[0])
    if hi > lo:
        canvas[lo:hi] += word[lo - pos:hi - pos]


def compose(words: list[np.ndarray], labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One training window (8000,) and its label (a digit, or :data:`BG`)."""
    canvas = np.zeros(WINDOW, np.float32)
    c = WINDOW // 2
    level = 0.1 * 10 ** (rng.uniform(-26, 6) / 20)

    def word(i=None, reverse=False):
        i = int(rng.integers(0, len(words))) if i is None else i
        w = _speed(words[i], rng)
        if reverse:
            w = w[::-1].copy()
        return w * (level * 10 ** (rng.uniform(-4, 4) / 20) / (np.sqrt((w ** 2).mean()) + 1e-9)), int(labels[i])

    def neighbours(left_end: int, right_start: int):
        if rng.random() < 0.5:      # a word before, ending a pause before left_end
            w, _ = word(reverse=rng.random() < 0.15)
            _put(canvas, w, left_end - int(rng.uniform(0.08, 0.9) * SAMPLE_RATE) - w.shape[0])
        if rng.random() < 0.5:
            w, _ = word(reverse=rng.random() < 0.15)
            _put(canvas, w, right_start + int(rng.uniform(0.08, 0.9) * SAMPLE_RATE))

    mode = rng.random()
    if mode < 0.55:
        w, label = word()
        pos = c - int(rng.uniform(0.05, 0.95) * w.shape[0])
        _put(canvas, w, pos)
        neighbours(pos, pos + w.shape[0])
    else:
        label = BG
        kind = rng.random()
        if kind < 0.5:              # centre in a pause between words
            gap_l, gap_r = (int(rng.uniform(0.03, 0.5) * SAMPLE_RATE) for _ in range(2))
            neighbours(c - gap_l + int(0.08 * SAMPLE_RATE), c + gap_r - int(0.08 * SAMPLE_RATE))
        elif kind < 0.7:            # speech-like but not a digit
            w, _ = word(reverse=True)
            _put(canvas, w, c - int(rng.uniform(0.05, 0.95) * w.shape[0]))
        # else: no speech at all
    snr = rng.uniform(5, 40)
    bed = rng.choice(["white", "pink", "brown", "hum"], p=[0.3, 0.35, 0.2, 0.15])
    canvas += background(bed, WINDOW, rng) * level * 10 ** (-snr / 20)
    for sparse in ("clicks", "breath"):
        if rng.random() < (0.5 if label == BG else 0.25):
            canvas += background(sparse, WINDOW, rng) * level * rng.uniform(0.2, 1.2)
    if label == BG and rng.random() < 0.05:
        canvas = rng.standard_normal(WINDOW).astype(np.float32) * 10 ** (rng.uniform(-90, -60) / 20)
    return canvas.astype(np.float32), label


def batch(words, labels, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(size, 8000) windows and (size,) labels."""
    pairs = [compose(words, labels, rng) for _ in range(size)]
    return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.tensor([p[1] for p in pairs])


def train(root, out: Path, *, seed: int = 0, steps: int = 1500, batch_size: int = 64, lr: float = 3e-3,
          checkpoints: Path = Path("runs/train-scan"), checkpoint_every: int = 100, log=print) -> dict:
    """Train, save ``<out>/scan-digits.pt`` and its card; returns the metrics written on the card."""
    torch.manual_seed(seed)
    model = ScanDigits()
    words, labels = load_words(root)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)      # the checkpointed state that seeds each step's numpy draws
    record = {"seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr}
    ck = checkpoints / "scan.ckpt"
    restored = load_checkpoint(ck, model=model, opt=opt, sched=sched, gen=gen, record=record)
    start, history = restored if restored else (0, [])
    started = time.perf_counter()
    model.train()
    for step in range(start, steps):
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
        x, y = batch(words, labels, rng, batch_size)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            save_checkpoint(ck, model=model, opt=opt, sched=sched, gen=gen, epoch=step + 1, history=history,
                            record=record)
            log(f"step {step + 1}/{steps} loss {np.mean(history[-checkpoint_every:]):.3f} "
                f"{time.perf_counter() - started:.0f}s")
    model.eval()
    rng = np.random.default_rng(10**6 + seed)      # a fixed validation set of composed windows
    x, y = batch(words, labels, rng, 1000)
    with torch.no_grad():
        pred = model(x).argmax(-1)
    metrics = {
        "composed_window_accuracy_train_words": round(float((pred == y).float().mean()), 4),
        "background_recall": round(float((pred[y == BG] == BG).float().mean()), 4),
        "digit_recall": round(float((pred[y != BG] == y[y != BG]).float().mean()), 4),
        "steps": steps, "batch_size": batch_size, "seed": seed,
        "train_seconds_this_run": round(time.perf_counter() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / f"{NAME}.pt")
    card = model.card
    from dataclasses import replace
    card = replace(card, metrics=metrics, training_data=(
        f"{CREDIT}; official training split (index 5-49) cut to spoken parts, composed into 1 s windows "
        "with pauses, neighbouring words and generated backgrounds (earmark.training.scan)"),
        training_command=f"python -m earmark.training.scan --data $EARMARK_DATA --seed {seed} --steps {steps} "
                         f"--out assets/models",
        notes=(f"Label = the digit whose spoken part covers the window's centre, else '{BACKGROUND}' "
               "(silence, noise, hum, clicks, breath-like bursts, time-reversed speech, pauses between words). "
               "Scan it with a short hop (0.05-0.1 s): its track at a window's centre is the answer for that "
               "moment. AdamW, one-cycle lr, label smoothing 0.05; weights stored as float16. "
               f"Credit: {CREDIT}."))
    (out / f"{NAME}.json").write_text(card.to_json() + "\n")
    log(json.dumps(metrics))
    return metrics


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m earmark.training.scan", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="FSDD folder (default: $EARMARK_DATA)")
    p.add_argument("--out", default="assets/models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--checkpoints", default="runs/train-scan")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(args.data or default_root(), Path(args.out), seed=args.seed, steps=args.steps,
          batch_size=args.batch_size, checkpoints=Path(args.checkpoints),
          log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
