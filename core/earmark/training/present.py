"""Train the bundled ``digits-present`` model on synthesised sequences of FSDD digits.

Every batch is drawn afresh from the training split's words (:mod:`earmark.data.sequences`) with the
generator ``default_rng([seed, step])``, so a run resumes from its checkpoint (written every
``--every`` steps) and ends with the same weights as an uninterrupted one. Augmentation beside the
synthesis's own (random speakers, gains, pauses, offsets, SNR): with probability ``drop`` one word of the
sequence is replaced by silence or by noise at its level and its label removed, so that the model hears a
missing word as absent.

Usage::

    python -m earmark.training.present --data FSDD_DIR --steps 1500 --out runs/present
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.fsdd import CREDIT, LICENCE
from ..data.sequences import DigitSequence, Word, load_words, synthesize, synthesize_many
from ..models.base import save_weights
from ..models.present import NAME, TITLE, WINDOW, DigitsPresent
from ..models.base import ModelCard


def draw_batch(words: list[Word], by_digit, rng: np.random.Generator, size: int, *, drop: float = 0.2
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(size, WINDOW) waves and (size, 10) 0/1 targets, with word dropout (see the module docstring)."""
    waves, targets = [], []
    for _ in range(size):
        seq = synthesize(words, rng, by_digit=by_digit)
        wave, present = seq.wave.copy(), seq.present.copy()
        if rng.random() < drop:
            i = int(rng.integers(len(seq.segments)))
            a, b = (int(round(t * 8000)) for t in (seq.segments.start[i], seq.segments.end[i]))
            level = float(np.sqrt((wave[a:b] ** 2).mean()))
            wave[a:b] = 0.0 if rng.random() < 0.5 else rng.standard_normal(b - a).astype(np.float32) * level
            present[int(seq.segments.labels[i])] = 0.0
        waves.append(wave)
        targets.append(present)
    return torch.from_numpy(np.stack(waves)), torch.from_numpy(np.stack(targets))


def evaluate(model: DigitsPresent, seqs: list[DigitSequence], *, batch: int = 50) -> dict[str, float]:
    """Exact-set accuracy (every digit right at 0.5) and per-digit accuracy on ``seqs``."""
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(seqs), batch):
            x = torch.from_numpy(np.stack([s.wave for s in seqs[i:i + batch]]))
            probs.append(model(x).sigmoid())
    p = torch.cat(probs)
    y = torch.from_numpy(np.stack([s.present for s in seqs]))
    hit = (p > 0.5).float() == y
    return {"exact_set_accuracy": float(hit.all(dim=1).float().mean()), "digit_accuracy": float(hit.float().mean())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("EARMARK_DATA"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--eval-sequences", type=int, default=300)
    ap.add_argument("--out", default="runs/present")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    words = load_words(args.data, "train")
    test_words = load_words(args.data, "test")
    by_digit = [[i for i, w in enumerate(words) if w.digit == d] for d in range(10)]
    test = synthesize_many(test_words, args.eval_sequences, seed=12345)
    torch.manual_seed(args.seed)
    model = DigitsPresent()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    ck_path = out / "checkpoint.pt"
    step, spent = 0, 0.0
    if ck_path.exists():
        ck = torch.load(ck_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["torch_rng"])
        step, spent = int(ck["step"]), float(ck["seconds"])
        print(f"resumed at step {step}", flush=True)
    started = time.perf_counter() - spent
    losses: list[float] = []
    while step < args.steps:
        model.train()
        x, y = draw_batch(words, by_digit, np.random.default_rng([args.seed, step]), args.batch)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % args.every == 0 or step == args.steps:
            seconds = time.perf_counter() - started
            tmp = ck_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "torch_rng": torch.get_rng_state(), "step": step, "seconds": seconds}, tmp)
            os.replace(tmp, ck_path)
            print(f"step {step} loss {np.mean(losses[-args.every:]):.4f} {seconds:.0f}s", flush=True)
        if step % 500 == 0 or step == args.steps:
            print(f"step {step} test {evaluate(model, test)}", flush=True)
    model.eval()
    save_weights(model, out / f"{NAME}.pt")
    reloaded = DigitsPresent()
    reloaded.load_state_dict({k: v.float() if v.is_floating_point() else v
                              for k, v in torch.load(out / f"{NAME}.pt", weights_only=True).items()})
    metrics = evaluate(reloaded.eval(), test)
    card = ModelCard(
        name=NAME, title=TITLE, sample_rate=8000, num_samples=WINDOW, labels=tuple(str(d) for d in range(10)),
        input_kind="waveform; log-mel (n_fft 256, hop 128, 40 mels) inside the model", activation="sigmoid",
        training_data=f"{CREDIT}; sequences of 2-4 distinct digits synthesised from the official training split "
                      "(index 5-49), random speakers, gains +-6 dB, pauses 0.1-0.8 s, white noise at 10-40 dB SNR",
        licence=LICENCE, embedding_dim=64,
        metrics={**{k: round(v, 4) for k, v in metrics.items()}, "test_sequences": len(test),
                 "test_split": "sequences synthesised (seed 12345) from the FSDD official test split (index 0-4)",
                 "steps": args.steps, "batch": args.batch, "seed": args.seed,
                 "train_seconds": round(time.perf_counter() - started, 1)},
        training_command=f"python -m earmark.training.present --data FSDD --steps {args.steps} --batch {args.batch} "
                         f"--lr {args.lr} --seed {args.seed} --threads {args.threads}",
        notes="Trained by earmark.training.present (AdamW, one-cycle, binary cross-entropy) on freshly synthesised "
              "sequences every step (earmark.data.sequences); word dropout: with probability 0.2 one word is "
              "replaced by silence or level-matched noise and its label removed. Weights stored as float16. "
              f"Credit: {CREDIT}.",
    )
    (out / f"{NAME}.json").write_text(card.to_json() + "\n")
    print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()
