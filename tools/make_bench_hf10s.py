"""Make the inputs of the 16 kHz x 10 s bench: Hugging Face AST and wav2vec2 folders that take 10 s, and a 10 s clip.

The model has the architecture of the bundled ``ast-digits`` (4 layers, hidden 96, 128 mel bins, 16 x 16
patches with strides 16 x 8) but ``max_length`` = 1,000 frames (10 s at a 10 ms hop; AST's input length
is fixed in frames, so the 1 s model cannot take 10 s). Its weights are random (seed 0): the bench times
the explainers against the model alone, which does not depend on what the weights learnt. The clip is
the ten bundled espeak-ng digits (en-us) "zero" .. "nine", each centred in 1 s at 16 kHz, one after another.

Usage:
    python tools/make_bench_hf10s.py --out runs/hf10s
    earmark bench --model runs/hf10s/ast-10s --clip runs/hf10s/count-16k-10s.wav \\
        --explainers ig,freqrise,learnable_mask --transforms stft --set freqrise.n_masks=300 --out runs/bench-hf10s
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    from transformers import (ASTForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForSequenceClassification)

    from earmark.audio import prepare, save_wav
    from earmark.examples import load_example
    from earmark.training.ast import ASTTrainConfig, SAMPLE_RATE, ast_config, feature_extractor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/hf10s", help="output folder (default runs/hf10s)")
    parser.add_argument("--seconds", type=int, default=10, help="input length in seconds (default 10)")
    args = parser.parse_args(argv)
    out = Path(args.out)

    frames = 100 * args.seconds
    cfg = replace(ASTTrainConfig(), max_length=frames)
    torch.manual_seed(0)
    model = ASTForAudioClassification(ast_config(cfg)).eval()
    folder = out / f"ast-{args.seconds}s"
    model.save_pretrained(folder, safe_serialization=True)
    feature_extractor(cfg, mean=-12.47, std=4.97).save_pretrained(folder)   # ~ast-digits' training statistics

    # wav2vec2 of the base model's shape (7 conv layers, strides 5,2,2,2,2,2,2; 50 frames a second), narrower
    # (64 conv channels, 4 layers of 96) so that 10 s passes take a CPU fraction of a second: random weights
    torch.manual_seed(0)
    w2v = Wav2Vec2ForSequenceClassification(Wav2Vec2Config(
        hidden_size=96, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384, conv_dim=(64,) * 7,
        classifier_proj_size=64, num_labels=10)).eval()
    w2v_folder = out / f"w2v-{args.seconds}s"
    w2v.save_pretrained(w2v_folder, safe_serialization=True)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(w2v_folder)

    words = [prepare(load_example(f"digit_{d}_en-us"), sample_rate=SAMPLE_RATE, num_samples=SAMPLE_RATE).wave
             for d in range(10)]
    clip = torch.cat((words * ((args.seconds + 9) // 10))[:args.seconds])
    save_wav(out / f"count-16k-{args.seconds}s.wav", clip, SAMPLE_RATE)
    print(f"wrote {folder} ({frames} frames, {sum(p.numel() for p in model.parameters()):,} parameters) "
          f", {w2v_folder} ({sum(p.numel() for p in w2v.parameters()):,} parameters) "
          f"and {out / f'count-16k-{args.seconds}s.wav'} ({clip.numel():,} samples at {SAMPLE_RATE} Hz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
