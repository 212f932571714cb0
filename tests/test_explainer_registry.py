"""An explainer describes itself: registered in one place, it is found by the CLI's list, the app's menu,
the job cost model and ``earmark bench`` — nothing else names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from earmark.cli import main
from earmark.explainers import EXPLAINERS, ExplainerSpec
from earmark.explainers.base import Attribution
from earmark.jobs import BudgetExceeded, JobService, JobSettings, JobSpec, estimate_passes, work_units
from earmark.params import Param

ROOT = Path(__file__).resolve().parents[1]
NAME = "toy_count"


def explain_toy(probe, *, generator, progress=None, n_things: int, start: str):
    """``n_things`` random keep-masks scored by the model (one forward pass each); the map is the mean score
    of the masks that keep a cell, minus the mean (a tiny RISE)."""
    masks = (torch.rand((n_things, *probe.map_shape), generator=generator, device=probe.device) > 0.5).float()
    scores = probe.score(masks)
    saliency = (scores[:, None] * masks.flatten(1)).mean(0).reshape(probe.map_shape) - scores.mean() / 2
    return Attribution(saliency, torch.zeros_like(saliency))


TOY = ExplainerSpec(
    name=NAME, title="Toy counting explainer", fn=explain_toy,
    params=(Param("n_things", 40, "masks scored", low=1, high=10_000, step=1),
            Param("start", "paper", "a setting the app starts elsewhere", choices=("paper", "app"))),
    family="sampling", uncertainty="None.", budget=("n_things",), passes=lambda p: int(p["n_things"]),
    units=("n_things", "things"), app_defaults=(("start", "app"),))


@pytest.fixture
def toy():
    EXPLAINERS.register(NAME, TOY)   # the one place
    try:
        yield TOY
    finally:
        EXPLAINERS.items.pop(NAME, None)


def test_listed_by_the_cli(toy, capsys):
    assert main(["list", "explainers"]) == 0
    out = capsys.readouterr().out
    assert NAME in out and "n_things" in out


def test_cost_model_units_and_refusal(toy):
    spec = JobSpec.create(clip_hash="c", model="m", transform="time", explainer=NAME, eparams={"n_things": 25})
    assert estimate_passes(spec) == 25
    assert work_units(spec) == (25, "things")
    service = JobService(JobSettings(workers=1, max_model_passes=10))
    try:
        with pytest.raises(BudgetExceeded, match="n_things=25"):
            service.submit(spec, lambda ctx: None)
    finally:
        service.shutdown()


def test_every_registered_explainer_declares_its_budget_and_units():
    """What the job cost model, the refusal and the progress line read from each spec."""
    units = {"masks": ("freqrise", "relax"), "steps": ("learnable_mask", "minimal_mask"),
             "noisy copies": ("smoothgrad", "wam_sg")}
    for spec in EXPLAINERS:
        declared = {p.name for p in spec.params}
        assert set(spec.budget) <= declared, spec.name
        assert spec.units is None or spec.units[0] in declared, spec.name
        unit = spec.units[1] if spec.units else None
        assert unit == next((u for u, names in units.items() if spec.name in names), None), spec.name
        assert spec.cost({}) == spec.cost({p.name: p.default for p in spec.params}) >= 0
        assert all(p in declared for p, _ in spec.app_defaults), spec.name


def test_bench_quick_runs_it_at_a_tiny_budget(toy, tmp_path):
    code = main(["bench", "--model", "synth-freq", "--explainers", NAME, "--transforms", "fourier", "--quick",
                 "--out", str(tmp_path)])
    assert code == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    (row,) = [r for r in rows if r["explainer"] == NAME]
    assert row["settings"]["n_things"] == 4           # quick: a budget cut to a few items
    assert row["forward_passes"] == toy.cost(row["settings"]) == 4   # the declared cost model is exact


@pytest.mark.timeout(600)
def test_in_the_app_menu_with_its_app_default(toy):
    from streamlit.testing.v1 import AppTest

    harness = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport streamlit as st\n"
               "from dashboard.app import main\nmain('explore')\n")
    at = AppTest.from_string(harness, default_timeout=600)
    at.session_state["w_model"] = "synth-tf"
    at.session_state["v_explainer"] = NAME
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    menu = at.selectbox(key="w_explainer")
    assert NAME in menu.options or TOY.title in menu.options
    assert menu.value == NAME
    assert at.selectbox(key=f"p_explainer_{NAME}_start").value == "app"
