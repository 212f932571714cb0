#!/usr/bin/env bash
# The GPU check of issue 15, in one short script for a machine with an NVIDIA GPU (< 10 minutes):
# every device-dependent test on cuda (the `device` fixture's cuda cases), then `earmark bench` on cuda.
# Usage: tools/gpu_check.sh [OUT_DIR]   (default runs/gpu-check). Needs `make install-test` done first or
# does it itself. Writes tests.log, bench-*/bench.md and nvidia-smi.txt into OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/gpu-check}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" || { echo "tools/gpu_check.sh: no NVIDIA GPU visible" >&2; exit 1; }
make -s install-test
py=.venv/bin/python
$py -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA device')"
export PYTHONUNBUFFERED=1
# 1. The device-dependent tests, cuda cases only (transforms, probe, explainers, metrics, sonify).
timeout 300 $py -m pytest -q -p no:cacheprovider -k "cuda" -m "not browser" tests 2>&1 | tee "$out/tests.log"
# 2. The bench on the GPU: every explainer in the STFT, WAM in the DWT, at the papers' budgets.
timeout 240 .venv/bin/earmark bench --device cuda --model audionet-digits --clip digit_7_en-us \
  --explainers all --transforms stft --out "$out/bench-stft" 2>&1 | tail -25
timeout 60 .venv/bin/earmark bench --device cuda --model audionet-digits --clip digit_7_en-us \
  --explainers wam_sg,wam_ig --transforms dwt --out "$out/bench-dwt" 2>&1 | tail -8
echo "tools/gpu_check.sh: done; results in $out"
