"""Oracle check of the new methods (run from the repository root with tests/ importable): python tools/studies/methods_oracle.py N CASES METHODS."""
import sys, time, torch
sys.path.insert(0, "tests")
import test_localisation as T
from earmark.explainers import explain
N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
T.N_CLIPS = N
SET = {
    "captum:DeepLift": {}, "captum:GradientShap": {}, "captum:NoiseTunnel": {},
    "captum:Occlusion": {}, "captum:FeatureAblation": {"cells": 64}, "captum:KernelShap": {"cells": 64, "n_samples": 200, "baselines": "zero"},
    "captum:Lime": {"cells": 64, "n_samples": 200, "baselines": "zero"}, "captum:ShapleyValueSampling": {"cells": 16, "n_samples": 2, "baselines": "zero"}, "lrp": {},
    "captum:LayerGradCam": {},
}
cases = sys.argv[2].split(",") if len(sys.argv) > 2 else ["tf-stft", "tf-dwt", "freq-fourier"]
methods = sys.argv[3].split(",") if len(sys.argv) > 3 else list(SET) + ["flextime"]
for case in cases:
    model, transform, wave, label, _ = T.case_data(case)
    rnd = float(T.score(case, T.random_maps(case, 1)).mean())
    print(f"{case}: random {rnd:.3f}  (L={wave.shape[-1]}, {transform.name})", flush=True)
    for method in methods:
        if method == "flextime" and transform.name != "fourier":
            continue
        params = SET.get(method, {})
        if method == "flextime":
            params = {"steps": 150, "restarts": 1}
        t0 = time.time()
        try:
            maps = torch.stack([explain(model, wave[i], transform, target=int(label[i]), method=method, seed=i,
                                        **params).saliency for i in range(len(wave))])
            s = T.score(case, maps)
            print(f"  {method:28s} {float(s.mean()):.3f}  ({time.time()-t0:.0f}s, {params})", flush=True)
        except Exception as exc:
            print(f"  {method:28s} failed: {exc}", flush=True)
