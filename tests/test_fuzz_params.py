"""Hyperparameter fuzzing: every declared parameter of every explainer and transform, with 0, negative, huge,
infinite, NaN and wrong-type values, through the API (``explain`` / ``get_transform``) and the CLI
(``earmark explain --set/--tset``, called in-process). The outcome must be a result with finite maps or one
clear :class:`~earmark.errors.EarmarkError` (CLI: exit code 2 and one line on stderr), nothing else.

``make fuzz`` writes the counts::

    python tests/test_fuzz_params.py --out docs/results/fuzz-params.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from earmark import explain, get_transform
from earmark.cli import main as cli_main
from earmark.errors import ConfigError, EarmarkError
from earmark.explainers import EXPLAINERS
from earmark.models import MODELS, ModelSpec, from_module, register_model
from earmark.params import Param
from earmark.transforms import TRANSFORMS

L, RATE = 1024, 8000
MODEL = "fuzz-params-tiny"

#: Values given through the API: zero, negatives, huge, non-finite, and the wrong types.
API_VALUES = (0, -1, -10**9, 10**12, 10**30, 1e300, math.inf, -math.inf, math.nan, 2.5, "abc", "", [1], None,
              True, {"a": 1})
#: The same through ``--set NAME=VALUE`` (everything is text on a command line).
CLI_VALUES = ("0", "-1", "-1e9", "1e12", "1e400", "inf", "-inf", "nan", "2.5", "abc", "", "[1]", "None", "true")
#: Smaller budgets for the parameters not under test, so accepted values run fast on the tiny model.
FAST = {"learnable_mask": {"steps": 10, "restarts": 1}, "minimal_mask": {"steps": 10, "restarts": 1},
        "freqrise": {"n_masks": 50}, "relax": {"n_masks": 50}, "ig": {"n_steps": 8}, "wam_ig": {"n_steps": 8},
        "captum:GradientShap": {"n_samples": 2}, "captum:NoiseTunnel": {"nt_samples": 2, "n_steps": 4},
        "captum:KernelShap": {"n_samples": 10, "cells": 4}, "captum:Lime": {"n_samples": 10, "cells": 4},
        "captum:ShapleyValueSampling": {"n_samples": 1, "cells": 4}, "captum:FeatureAblation": {"cells": 4},
        "captum:Occlusion": {"window": 0.5, "stride": 0.5}, "flextime": {"steps": 3, "restarts": 1, "n_filters": 8}}


def tiny_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(L, 16), nn.Tanh(), nn.Linear(16, 3))
    return from_module(net, sample_rate=RATE, num_samples=L, labels=("a", "b", "c"), name=MODEL)


def register() -> str:
    if MODEL not in MODELS:
        register_model(ModelSpec(MODEL, "tiny model for the parameter fuzz", lambda device: tiny_model()))
    return MODEL


def wave() -> torch.Tensor:
    return 0.5 * torch.sin(2 * torch.pi * 440 * torch.arange(L) / RATE)


def domain_of(spec) -> str:
    return "stft" if spec.supports("stft") else spec.domains[0]


def cases():
    """(owner kind, owner name, parameter) for every declared parameter."""
    for spec in EXPLAINERS:
        for p in spec.params:
            yield "explainer", spec.name, p
    for cls in TRANSFORMS:
        for p in cls.params:
            yield "transform", cls.name, p


def _finite(expl) -> bool:
    return bool(torch.isfinite(expl.saliency).all() and torch.isfinite(expl.uncertainty).all()
                and (expl.uncertainty >= 0).all())


def api_case(model, kind: str, owner: str, param: Param, value) -> str:
    """'result', 'EarmarkError', or 'other: ...' for one value through the API."""
    try:
        if kind == "explainer":
            spec = EXPLAINERS.get(owner)
            given = {**FAST.get(owner, {}), param.name: value}
            expl = explain(model, wave(), get_transform(domain_of(spec), RATE), method=owner, seed=0, **given)
        else:
            transform = get_transform(owner, RATE, **{param.name: value})
            method = "wam_sg" if owner == "dwt" else "saliency"
            expl = explain(model, wave(), transform, method=method, seed=0, n_samples=2) if owner == "dwt" else \
                explain(model, wave(), transform, method=method, seed=0, n_draws=2)
    except EarmarkError as exc:
        text = str(exc)
        return "EarmarkError" if text and "\n" not in text else f"other: unclear message {text!r}"
    except Exception as exc:  # the defect the fuzz looks for
        return f"other: {type(exc).__name__}: {exc}"
    return "result" if _finite(expl) else "other: non-finite map"


def cli_case(clip: Path, out: Path, kind: str, owner: str, param: Param, text: str) -> str:
    """'result' (exit 0, finite maps written), 'EarmarkError' (exit 2, one line; or exit 3 for an all-zero map,
    labelled) or 'other: ...'."""
    if kind == "explainer":
        spec = EXPLAINERS.get(owner)
        argv = ["explain", str(clip), "--model", MODEL, "--transform", domain_of(spec), "--explainer", owner]
        argv += [a for k, v in FAST.get(owner, {}).items() for a in ("--set", f"{k}={v}")]
        argv += ["--set", f"{param.name}={text}"]
    else:
        argv = ["explain", str(clip), "--model", MODEL, "--transform", owner,
                "--explainer", "wam_sg" if owner == "dwt" else "saliency", "--tset", f"{param.name}={text}"]
    argv += ["--out", str(out), "--quiet"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(argv)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:
        return f"other: {type(exc).__name__}: {exc}"
    lines = err.getvalue().splitlines()
    if code == 2:
        return "EarmarkError" if len(lines) == 1 and lines[0].startswith("earmark: ") else \
            f"other: exit 2 with {err.getvalue()!r}"
    if code == 3:   # a map that is zero everywhere: saved, labelled, no listening files, exit 3 (not a success)
        zero = np.load(out / "explanation.npz")["saliency"]
        return "EarmarkError" if not np.any(zero) and "zero everywhere" in err.getvalue() else \
            f"other: exit 3 with {err.getvalue()!r}"
    if code != 0:
        return f"other: exit {code}"
    maps = np.load(out / "explanation.npz")
    summary = (out / "explanation.json").read_text()
    finite = np.isfinite(maps["saliency"]).all() and np.isfinite(maps["uncertainty"]).all()
    return "result" if finite and "NaN" not in summary and "Infinity" not in summary else "other: non-finite output"


def run_grid(folder: Path) -> list[dict]:
    register()
    model = tiny_model()
    clip = folder / "clip.wav"
    sf.write(clip, wave().numpy(), RATE, subtype="FLOAT")
    records = []
    for kind, owner, param in cases():
        for value in API_VALUES:
            records.append(dict(path="API", owner=owner, param=param.name, value=repr(value),
                                outcome=api_case(model, kind, owner, param, value)))
        for text in CLI_VALUES:
            records.append(dict(path="CLI", owner=owner, param=param.name, value=text,
                                outcome=cli_case(clip, folder / "out", kind, owner, param, text)))
    return records


# ---- pytest ------------------------------------------------------------------------------------------------

def test_every_parameter_with_hostile_values(tmp_path, monkeypatch):
    """The whole grid (`make fuzz` runs it with the figures drawn; here the PNG is skipped to save ~20 s)."""
    import earmark.plots as plots

    monkeypatch.setattr(plots, "explanation_figure", lambda *a, **k: None)
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: Path(path).write_bytes(b"skipped"))
    records = run_grid(tmp_path)
    bad = [r for r in records if r["outcome"].startswith("other")]
    assert not bad, "\n".join(f"{r['path']} {r['owner']}.{r['param']}={r['value']}: {r['outcome']}" for r in bad[:30])
    n_params = sum(1 for _ in cases())
    assert len(records) == n_params * (len(API_VALUES) + len(CLI_VALUES))
    counts = Counter(r["outcome"] for r in records)
    assert counts["result"] > 0 and counts["EarmarkError"] > len(records) // 2


def test_the_issue_examples_exactly(tmp_path):
    """`--explainer smoothgrad --set noise_level=nan` exited 0 with an all-NaN map; `inf` for any integer
    raised OverflowError; `blur_ms=nan` and `lr=nan` raised ValueError."""
    model = tiny_model()
    cases_ = [("smoothgrad", "stft", {"noise_level": math.nan}, "'noise_level' must be a finite number in [0, 1]; got nan."),
              ("ig", "stft", {"n_steps": math.inf}, "'n_steps' must be a finite number in [4, 512]; got inf."),
              ("ig", "stft", {"n_steps": "inf"}, "'n_steps' must be a finite number in [4, 512]; got 'inf'."),
              ("ig", "stft", {"blur_ms": "nan"}, "'blur_ms' must be a finite number in [0.1, 50]; got 'nan'."),
              ("learnable_mask", "stft", {"lr": math.nan}, "'lr' must be a finite number in [0.0001, 1]; got nan."),
              ("freqrise", "stft", {"n_masks": 10**400}, "'n_masks' must lie in [10, 100000]; got 1000000000"),
              ("freqrise", "stft", {"cells": True}, "'cells' must be an int, got True.")]
    for method, domain, given, message in cases_:
        try:
            explain(model, wave(), get_transform(domain, RATE), method=method, **given)
        except ConfigError as exc:
            assert str(exc).startswith(message), (str(exc), message)
        else:
            raise AssertionError(f"{method} {given} was accepted")
    with pytest_raises(ConfigError, "'n_fft' must be one of 64, 128, 256, 512, 1024, 2048; got inf."):
        get_transform("stft", RATE, n_fft=math.inf)


def pytest_raises(kind, message):
    import pytest

    return pytest.raises(kind, match="^" + __import__("re").escape(message))


def test_coerce_property_over_every_declared_parameter():
    """Whatever value comes in, ``Param.coerce`` returns a finite value of the declared type inside the
    range or the choices, or raises ConfigError; nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    params = [p for _, _, p in cases()]
    anything = st.one_of(
        st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.booleans(),
        st.none(), st.lists(st.integers(), max_size=2), st.binary(max_size=4),
        st.sampled_from(["inf", "-inf", "nan", "1e400", " 64 ", "64.0", "0x40", "1_000", "true", "٣"]),
    )

    @settings(max_examples=3000, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(params), anything)
    def check(param, value):
        try:
            out = param.coerce(value)
        except ConfigError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert type(out) is param.kind
        if param.choices is not None:
            assert out in param.choices
        if isinstance(out, float):
            assert math.isfinite(out)
        if param.low is not None and param.choices is None:
            assert param.low <= out <= param.high

    check()


def table(records: list[dict], seconds: float) -> str:
    lines = [f"Parameter fuzz: {len(records):,} cases ({sum(1 for _ in cases())} declared parameters × "
             f"{len(API_VALUES)} API values + {len(CLI_VALUES)} CLI values) in {seconds:.0f} s "
             "(`python tests/test_fuzz_params.py`).", "", "| path | result | EarmarkError / exit 2 | other |",
             "|---|---:|---:|---:|"]
    for path in ("API", "CLI"):
        c = Counter(r["outcome"] if not r["outcome"].startswith("other") else "other"
                    for r in records if r["path"] == path)
        lines.append(f"| {path} | {c['result']:,} | {c['EarmarkError']:,} | {c['other']:,} |")
    bad = [r for r in records if r["outcome"].startswith("other")]
    lines += [f"- {r['path']} {r['owner']}.{r['param']}={r['value']}: {r['outcome']}" for r in bad[:50]]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description="fuzz every declared hyperparameter through the API and the CLI")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        records = run_grid(Path(tmp))
    text = table(records, time.perf_counter() - started)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if any(r["outcome"].startswith("other") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
