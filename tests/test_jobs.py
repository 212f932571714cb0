"""earmark.jobs: the key, the pool, merging, fair order, cancel, budgets, bounds — behaviour, not timing.

A tiny counting model (a 1-D convolution and a linear layer on 400 samples) stands in for a classifier:
its forward counts the waveforms it saw, so "the model ran once" and "it stopped within one chunk" are
counts, not clocks. Jobs that must stay queued wait behind a blocker job that holds the only worker until
the test releases it.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError, EarmarkError
from earmark.explainers import EXPLAINERS, explain
from earmark.jobs import (BudgetExceeded, Job, JobService, JobSettings, JobSpec, QueueFull, ResultCache,
                          estimate_passes, explanation_work, run_foreground)
from earmark.models import from_module
from earmark.transforms import get_transform

pytestmark = pytest.mark.timeout(300)

SR, L = 4000, 400


class Counting(nn.Module):
    """Waveform (B, L) → 3 logits; counts calls and items; ``hook(calls)`` runs inside every forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(1, 4, 9, padding=4)
        self.head = nn.Linear(4, 3)
        self.calls = 0
        self.items = 0
        self.hook = None
        self._lock = threading.Lock()

    def forward(self, x):
        with self._lock:
            self.calls += 1
            self.items += x.shape[0]
            calls = self.calls
        if self.hook is not None:
            self.hook(calls)
        h = torch.relu(self.conv(x[:, None])).mean(-1)
        return self.head(h)


class SpectrogramCounting(nn.Module):
    """Waveform → torchaudio power STFT → Conv2d → mean → 3 logits (for methods that need a spectrogram CNN)."""

    def __init__(self):
        super().__init__()
        import torchaudio

        torch.manual_seed(0)
        self.spec = torchaudio.transforms.Spectrogram(n_fft=64, hop_length=16, power=2.0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(torch.relu(self.conv(self.spec(x)[:, None])).mean((-2, -1)))


@pytest.fixture
def counting():
    net = Counting()
    model = from_module(net, sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="counting")
    return net, model


@pytest.fixture
def clip():
    t = torch.arange(L) / SR
    return torch.sin(2 * torch.pi * 440 * t) * torch.linspace(0.2, 1.0, L)


@pytest.fixture
def service():
    svc = JobService(JobSettings(workers=1, max_queue=6, max_per_session=4, max_model_passes=5000))
    yield svc
    svc.shutdown()


def spec(explainer="ig", seed=0, transform="stft", **eparams) -> JobSpec:
    return JobSpec.create(clip_hash="clip", model="counting", transform=transform, tparams={"n_fft": 64, "hop": 16},
                          explainer=explainer, eparams=eparams, seed=seed)


def work_for(model, clip, s: JobSpec, batch_size: int | None = None):
    t = get_transform(s.transform, SR, **dict(s.tparams))
    return explanation_work(s, model, clip, t, batch_size=batch_size)


def blocker(service: JobService, session: str = "blocker"):
    """A job that holds the (only) worker until ``release.set()``."""
    started, release = threading.Event(), threading.Event()

    def work(ctx):
        started.set()
        while not release.wait(0.02):
            ctx.check()
        return "released"

    job = service.submit(JobSpec.create(clip_hash=f"block-{session}", model="none", transform="time",
                                        explainer="energy"), work, session=session)
    assert started.wait(30)
    return job, release


# ---- the key -----------------------------------------------------------------------------------------

def test_spec_is_canonical_and_validated():
    a = JobSpec.create(clip_hash="h", model="m", transform="stft", explainer="freqrise", eparams={"n_masks": "3000"})
    b = JobSpec.create(clip_hash="h", model="m", transform="stft", explainer="freqrise", eparams={})
    assert a == b and hash(a) == hash(b)   # CLI strings and declared defaults give the same key
    assert a != JobSpec.create(clip_hash="h", model="m", transform="stft", explainer="freqrise", seed=1)
    assert a.derived("faithfulness", steps=20).explanation == a
    prov = a.provenance()
    assert prov["explainer_params"]["n_masks"] == 3000 and prov["transform_params"] and prov["seed"] == 0
    with pytest.raises(ConfigError, match="n_masks"):
        JobSpec.create(clip_hash="h", model="m", transform="stft", explainer="freqrise", eparams={"n_masks": -5})
    with pytest.raises(ConfigError, match="kind"):
        JobSpec.create("sing", clip_hash="h", model="m", transform="stft", explainer="ig")


SMALL = {"saliency": {"n_draws": 3}, "ig": {"n_steps": 6}, "smoothgrad": {"n_samples": 5},
         "wam_sg": {"n_samples": 4}, "wam_ig": {"n_steps": 5}, "freqrise": {"n_masks": 40},
         "relax": {"n_masks": 40}, "learnable_mask": {"steps": 4, "restarts": 2},
         "minimal_mask": {"steps": 4, "restarts": 2}, "energy": {},
         "captum:GradientShap": {"n_samples": 3}, "captum:NoiseTunnel": {"nt_samples": 3},
         "captum:KernelShap": {"n_samples": 20, "cells": 8}, "captum:Lime": {"n_samples": 20, "cells": 8},
         "captum:ShapleyValueSampling": {"n_samples": 1, "cells": 8}, "captum:FeatureAblation": {"cells": 8},
         "captum:Occlusion": {"window": 0.3, "stride": 0.3}, "flextime": {"steps": 3, "restarts": 2, "n_filters": 8}}


@pytest.mark.parametrize("name", EXPLAINERS.names())
def test_pass_estimate_matches_what_the_probe_counts(name, counting, clip):
    """The budget check rests on the estimate: for every registered explainer it is what the run uses."""
    _, model = counting
    es = EXPLAINERS.get(name)
    if es.unavailable(model.card, model):    # Grad-CAM: a convolution over a spectrogram
        model = from_module(SpectrogramCounting(), sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="c2")
    transform = "stft" if es.supports("stft") else es.domains[0]
    tparams = {"n_fft": 64, "hop": 16} if transform == "stft" else {}
    s = JobSpec.create(clip_hash="c", model="counting", transform=transform, tparams=tparams, explainer=name,
                       eparams=SMALL.get(name, {}))
    t = get_transform(transform, SR, **dict(s.tparams))
    e = explain(model, clip, t, method=name, seed=0, **dict(s.eparams))
    used = e.meta["forward_passes"] + e.meta["backward_passes"]
    from earmark.method_passes import UPPER_BOUNDS

    if name in UPPER_BOUNDS:       # the display grid sets the count: the estimate bounds it
        assert used <= estimate_passes(s) <= 4 * used, (name, estimate_passes(s), used)
        return
    assert estimate_passes(s) == used, (name, estimate_passes(s), used)


# ---- running, merging, results -------------------------------------------------------------------------

def test_job_result_equals_a_direct_call_and_lands_in_the_cache(service, counting, clip):
    _, model = counting
    s = spec("freqrise", n_masks=64)
    job = service.submit(s, work_for(model, clip, s), session="a")
    assert job.wait(60) and job.status == "done", job.error
    direct = explain(model, clip, get_transform("stft", SR, n_fft=64, hop=16), method="freqrise", seed=0, n_masks=64)
    assert torch.equal(job.result.saliency, direct.saliency)
    assert job.result.saliency.device.type == "cpu"
    assert job.result.meta["job"] == s.provenance()
    again = service.submit(s, work_for(model, clip, s), session="b")   # answered from the cache
    assert again.status == "done" and again.result is job.result
    assert service.stats["cached"] == 1


def test_two_identical_submissions_run_the_model_once(service, counting, clip):
    net, model = counting
    s = spec("freqrise", n_masks=96)
    net.items = 0
    run_foreground(s, work_for(model, clip, s))      # the same job, once (and the chunk size measured)
    net.items = 0
    run_foreground(s, work_for(model, clip, s))
    once = net.items
    block, release = blocker(service)
    net.calls = net.items = 0
    first = service.submit(s, work_for(model, clip, s), session="alice")
    second = service.submit(s, work_for(model, clip, s), session="bob")
    assert second is first and first.sessions == {"alice", "bob"}
    release.set()
    assert first.wait(60) and first.status == "done"
    assert net.items == once > 96          # the forward passes of one explanation, not two
    assert service.stats["merged"] == 1 and service.stats["submitted"] == 2   # the blocker and one job


def test_an_attached_session_that_cancels_does_not_stop_the_others(service, counting, clip):
    _, model = counting
    s = spec("freqrise", n_masks=64)
    block, release = blocker(service)
    job = service.submit(s, work_for(model, clip, s), session="alice")
    service.submit(s, work_for(model, clip, s), session="bob")
    job.cancel("alice")
    assert not job.cancel_requested and job.sessions == {"bob"}
    release.set()
    assert job.wait(60) and job.status == "done"


def test_cancel_stops_a_long_freqrise_within_one_chunk(service, counting, clip):
    """Cancel pressed during the 3rd model call: that chunk finishes, no further chunk starts."""
    net, model = counting
    s = spec("freqrise", n_masks=4000)
    holder: dict[str, Job] = {}
    pressed = threading.Event()

    def press_cancel(calls):
        if calls == 4 and "job" in holder:   # a person presses Cancel while the model scores a chunk
            holder["job"].cancel("alice")
            pressed.set()

    net.hook = press_cancel
    block, release = blocker(service)
    net.calls = 0
    job = holder["job"] = service.submit(s, work_for(model, clip, s, batch_size=8), session="alice")
    release.set()
    assert job.wait(60)
    assert pressed.is_set() and job.status == "cancelled"
    assert net.calls == 4                 # that chunk finished; no further one started
    assert job.done is not None and job.done < 100
    assert "Cancelled after" in job.error
    assert s not in service.results and service.find(s) is None


def test_a_cancelled_queued_job_never_runs(service, counting, clip):
    net, model = counting
    s = spec("freqrise", n_masks=64)
    block, release = blocker(service)
    net.calls = 0
    job = service.submit(s, work_for(model, clip, s), session="alice")
    job.cancel()
    assert job.status == "cancelled" and service.order() == []
    release.set()
    assert block.wait(30)
    assert net.calls == 0


# ---- fairness, bounds, budgets --------------------------------------------------------------------------

def test_fair_order_across_two_sessions(service):
    ran: list[str] = []
    block, release = blocker(service)

    def record(name):
        def work(ctx):
            ran.append(name)
            return name
        return work

    def job(name, session):
        s = JobSpec.create(clip_hash=name, model="m", transform="time", explainer="energy")
        return service.submit(s, record(name), session=session)

    a1, a2, a3 = job("a1", "alice"), job("a2", "alice"), job("a3", "alice")
    b1 = job("b1", "bob")
    assert [j.spec.clip_hash for j in service.order()] == ["a1", "b1", "a2", "a3"]
    assert (a1.position(), b1.position(), a2.position(), a3.position()) == (1, 2, 3, 4)
    release.set()
    assert a3.wait(30) and b1.wait(30)
    assert ran == ["a1", "b1", "a2", "a3"]


def test_a_classroom_shares_the_poll_rate(service):
    """Pages poll less often when many sessions watch jobs: their polls compete with the jobs for the GIL."""
    from dashboard.live import poll_interval

    block, release = blocker(service)
    base = service.watchers()                      # the blocking job's own session
    s1 = JobSpec.create(clip_hash="c1", model="m", transform="time", explainer="energy")
    s2 = JobSpec.create(clip_hash="c2", model="m", transform="time", explainer="energy")
    a = service.submit(s1, lambda ctx: 1, session="alice")
    assert service.submit(s1, lambda ctx: 1, session="bob") is a       # merged: two watchers, one job
    b = service.submit(s2, lambda ctx: 2, session="carol")
    assert service.watchers() == base + 3
    release.set()
    assert a.wait(30) and b.wait(30) and block.wait(30)
    assert service.watchers() == 0
    assert [poll_interval(n) for n in (0, 1, 4, 8, 30, 10_000)] == [0.5, 0.5, 0.5, 1.0, 3.75, 4.0]


def test_the_queue_stays_bounded(service):
    block, release = blocker(service)
    noop = lambda ctx: None  # noqa: E731

    def s(i):
        return JobSpec.create(clip_hash=f"c{i}", model="m", transform="time", explainer="energy")

    for i in range(4):
        service.submit(s(i), noop, session="alice")          # 4 per session
    with pytest.raises(QueueFull, match="at most 4 per session"):
        service.submit(s(4), noop, session="alice")
    service.submit(s(5), noop, session="bob")
    service.submit(s(6), noop, session="carol")              # 6 waiting: the server's bound
    with pytest.raises(QueueFull, match="server is busy"):
        service.submit(s(7), noop, session="dave")
    assert service.snapshot()["waiting"] == 6
    release.set()


def test_max_model_passes_refusal_names_the_setting(service, counting, clip):
    _, model = counting
    big = spec("freqrise", n_masks=20000)                  # the fixture's cap is 5,000 passes
    with pytest.raises(BudgetExceeded) as err:
        service.submit(big, work_for(model, clip, big), session="a")
    msg = str(err.value)
    assert "max_model_passes" in msg and "EARMARK_MAX_MODEL_PASSES" in msg and "n_masks=20000" in msg
    assert "20,000" in msg and "5,000" in msg
    assert isinstance(err.value, EarmarkError) and service.find(big) is None


def test_settings_from_the_environment():
    s = JobSettings.from_env({"EARMARK_WORKERS": "3", "EARMARK_MAX_MODEL_PASSES": "1000"})
    assert s.workers == 3 and s.max_model_passes == 1000
    with pytest.raises(ConfigError, match="EARMARK_WORKERS"):
        JobSettings.from_env({"EARMARK_WORKERS": "many"})


def test_result_cache_is_bounded_in_entries_and_bytes():
    cache = ResultCache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        cache.put(i, torch.zeros(100))          # 400 bytes each
    assert len(cache) == 3 and 0 not in cache and 4 in cache
    cache.put("big", torch.zeros(2000))           # 8,000 bytes: older entries go
    assert cache.bytes <= 10_000 and "big" in cache


# ---- partial results, failures, the foreground ------------------------------------------------------------

def test_ig_first_look_is_a_partial_explanation(counting, clip):
    _, model = counting
    s = spec("ig", n_steps=6)
    seen = []
    exp = run_foreground(s, work_for(model, clip, s), observer=lambda j: seen.append(j.partial))
    partials = [p for p in seen if p is not None]
    assert partials and partials[0].meta["partial"] is True
    assert torch.equal(partials[0].saliency, exp.saliency)   # IG's first look is the final map
    assert float(partials[0].uncertainty.abs().sum()) == 0.0


def test_progress_counts_masks_and_a_failure_is_a_sentence(service, counting, clip):
    _, model = counting
    s = spec("freqrise", n_masks=64)
    dones = []
    job = service.submit(s, work_for(model, clip, s, batch_size=16), session="a")
    job.add_observer(lambda j: dones.append(j.done))
    assert job.wait(60) and job.done == 64 and job.unit == "masks"

    def broken(ctx):
        raise ConfigError("The hop must be smaller than n_fft.")

    bad = service.submit(JobSpec.create(clip_hash="x", model="m", transform="time", explainer="energy"), broken)
    assert bad.wait(30) and bad.status == "failed" and bad.error == "The hop must be smaller than n_fft."
    with pytest.raises(EarmarkError, match="smaller than n_fft"):
        run_foreground(bad.spec, broken)


def test_a_sampling_job_publishes_estimates_and_ends_on_the_one_shot_map(service, counting, clip):
    """FreqRISE through a job: partial estimates with masks so far and a convergence figure arrive as it
    runs; the final map is the one-shot result at the same seed, bit for bit; stop="auto" never exceeds
    the budget and the job reports how many masks it used."""
    _, model = counting
    s = spec("freqrise", n_masks=800)
    seen: list[tuple] = []
    job = service.submit(s, work_for(model, clip, s, batch_size=16), session="a")
    job.add_observer(lambda j: seen.append((j.done, j.convergence, j.partial)) if j.partial is not None else None)
    assert job.wait(120) and job.status == "done", job.error
    dones = [d for d, _, _ in seen]
    assert len(set(dones)) > 2 and dones == sorted(dones) and dones[-1] == 800
    assert any(c is not None for _, c, _ in seen)
    assert all(p.meta["partial"] and p.meta["unit"] == "masks" and p.target >= 0 for _, _, p in seen)
    direct = explain(model, clip, get_transform("stft", SR, n_fft=64, hop=16), method="freqrise", seed=0, n_masks=800,
                     batch_size=16)
    assert torch.equal(job.result.saliency, direct.saliency)
    auto = spec("freqrise", n_masks=800, stop="auto")
    job = service.submit(auto, work_for(model, clip, auto, batch_size=16), session="a")
    assert job.wait(120) and job.status == "done"
    assert job.done <= 800 and job.result.meta["forward_passes"] <= estimate_passes(auto)


def test_queue_position_and_estimate_follow_the_work_ahead(service):
    """The estimate for a waiting job grows with the jobs ahead of it, once a rate is known."""
    gate = threading.Event()

    def slow(ctx):
        for i in range(20):
            ctx.progress(i / 20, "working")
            gate.wait(0.01)
        return "ok"

    def s(i):  # FreqRISE specs: 100 passes each
        return JobSpec.create(clip_hash=f"e{i}", model="m", transform="stft", explainer="freqrise",
                              eparams={"n_masks": 100})

    first = service.submit(s(0), slow, session="a")
    assert first.wait(30) and first.status == "done"          # the service learns seconds per pass
    block, release = blocker(service)
    jobs = [service.submit(s(i), slow, session=f"p{i}") for i in range(1, 4)]
    etas = [j.eta() for j in jobs]
    assert [j.position() for j in jobs] == [1, 2, 3]
    assert all(e is not None for e in etas) and etas[0] < etas[1] < etas[2]
    release.set()
    assert all(j.wait(30) for j in jobs) and all(j.eta() == 0.0 for j in jobs)
