"""Explore on a 10 s clip (129 × 2,501 STFT map): the time zoom redraws with the expected columns, and a view
toggle redraws without pooling or rebuilding any grid (calls counted, no timing).

The model is a linear 10 s block-energy model registered for the tests (``tests/long_models.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import long_models
from apptest_jobs import explain, run
from test_ast_digits import _array

from earmark import display as core_display
from earmark import zoom

pytestmark = pytest.mark.timeout(900)

def _map_columns(at) -> tuple[int, int]:
    """(saliency heatmap columns, uncertainty heatmap columns) from the figures' JSON (their x axes)."""
    out = []
    for key in ("fig_saliency", "fig_uncertainty"):
        fig = next(json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith(key))
        heat = [t for t in fig["data"] if t.get("type") == "heatmap"][-1]
        out.append(len(_array(heat["x"])))
    return tuple(out)


@pytest.fixture
def counted(monkeypatch):
    """Counts of full grids built (``display_grid``) and of visible ranges pooled (``visible_grid``)."""
    calls = {"display_grid": 0, "visible_grid": 0}
    for module, name in ((core_display, "display_grid"), (zoom, "visible_grid")):
        real = getattr(module, name)

        def wrapped(*a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(*a, **k)

        monkeypatch.setattr(module, name, wrapped)
    return calls


def test_zoom_redraws_the_visible_range_and_toggles_pool_nothing(counted):
    at = run(long_models.explore_app())
    explain(at)
    assert not at.error, [e.value for e in at.error]
    slider = at.slider(key="w_zoom_range")
    assert slider.value == (0.0, 10.0)
    assert _map_columns(at) == (834, 834)                    # 2,501 columns pooled 3:1 for the screen

    before = dict(counted)
    for key, value in (("w_dim_silent", True), ("w_contrast", "value"), ("w_log_freq", True),
                       ("w_clip_colours", False)):
        at.session_state[key] = value
        run(at)
        assert _map_columns(at) == (834, 834)
    assert counted == before, (counted, before)              # toggles: no grid built, nothing pooled

    at.slider(key="w_zoom_range").set_value((2.0, 4.0))
    run(at)
    times = long_models_times()
    first, stop = zoom.column_span(times, (2.0, 4.0))
    assert stop - first == 501 and _map_columns(at) == (501, 501)   # 4 ms hop: full resolution
    assert counted["visible_grid"] == before["visible_grid"] + 1    # one new range pooled …
    assert counted["display_grid"] == before["display_grid"]        # … from the full grid already built
    fig = next(json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith("fig_saliency"))
    assert fig["layout"]["xaxis"]["range"] == [2.0, 4.0]            # the waveform strip and map share it
    wave_x = np.concatenate([_array(t["x"]) for t in fig["data"] if t.get("type") == "scatter"])
    assert wave_x.min() >= 2.0 - 1e-3 and wave_x.max() <= 4.0 + 1e-3

    at.session_state["w_dim_silent"] = False                 # a toggle at this zoom: still nothing pooled
    run(at)
    at.slider(key="w_zoom_range").set_value((0.0, 10.0))     # back to the whole clip: from the cache
    run(at)
    assert _map_columns(at) == (834, 834)
    assert counted["visible_grid"] == before["visible_grid"] + 1
    assert counted["display_grid"] == before["display_grid"]
    at.slider(key="w_zoom_range").set_value((2.0, 4.0))
    run(at)
    at.button(key="pin").click()
    run(at)
    assert at.session_state["slots"][-1]["display"].span is None      # Compare gets the whole map


def long_models_times() -> np.ndarray:
    from earmark.transforms import get_transform

    t = get_transform("stft", long_models.SR)
    return t.axes(long_models.SR * long_models.SECONDS).times.double().numpy()


def test_a_box_on_a_zoomed_map_is_cut_to_the_visible_range():
    from test_zoom import _grid

    from dashboard.views import region_from_event

    g = zoom.visible_grid(_grid(), (2.0, 4.0))
    event = {"selection": {"box": [{"x": [1.5, 3.0], "y": [100.0, 200.0], "yref": "y2"}]}}
    region = region_from_event(event, g, False, ("y2",))
    assert region["box"] == ((2.0, 3.0), (100.0, 200.0), None) and region["text"].startswith("2.00–3.00 s")
    event["selection"]["box"][0]["x"] = [5.0, 6.0]               # wholly off screen: no region
    assert region_from_event(event, g, False, ("y2",)) is None
