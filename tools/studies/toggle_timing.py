"""How long a view toggle takes to redraw the Explore page on a 10 s clip with a result present.

The app is driven headlessly (``streamlit.testing.v1.AppTest``, the same script runs as in a browser) with
a linear 16 kHz model whose input is 10 s (``tests/long_models.py``): IG in the STFT gives a 129 × 2,501
map. After Explain, each toggle (dim silent cells, colour by value/rank, log axis, a zoom change) is
flipped ``--repeats`` times and the script run is timed: the first flip (nothing cached for the new value)
and the median per toggle are printed (JSON with ``--out``). ``--profile NAME`` writes a cProfile of one
first flip (the script's own thread) to toggle.prof in the temporary folder.

    PYTHONPATH=core:. OMP_NUM_THREADS=1 python tools/studies/toggle_timing.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

#: toggle name → (session-state widget key, the two values it alternates between)
TOGGLES = {
    "dim silent cells": ("w_dim_silent", (True, False)),
    "colour by value/rank": ("w_contrast", ("value", "rank")),
    "log frequency axis": ("w_log_freq", (True, False)),
}


def _settle(at, timeout=600):
    for _ in range(8):
        jobs = at.session_state["_jobs"] if "_jobs" in at.session_state else {}
        pending = [j for j in jobs.values() if not j.finished]
        if not pending:
            return at
        for j in pending:
            j.wait(timeout)
        at.run(timeout=timeout)
    return at


def app_timings(repeats: int) -> dict:
    import long_models

    at = long_models.explore_app()
    at.run(timeout=600)
    at.button(key="explain").click()
    at.run(timeout=600)
    _settle(at)
    assert not at.exception, [e.value for e in at.exception]
    t0 = time.perf_counter()
    at.run(timeout=600)
    out = {"rerun, nothing changed": time.perf_counter() - t0}
    toggles = dict(TOGGLES)
    if any(w.key == "w_zoom_range" for w in at.slider):
        toggles["zoom (visible range)"] = ("w_zoom_range", ((2.0, 4.0), (0.0, 10.0)))
    for name, (key, values) in toggles.items():
        times = []
        for i in range(repeats):
            at.session_state[key] = values[i % 2]
            t0 = time.perf_counter()
            at.run(timeout=600)
            times.append(time.perf_counter() - t0)
            assert not at.exception, [e.value for e in at.exception]
        out[name + " (first flip)"] = times[0]
        out[name] = statistics.median(times)
        at.session_state[key] = values[1]
        at.run(timeout=600)
    return out


def running_timings(repeats: int, masks: int) -> dict:
    """The same toggles while a FreqRISE job (``masks`` masks) runs in this process: the page draws the
    latest partial estimate; each flip reruns the page (the job keeps running on the worker threads)."""
    import long_models

    at = long_models.explore_app("freqrise", p_explainer_freqrise_n_masks=masks)
    at.run(timeout=600)
    at.button(key="explain").click()
    at.run(timeout=600)
    jobs = list(at.session_state["_jobs"].values())
    job = next(j for j in jobs if j.spec.kind == "explanation") if jobs else None
    deadline = time.monotonic() + 300
    while job is not None and job.partial is None and not job.finished and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run(timeout=600)
    out = {}
    for name, (key, values) in TOGGLES.items():
        times = []
        for i in range(repeats):
            at.session_state[key] = values[i % 2]
            t0 = time.perf_counter()
            at.run(timeout=600)
            times.append(time.perf_counter() - t0)
        out[f"while running: {name} (first flip)"] = times[0]
        out[f"while running: {name}"] = statistics.median(times)
        at.session_state[key] = values[1]
        at.run(timeout=600)
    out["while running: job still running at the end"] = float(job is not None and not job.finished)
    if job is not None:
        job.cancel()
    return out


def profile(toggle: str, path: Path) -> None:
    """cProfile of one first flip of ``toggle`` (for finding what is slow), written to ``path``."""
    import long_models

    at = long_models.explore_app()
    at.run(timeout=600)
    at.button(key="explain").click()
    at.run(timeout=600)
    _settle(at)
    key, values = TOGGLES[toggle]
    at.session_state[key] = values[0]
    at.session_state["_profile_to"] = str(path)
    at.run(timeout=600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--running", type=int, default=0, metavar="MASKS",
                    help="also time the toggles while a FreqRISE job of this many masks runs")
    ap.add_argument("--profile", help="write a cProfile of one flip of this toggle to toggle.prof in the temporary folder")
    args = ap.parse_args()
    if args.profile:
        profile(args.profile, Path(tempfile.gettempdir()) / "toggle.prof")
        return
    res = app_timings(args.repeats)
    if args.running:
        res.update(running_timings(args.repeats, args.running))
    for name, s in res.items():
        print(f"{name:28s} {s:7.3f} s")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
