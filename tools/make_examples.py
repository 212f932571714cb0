"""Regenerate the bundled example clips in ``assets/examples/`` (or ``$EARMARK_ASSETS/examples``).

* Speech: the digits "zero".."nine" spoken by espeak-ng in two voices, converted by sox to 8 kHz mono
  16-bit WAV, leading/trailing silence trimmed, peak-normalised to −1 dBFS, at most 1 s.
* Synthetic: 1 s at 8 kHz from :func:`earmark.examples.generate_signal` (the same code as the dashboard's
  signal generator), written as 16-bit WAV.

Deterministic: espeak-ng is deterministic, sox runs in repeatable mode (``-R``) without dither (``-D``),
and the noise uses a seeded generator. Needs ``espeak-ng`` and ``sox`` on the PATH
(``apt-get install -y espeak-ng sox``); ``--synthetic-only`` skips the speech.

Usage:
    python tools/make_examples.py [--out DIR] [--synthetic-only]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from earmark.audio import save_wav  # noqa: E402
from earmark.examples import DIGIT_WORDS, examples_dir, generate_signal  # noqa: E402

SAMPLE_RATE = 8000
MAX_SECONDS = 1.0
#: espeak-ng voice → tag in the file name. en-us: American male; en+f3: British-based female variant.
VOICES = {"en-us": "en-us", "en+f3": "en-f3"}
#: file stem → generate_signal arguments (1 s at 8 kHz each).
SYNTHETIC = {
    "tone_440": dict(kind="tone", freq=440.0),
    "chirp_100-3500": dict(kind="chirp", f0=100.0, f1=3500.0),
    "bursts_440-1000": dict(kind="bursts", freq=440.0, freq2=1000.0, bursts=4, burst_seconds=0.1),
    "noise_white": dict(kind="noise"),
    "two_tones_440-1000": dict(kind="mix", freq=440.0, freq2=1000.0),
}
#: sox effects: trim silence below 0.5 % at both ends, then normalise the peak to −1 dBFS.
SOX_EFFECTS = ["silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse", "norm", "-1"]


def speak(word: str, voice: str, out: Path) -> None:
    """Write ``word`` spoken by espeak-ng ``voice`` to ``out`` as trimmed 8 kHz mono 16-bit WAV (≤ 1 s)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), word], check=True)
        subprocess.run(["sox", "-V1", "-R", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out),
                        *SOX_EFFECTS, "trim", "0", str(MAX_SECONDS)], check=True)


def make_synthetic(out_dir: Path) -> list[Path]:
    paths = []
    for stem, args in SYNTHETIC.items():
        wave = generate_signal(sample_rate=SAMPLE_RATE, seconds=MAX_SECONDS,
                               generator=torch.Generator().manual_seed(0), **args)
        path = out_dir / f"{stem}.wav"
        save_wav(path, wave, SAMPLE_RATE)
        paths.append(path)
    return paths


def make_speech(out_dir: Path) -> list[Path]:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"'{tool}' is not installed: apt-get install -y espeak-ng sox "
                             "(or pass --synthetic-only).")
    paths = []
    for digit, word in enumerate(DIGIT_WORDS):
        for voice, tag in VOICES.items():
            path = out_dir / f"digit_{digit}_{tag}.wav"
            speak(word, voice, path)
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the assets examples folder)")
    parser.add_argument("--synthetic-only", action="store_true", help="skip the espeak-ng speech clips")
    args = parser.parse_args(argv)
    out_dir = args.out or examples_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = make_synthetic(out_dir)
    if not args.synthetic_only:
        paths += make_speech(out_dir)
    total = 0
    for path in paths:
        info = sf.info(str(path))
        total += path.stat().st_size
        print(f"{path.name:28s} {info.samplerate} Hz  {info.channels} ch  {info.duration:.3f} s  {info.subtype}")
    print(f"{len(paths)} clips, {total / 1024:.0f} KiB in {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
