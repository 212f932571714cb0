"""Render synthetic spoken digits for training and for the held-out voice score (not committed).

For every voice in :mod:`earmark.data.speech` (training: ``TRAIN_BASES × TRAIN_VARIANTS``; held out:
``HELDOUT_BASES × HELDOUT_VARIANTS``; the bundled examples' voices ``en-us`` and ``f3`` never appear)
and every digit word, espeak-ng speaks the word at a random speed and pitch; sox converts it to 8 kHz
mono, trims the silence, and (training renditions only) applies a random pitch shift, tempo change and
reverb; the clip gets a random peak level and, on part of the training renditions, white noise at a
random SNR. Each word is centred in the 1 s window, as FSDD loads. Every draw comes from one seeded
``numpy`` generator, sox runs in repeatable mode, so the same seed writes the same file.

Output: one ``.npz`` (see :mod:`earmark.data.speech`), by default ``$EARMARK_CACHE/speech/digits-8k.npz``.
Needs ``espeak-ng`` and ``sox`` (``apt-get install -y espeak-ng sox``).

Usage:
    python tools/make_speech.py [--out FILE] [--takes N] [--heldout-takes N] [--seed S]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from earmark.examples import DIGIT_WORDS  # noqa: E402
from earmark.data.speech import (BUNDLED_BASES, BUNDLED_VARIANTS, HELDOUT_BASES, HELDOUT_VARIANTS,  # noqa: E402
                            TRAIN_BASES, TRAIN_VARIANTS, default_cache_path, voice_spec)

SAMPLE_RATE = 8000
NUM_SAMPLES = 8000
TRIM = ["silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse"]


def render(word: str, voice: str, *, speed: int, pitch: int, effects: list[str], tmp: Path) -> np.ndarray:
    """espeak-ng → sox (8 kHz mono, effects, trim) → float32 samples (≤ 1 s)."""
    raw, out = tmp / "raw.wav", tmp / "out.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), word],
                   check=True, capture_output=True)
    subprocess.run(["sox", "-V1", "-R", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out),
                    *effects, *TRIM, "norm", "-1", "trim", "0", "1"], check=True, capture_output=True)
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == SAMPLE_RATE
    return data.reshape(-1)[:NUM_SAMPLES]


def random_effects(rng: np.random.Generator) -> list[str]:
    """pitch ±300 cents, tempo 0.85–1.15, reverb on half of the renditions (sox effect arguments)."""
    fx = ["pitch", f"{rng.uniform(-300, 300):.0f}", "tempo", "-s", f"{rng.uniform(0.85, 1.15):.3f}"]
    if rng.random() < 0.5:
        fx += ["reverb", f"{rng.uniform(10, 60):.0f}", "50", f"{rng.uniform(20, 100):.0f}"]
    return fx


def centre(word: np.ndarray) -> np.ndarray:
    out = np.zeros(NUM_SAMPLES, np.float32)
    first = (NUM_SAMPLES - len(word)) // 2
    out[first:first + len(word)] = word
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output .npz (default: the cache)")
    parser.add_argument("--takes", type=int, default=2, help="random renditions per training voice and digit")
    parser.add_argument("--heldout-takes", type=int, default=2, help="renditions per held-out voice and digit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"'{tool}' is not installed: apt-get install -y espeak-ng sox")
    assert not set(TRAIN_BASES + HELDOUT_BASES) & set(BUNDLED_BASES)
    assert not set(TRAIN_VARIANTS + HELDOUT_VARIANTS) & set(BUNDLED_VARIANTS)
    out = args.out or default_cache_path()
    rng = np.random.default_rng(args.seed)
    plan = [(voice_spec(b, v), "train", args.takes) for b in TRAIN_BASES for v in TRAIN_VARIANTS]
    plan += [(voice_spec(b, v), "heldout", args.heldout_takes) for b in HELDOUT_BASES for v in HELDOUT_VARIANTS]
    waves, lengths, labels, voices, splits = [], [], [], [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for voice, split, takes in plan:
            for take in range(takes):
                for digit, word in enumerate(DIGIT_WORDS):
                    plain = split == "heldout" and take == 0          # one default rendition per held-out voice
                    speed = 175 if plain else int(rng.integers(120, 231))
                    pitch = 50 if plain else int(rng.integers(20, 81))
                    effects = random_effects(rng) if split == "train" else []
                    word_wave = render(word, voice, speed=speed, pitch=pitch, effects=effects, tmp=Path(tmp))
                    if len(word_wave) < 400:
                        continue  # espeak-ng produced (almost) nothing
                    word_wave = word_wave * 10 ** (rng.uniform(-24, 0) / 20)      # peak −25…−1 dBFS
                    if split == "train" and rng.random() < 0.3:
                        snr = rng.uniform(15, 40)
                        sigma = np.sqrt(np.mean(word_wave ** 2) / 10 ** (snr / 10))
                        word_wave = word_wave + sigma * rng.standard_normal(len(word_wave))
                    waves.append(centre(word_wave.astype(np.float32)))
                    lengths.append(len(word_wave))
                    labels.append(digit)
                    voices.append(voice)
                    splits.append(split)
            print(f"{voice:28s} {split:8s} {len(waves):5d} clips  {time.perf_counter() - started:6.1f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.stem + ".tmp.npz")
    np.savez_compressed(tmp_out, waves=np.stack(waves), lengths=np.array(lengths), labels=np.array(labels),
                        voices=np.array(voices), split=np.array(splits))
    tmp_out.replace(out)
    print(f"wrote {len(waves)} clips to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
