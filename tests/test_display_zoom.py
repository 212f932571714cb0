"""Time zoom of a long clip's map: the columns of the visible range, pooled for that range alone."""

from __future__ import annotations

import numpy as np
import torch

from earmark.display import display_grid
from earmark.transforms import get_transform

SR, L = 16000, 10 * 16000      # a 10 s clip: 2,501 STFT frames, more than a screen's 1,200 columns


def _map():
    t = get_transform("stft", SR)
    x = torch.randn(L, generator=torch.Generator().manual_seed(0)) * 0.1
    sal = torch.randn(t.map_shape(L), generator=torch.Generator().manual_seed(1))
    return t, x, sal


def test_a_zoomed_second_is_drawn_at_full_resolution_while_the_whole_clip_is_pooled():
    t, x, sal = _map()
    whole = display_grid(t, x, sal)
    zoom = display_grid(t, x, sal, time_range=(2.0, 3.0))
    assert whole.saliency.shape[1] < sal.shape[1] and whole.x_range == (0.0, 10.0) and whole.span is None
    times = t.axes(L).times.numpy()
    cols = np.flatnonzero((times >= 2.0) & (times <= 3.0))
    # every frame of the second, unpooled: the map's own values, not blocks of the whole clip's image
    image = t.to_image(sal[None], length=L)[0].double().numpy()
    np.testing.assert_array_equal(zoom.saliency, image[:, cols])
    np.testing.assert_allclose(zoom.times, times[cols])
    assert zoom.span == (2.0, 3.0) and zoom.x_range == (2.0, 3.0)
    np.testing.assert_allclose(zoom.bands, whole.bands)        # band importances: the whole map's


def test_a_wide_zoom_is_pooled_per_range_and_a_tiny_one_keeps_two_columns():
    t, x, sal = _map()
    wide = display_grid(t, x, sal, time_range=(0.5, 9.5), max_columns=300)
    assert wide.saliency.shape[1] <= 300 and wide.times[0] >= 0.5 - 0.05 and wide.times[-1] <= 9.5 + 0.05
    tiny = display_grid(t, x, sal, time_range=(4.0, 4.001))
    assert tiny.saliency.shape[1] == 2 and tiny.profile is None
    fourier = get_transform("fourier", SR)
    f = display_grid(fourier, x, torch.rand(fourier.map_shape(L)), time_range=(1.0, 2.0))
    assert f.span is None and f.profile == "frequency"       # no time axis: nothing to zoom


def test_the_explore_page_zooms_the_map_to_the_range_chosen():
    import json

    from apptest_jobs import explain, run
    from test_app import make_app

    at = run(make_app(w_seed=7373, w_explainer="saliency"))
    explain(at)
    at.slider(key="w_zoom_range").set_value((0.25, 0.5))
    run(at)
    sal = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
               if "Saliency" in json.loads(c.proto.spec)["layout"].get("title", {}).get("text", ""))
    ranges = [v["range"] for k, v in sal["layout"].items() if k.startswith("xaxis") and "range" in v]
    assert ranges and all(r == [0.25, 0.5] for r in ranges)
    heat = next(tr for tr in sal["data"] if tr["type"] == "heatmap")
    x = heat["x"]
    if isinstance(x, dict):                                   # plotly's binary array encoding
        import base64
        x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"]))
    assert min(x) >= 0.25 - 1e-9 and max(x) <= 0.5 + 1e-9   # only the columns of the range are drawn
    at.slider(key="w_zoom_range").set_value((0.0, float(at.session_state["current"]["window"])))
    run(at)
    assert at.session_state["v_zoom"] is None                  # the whole window again
