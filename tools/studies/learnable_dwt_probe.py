"""Why the learnable mask scores a low I in the DWT: its soft mask versus its top 10 %.

For the first N clips of the 50-clip FSDD run (same order and seeds as ``earmark evaluate``), learn the
mask in the DWT at each budget and print: I / D of its top 10 % (the protocol), the true-class
probability with the *soft* mask itself, the mask's mean and how many cells exceed 0.5, and I when the
cells are ranked by mask × |coefficient| instead. Run from the repository root::

    EARMARK_DATA=../shared/data/fsdd python tools/studies/learnable_dwt_probe.py 10 100x2,300x4
"""
import os
import statistics
import sys


from earmark import explain, get_transform, load_model
from earmark.data.datasets import open_dataset
from earmark.device import make_generator
from earmark.evaluate import clip_seed
from earmark.metrics.curves import single_point
from earmark.probe import Probe

n = int(sys.argv[1])
budgets = [tuple(map(int, b.split("x"))) for b in sys.argv[2].split(",")]
model = load_model("audionet-digits", "cpu")
data = open_dataset(data=os.environ["EARMARK_DATA"], card=model.card, split="test", n=50, seed=0)
dwt = get_transform("dwt", model.card.sample_rate)
summary = {b: [] for b in budgets}
for i in range(n):
    item = data.load(i)
    seed = clip_seed(0, item.name)
    probe = Probe(model, dwt, item.wave, target=item.label)
    for steps, restarts in budgets:
        mask = explain(model, item.wave, dwt, item.label, method="learnable_mask", seed=seed,
                       steps=steps, restarts=restarts).saliency
        top = single_point(probe, mask, generator=make_generator(seed))
        weighted = single_point(probe, mask * probe.coeffs.abs(), generator=make_generator(seed))
        soft = float(probe.score(mask[None], baseline="zero", readout="prob")[0])
        row = (top.I, top.D, soft, float(mask.mean()), int((mask > 0.5).sum()), weighted.I)
        summary[(steps, restarts)].append(row)
        print(f"{item.name:18s} {steps}x{restarts}  I {row[0]:.3f}  D {row[1]:.3f}  soft-mask prob {row[2]:.3f}  "
              f"mean {row[3]:.3f}  cells>0.5 {row[4]:4d}/{mask.numel()}  I(mask×|z|) {row[5]:.3f}", flush=True)
for (steps, restarts), rows in summary.items():
    m = [statistics.fmean(c) for c in zip(*rows)]
    print(f"mean over {len(rows)} clips, {steps}x{restarts}: I {m[0]:.2f}  D {m[1]:.2f}  soft-mask prob {m[2]:.3f}  "
          f"mean {m[3]:.3f}  cells>0.5 {m[4]:.0f}  I(mask×|z|) {m[5]:.2f}")
