"""Stop keeps the work, Continue finishes it bit for bit, Stop is immediate, abandoned jobs yield.

The counting model of ``test_jobs`` counts the waveforms it sees, so "no work is redone" and "the abandoned
job made no further passes" are counts, not clocks; only the Stop latency is a clock (with a model that
sleeps 0.4 s per call, far slower per chunk than the 1 s bound allows to wait for).
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from earmark.explainers import explain
from earmark.jobs import JobError, JobService, JobSettings
from earmark.transforms import get_transform

from test_jobs import SR, Counting, spec, work_for  # noqa: F401  (fixtures below reuse the same model)
from earmark.models import from_module

pytestmark = pytest.mark.timeout(120)

L = 400


def _model():
    net = Counting()
    return net, from_module(net, sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="counting")


def _clip():
    t = torch.arange(L) / SR
    return torch.sin(2 * torch.pi * 440 * t) * torch.linspace(0.2, 1.0, L)


@pytest.fixture
def service():
    svc = JobService(JobSettings(workers=1, max_queue=6, max_per_session=4, max_model_passes=50_000,
                                 abandon_grace=1.0))
    yield svc
    svc.shutdown()


CASES = {
    "freqrise": dict(n_masks=600, sampler="sobol", estimator="control_variate", stop="auto"),
    "smoothgrad": dict(n_samples=400),
    "ig": dict(n_steps=64),
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_stop_then_continue_equals_an_uninterrupted_run_bit_for_bit(service, method):
    net, model = _model()
    x = _clip()
    s = spec(method, seed=3, **CASES[method])
    t = get_transform("stft", SR, n_fft=64, hop=16)
    whole = explain(model, x, t, None, method=method, seed=3, **dict(s.eparams))
    full = net.items
    net.items = net.calls = 0
    holder = {}
    net.hook = lambda calls: holder["job"].stop() if calls == 6 else None   # Stop during the sixth model call
    holder["job"] = job = service.submit(s, work_for(model, x, s), session="alice")
    assert job.wait(30) and job.status == "stopped", job.error
    first = net.items
    assert 0 < first < full
    if method == "freqrise":   # the last estimate is kept as a result labelled partial, with the masks used
        part = job.result
        assert part.meta["partial"] and part.meta["stopped"] and 0 < part.meta["budget_used"] < 600
        assert part.meta["budget_total"] == 600 and part.meta["budget_unit"] == "masks"
        assert "stopped after" in part.uncertainty_meaning and part.meta["job"]["seed"] == 3
    net.hook = None
    while service.snapshot()["running"]:     # the call in flight at the click lands on the tape first
        time.sleep(0.01)
    kept = job.tape.items()
    more = service.continue_job(job, work_for(model, x, s), session="alice")
    assert more.wait(30) and more.status == "done", more.error
    out = more.result
    assert torch.equal(out.saliency, whole.saliency.cpu()) and torch.equal(out.uncertainty, whole.uncertainty.cpu())
    for k, v in whole.extras.items():
        assert torch.equal(out.extras[k], v.cpu()), k
    # no completed mask or noise pass was made twice: the continuation answered the stopped run's calls from
    # its tape. Not recorded: the call Stop cut short (≤ one chunk of 64), the clean clip's forward per run
    # and the job's one predicted-class look.
    replayed = out.meta["replayed_passes"]
    assert replayed == kept and first - 2 - 64 <= replayed < first
    assert (net.items - first) + replayed <= full + 2 + 64
    with pytest.raises(JobError, match="Only a stopped"):
        service.continue_job(more, work_for(model, x, s))


def test_stop_takes_effect_at_once_with_a_slow_model(service):
    net, model = _model()
    net.hook = lambda calls: time.sleep(0.4)                  # 0.4 s per model call (25–64 masks)
    s = spec("freqrise", n_masks=3000)
    job = service.submit(s, work_for(model, _clip(), s), session="alice")
    deadline = time.monotonic() + 20
    while job.partial is None and time.monotonic() < deadline:
        job.wait(1, since=job.version)
    assert job.partial is not None
    time.sleep(0.1)                                           # mid-call
    t0 = time.monotonic()
    job.stop()
    latency = time.monotonic() - t0
    calls = net.calls
    assert job.status == "stopped" and latency < 1.0, latency
    assert job.result is not None and job.result.meta["budget_used"] >= 25
    # the worker is free for the next job at once, and the stopped run makes at most the call in flight
    other = service.submit(spec("saliency"), work_for(model, _clip(), spec("saliency")), session="bob")
    assert other.wait(5) and other.status == "done"
    time.sleep(1.0)
    assert net.calls <= calls + 2            # the call in flight + the saliency job's one call


class Sleepy(torch.nn.Module):
    """A layer that takes ``seconds`` (0.15 s) whatever the batch: eight of them make one model call 1.2 s."""

    seconds = 0.15

    def forward(self, h):
        time.sleep(self.seconds)
        return h


class SlowLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(*[Sleepy() for _ in range(8)])
        self.head = torch.nn.Linear(L, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.layers(x))


def test_stop_lands_inside_a_long_model_call_and_keeps_its_bits(service):
    """A call of 1.2 s (8 layers × 0.15 s): Stop frees the thread within a layer, not at the chunk's end."""
    net = SlowLayers()
    model = from_module(net, sample_rate=SR, num_samples=L, labels=["a", "b", "c"], name="slow")
    s = spec("smoothgrad", n_samples=200)
    job = service.submit(s, work_for(model, _clip(), s), session="alice")
    while net.calls < 4:                                      # 1–2: the clean clip; 3: the first gradient call
        job.wait(0.5, since=job.version)
    time.sleep(0.2)                                           # inside the fourth call
    t0 = time.monotonic()
    job.stop()
    while service.snapshot()["running"]:
        time.sleep(0.01)
    freed = time.monotonic() - t0
    assert job.status == "stopped" and freed < 1.0, freed     # the call would have run ≈ 1 s more
    assert len(job.tape) == 1                                 # the completed call is kept; the cut one is not
    Sleepy.seconds = 0.0                                      # the rest at full speed (the arithmetic is the same)
    more = service.continue_job(job, work_for(model, _clip(), s))
    assert more.wait(60) and more.status == "done"
    net.calls = 0
    whole = explain(model, _clip(), get_transform("stft", SR, n_fft=64, hop=16), None, method="smoothgrad", seed=0,
                    **dict(s.eparams))
    assert torch.equal(whole.saliency, more.result.saliency)
    Sleepy.seconds = 0.15


def _slow(net, seconds=0.02):
    net.hook = lambda calls: time.sleep(seconds)


def _two_slow_models():
    """Two models whose every call sleeps a little (so a job is caught mid-run), and a clip."""
    pairs = _model(), _model()
    for net, _ in pairs:
        _slow(net)
    return pairs[0], pairs[1], _clip()


def test_an_abandoned_job_yields_and_is_cancelled_after_the_grace(service):
    (net_a, model_a), (net_b, model_b), x = _two_slow_models()
    sa, sb = spec("freqrise", n_masks=20_000), spec("freqrise", seed=1, n_masks=800)
    a = service.submit(sa, work_for(model_a, x, sa), session="alice")
    service.show("alice", [a])
    while net_a.calls < 3:
        a.wait(1, since=a.version)
    b = service.submit(sb, work_for(model_b, x, sb), session="alice")
    service.show("alice", [b])                                # the user switched: b is on screen
    at_switch = net_a.items
    assert b.wait(30) and b.status == "done"
    # while b ran (800 masks, many calls), a made at most the call it was in and the one it had started
    # before its worker saw the switch (≤ 2 × 64 masks), however long b took
    assert net_a.items - at_switch <= 128
    assert a.wait(5) and a.status == "cancelled" and "nobody looked at it" in a.error
    assert service.snapshot()["abandoned"] == 1


def test_a_pinned_job_keeps_running_and_a_job_shown_again_is_kept(service):
    (net_a, model_a), (net_b, model_b), x = _two_slow_models()
    sa, sb = spec("freqrise", n_masks=1500), spec("freqrise", seed=1, n_masks=400)
    a = service.submit(sa, work_for(model_a, x, sa), session="alice")
    service.pin(a)
    b = service.submit(sb, work_for(model_b, x, sb), session="alice")
    service.show("alice", [b])
    assert a.abandoned_at is None
    assert b.wait(30) and a.wait(60) and a.status == "done" and b.status == "done"
    # shown again within the grace: not cancelled
    sc = spec("freqrise", seed=2, n_masks=600)
    c = service.submit(sc, work_for(model_a, x, sc), session="alice")
    service.show("alice", [])
    assert c.abandoned_at is not None
    service.show("alice", [c])
    assert c.abandoned_at is None and c.wait(60) and c.status == "done"


def test_stop_before_a_first_estimate_keeps_the_tape(service):
    net, model = _model()
    gate = threading.Event()
    net.hook = lambda calls: gate.wait(5) if calls == 4 else None
    s = spec("smoothgrad", n_samples=200)
    job = service.submit(s, work_for(model, _clip(), s), session="alice")
    while net.calls < 4:                                     # 1–2: the clean clip; 3: the first gradient call
        job.wait(0.5, since=job.version)
    job.stop()
    gate.set()
    assert job.status == "stopped" and job.result is None and "Stopped" in job.error
    while service.snapshot()["running"]:
        time.sleep(0.01)
    assert len(job.tape) == 1 and job.tape.items() == 64     # the completed call; the one cut short is not kept


def test_stop_in_a_shared_job_keeps_it_running_for_the_others(service):
    net, model = _model()
    _slow(net)
    x = _clip()
    s = spec("freqrise", n_masks=1500)
    job = service.submit(s, work_for(model, x, s), session="alice")
    assert service.submit(s, work_for(model, x, s), session="bob") is job
    while job.partial is None:
        job.wait(1, since=job.version)
    mine = job.stop("alice")
    assert mine is not job and mine.status == "stopped" and mine.result.meta["stopped"]
    assert job.status == "running" and job.sessions == {"bob"}
    again = service.continue_job(mine, work_for(model, x, s), session="alice")
    assert again is job and job.sessions == {"alice", "bob"}     # Continue attaches to the running job
    assert job.wait(60) and job.status == "done"
