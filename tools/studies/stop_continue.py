"""Stop and Continue on the bundled AudioNet and the default example ("seven"), STFT, seed 0.

For FreqRISE (1,000 masks, Sobol + control variate) and SmoothGrad (100 noisy copies): the time of an
uninterrupted run; a job stopped at about 45 % of that time — how long until it reads ``stopped``, until
its thread is free, and how much the tape kept; the time of the continuation; and whether the continued
map equals the uninterrupted one bit for bit::

    python tools/studies/stop_continue.py

Timings depend on the machine's load; print ``uptime`` beside them.
"""
from __future__ import annotations

import time

import torch

from earmark import audio, examples
from earmark.jobs import JobService, JobSettings, JobSpec, explanation_work, run_foreground
from earmark.models import load_model
from earmark.transforms import get_transform

CASES = (("freqrise", dict(n_masks=1000, sampler="sobol", estimator="control_variate")),
         ("smoothgrad", dict(n_samples=100)))


def measure(model, x, t, name: str, params: dict) -> str:
    spec = JobSpec.create(clip_hash="seven", model=model.card.name, transform="stft", explainer=name,
                          eparams=params, seed=0)
    t0 = time.perf_counter()
    whole = run_foreground(spec, explanation_work(spec, model, x, t))
    t_whole = time.perf_counter() - t0
    service = JobService(JobSettings(workers=1))
    try:
        job = service.submit(spec, explanation_work(spec, model, x, t))
        while time.perf_counter() - t0 - t_whole < 0.45 * t_whole and not job.finished:
            time.sleep(0.01)
        s0 = time.perf_counter()
        job.stop()
        latency = time.perf_counter() - s0
        while service.snapshot()["running"]:
            time.sleep(0.005)
        freed = time.perf_counter() - s0
        kept = job.tape.items()
        c0 = time.perf_counter()
        more = service.continue_job(job, explanation_work(spec, model, x, t))
        more.wait()
        t_more = time.perf_counter() - c0
    finally:
        service.shutdown()
    same = (torch.equal(more.result.saliency, whole.saliency)
            and torch.equal(more.result.uncertainty, whole.uncertainty))
    return (f"| {name} | {t_whole:.1f} s | {latency * 1e3:.1f} ms | {freed:.2f} s | {kept} | {t_more:.1f} s | "
            f"{'yes' if same else 'NO'} |")


def main() -> None:
    model = load_model("audionet-digits")
    card = model.card
    x = torch.as_tensor(audio.prepare(examples.default_example(), sample_rate=card.sample_rate,
                                      num_samples=card.num_samples).wave, dtype=torch.float32)
    t = get_transform("stft", card.sample_rate)
    print("| method | uninterrupted | Stop → stopped | thread free | items on the tape | Continue | same bits |")
    print("|---|---:|---:|---:|---:|---:|:-:|")
    for name, params in CASES:
        print(measure(model, x, t, name, params), flush=True)


if __name__ == "__main__":
    main()
