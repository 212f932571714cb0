"""Requests priced in memory before they run (earmark.cost)."""

from __future__ import annotations

import time

import pytest
import torch

from earmark import explain, get_transform, load_model
from earmark.cost import DEFAULT_MAX_JOB_MB, check_memory, estimate_peak_bytes, held_points, max_job_mb
from earmark.errors import ConfigError
from earmark.explainers import EXPLAINERS
from earmark.params import resolve
from earmark.probe import Probe

ISSUE = dict(transform=("mel", {"n_fft": 2048, "hop": 8, "n_mels": 128}), method="ig", params={"n_steps": 512})


@pytest.fixture(scope="module")
def model():
    return load_model("audionet-digits", "cpu")


def test_the_issue_request_is_refused_fast_naming_what_to_lower(model):
    name, tp = ISSUE["transform"]
    t = get_transform(name, model.card.sample_rate, **tp)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        explain(model, torch.randn(model.card.num_samples) * 0.1, t, method="ig", **ISSUE["params"])
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    assert "EARMARK_MAX_JOB_MB" in message and "n_steps=512" in message and "hop=8" in message
    assert "\n" not in message


def test_cli_refuses_it_with_one_line(capsys, tmp_path):
    from earmark.cli import main

    code = main(["explain", "digit_7_en-us", "--model", "audionet-digits", "--explainer", "ig", "--set",
                 "n_steps=512", "--transform", "mel", "--tset", "n_fft=2048", "--tset", "hop=8", "--tset",
                 "n_mels=128", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "EARMARK_MAX_JOB_MB" in err and err.count("\n") == 1


@pytest.mark.parametrize("method", sorted(EXPLAINERS.names()))
def test_every_default_request_fits_the_default_cap(model, method):
    spec = EXPLAINERS.get(method)
    from earmark.transforms import TRANSFORMS

    for tname in spec.domains or TRANSFORMS.names():
        t = get_transform(tname, model.card.sample_rate)
        probe = Probe(model, t, torch.randn(model.card.num_samples) * 0.1)
        mb = check_memory(method, resolve(spec.params, {}, owner=method), probe)
        assert 0 < mb < DEFAULT_MAX_JOB_MB / 4, (method, tname, mb)


def test_estimate_grows_with_the_budget_and_the_resolution():
    kw = dict(coeff_bytes=8 * 129 * 126, map_cells=129 * 126, num_samples=8000, grad_chunk=32, forward_chunk=64)
    small = estimate_peak_bytes("ig", {"n_steps": 16}, **kw)
    assert estimate_peak_bytes("ig", {"n_steps": 64}, **kw) > small
    assert estimate_peak_bytes("ig", {"n_steps": 16}, **{**kw, "coeff_bytes": 8 * 1025 * 1001}) > 3 * small
    assert held_points("ig", {"n_steps": 10, "baselines": "zero"}) == 12
    assert held_points("ig", {"n_steps": 10}) == 35


def test_cap_from_the_environment(model, monkeypatch):
    t = get_transform("stft", model.card.sample_rate)
    monkeypatch.setenv("EARMARK_MAX_JOB_MB", "64")
    assert max_job_mb() == 64
    with pytest.raises(ConfigError, match="more than the 64 MB"):
        explain(model, torch.randn(model.card.num_samples) * 0.1, t, method="ig", n_steps=64)
    monkeypatch.setenv("EARMARK_MAX_JOB_MB", "lots")
    with pytest.raises(ConfigError, match="EARMARK_MAX_JOB_MB must be a whole number"):
        max_job_mb()


def test_job_service_prices_passes_at_the_domain_resolution():
    from earmark.jobs import BudgetExceeded, JobService, JobSettings, JobSpec

    service = JobService(JobSettings(max_model_passes=30_000), start=False)

    def make(masks, **tp):
        return JobSpec.create(clip_hash="c", model="m", transform="stft", tparams=tp, explainer="freqrise",
                              eparams={"n_masks": masks})
    fine = make(29_999)                                  # default resolution: under the cap, as before
    assert service.submit(fine, lambda ctx: None, session="a").passes == 29_999
    with pytest.raises(BudgetExceeded) as err:           # the issue's case: 29,999 masks at hop=8
        service.submit(make(29_999, hop=8), lambda ctx: None, session="a")
    msg = str(err.value)
    assert "8× the default resolution" in msg and "n_masks=29999" in msg and "hop=8" in msg
    assert service.submit(make(3000, hop=8), lambda ctx: None, session="a").passes == 24_000
    service.shutdown()
