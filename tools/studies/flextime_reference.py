"""Earmark's FLEXtime (one restart, the 0.5 start) against the reference implementation on AudioNet and FSDD clips.

The reference (github.com/theabrusch/FLEXtime, ``src/attribution/flextime``) is not vendored: point
``FLEXTIME_REPO`` at a checkout. ``EARMARK_DATA`` is the FSDD folder. Usage:
``FLEXTIME_REPO=... EARMARK_DATA=... python tools/studies/flextime_reference.py 30``.
"""
import os, sys, time, numpy as np, torch, soundfile as sf
sys.path.insert(0, os.environ["FLEXTIME_REPO"])
from src.attribution.flextime.flextime import FLEXtime
from src.attribution.flextime.filterbank import FilterBank
from earmark.explainers import explain
from earmark.models import load_model
from earmark.transforms import get_transform
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 50
model = load_model("audionet-digits", "cpu")
copy = model.private_copy()
class Wrap(torch.nn.Module):
    def __init__(s, m): super().__init__(); s.m = m
    def forward(s, x, extra=None): return s.m(x.reshape(x.shape[0], -1))
rows = []
for name in ("3_jackson_0", "7_theo_1"):
    w, sr = sf.read(os.path.join(os.environ["EARMARK_DATA"], "recordings", f"{name}.wav"))
    x = torch.zeros(8000); w = torch.tensor(w[:8000], dtype=torch.float32); x[:len(w)] = w
    target = int(model(x[None]).argmax())
    ref = FLEXtime(Wrap(copy), FilterBank(numtaps=51, fs=8000, numbanks=128, time_length=8000))
    t0 = time.time()
    mask, _ = ref.fit(x[None], n_epoch=steps, learning_rate=1.0, momentum=1.0, keep_ratio=0.1, reg_factor_init=1.0,
                      time_reg_strength=1.0, stop_criterion=None, verbose=False)
    t_ref = time.time() - t0
    ref_mask = mask.detach().reshape(-1)
    ref_map = torch.tensor(ref.filterbank.get_collect_filter_response(ref_mask.numpy())).reshape(-1).float()
    t0 = time.time()
    e = explain(model, x, get_transform("fourier", 8000), method="flextime", target=target, steps=steps, restarts=1)
    t_ours = time.time() - t0
    ours = e.extras["band_masks"][0]
    corr = float(np.corrcoef(ref_map.numpy(), e.saliency.numpy())[0, 1])
    print(f"{name}: max|Δmask| {float((ours - ref_mask).abs().max()):.2e}  mean|Δmask| {float((ours - ref_mask).abs().mean()):.2e}  "
          f"map corr {corr:.4f}  top-10 bands same {len(set(ours.topk(10).indices.tolist()) & set(ref_mask.topk(10).indices.tolist()))}/10  "
          f"time ours {t_ours:.1f}s ref {t_ref:.1f}s", flush=True)
