"""earmark.display (colour rules, grids, dB, downsampling), the Explanation's exports, the reproduce command."""

from __future__ import annotations

import io
import json
import shlex

import numpy as np
import pytest
import torch

from earmark.command import ExplainCommand, provenance
from earmark.display import (colour_scale, default_reference, display_grid, region_image, silent_cells,
                             to_db)
from earmark.explainers import EXPLAINERS
from earmark.explanation import Explanation
from earmark.transforms import get_transform


def test_signed_map_is_symmetric_around_zero():
    img = np.array([[-2.0, 0.5], [1.0, 4.0]])
    s = colour_scale(img, clip_percentile=None)
    assert s.diverging and s.centre == 0.0
    assert (s.zmin, s.zmax) == (-4.0, 4.0)
    np.testing.assert_array_equal(s.shown(img), img)


def test_positive_map_from_zero_and_uncertainty_from_zero():
    img = np.array([[0.0, 1.0], [2.0, 3.0]])
    s = colour_scale(img, clip_percentile=None)
    assert not s.diverging and (s.zmin, s.zmax) == (0.0, 3.0)
    u = colour_scale(img * 2, what="uncertainty", clip_percentile=None)
    assert u.zmin == 0.0 and u.zmax == 6.0 and u.label == "Uncertainty"


def test_monte_carlo_map_relative_to_its_mean():
    # FreqRISE-like: every cell ≈ 0.65, a little more where it matters
    img = np.full((4, 5), 0.65)
    img[1, 2] = 0.75
    s = colour_scale(img, reference="mean", clip_percentile=None)
    mean = img.mean()
    assert s.centre == pytest.approx(mean) and s.diverging
    assert s.zmax == pytest.approx(0.75 - mean) and s.zmin == pytest.approx(-(0.75 - mean))
    shown = s.shown(img)
    assert shown[1, 2] == pytest.approx(s.zmax) and shown[0, 0] < 0
    assert "mean" in s.label and f"{mean:.3g}" in s.label
    # normalised for Compare: the peak cell is exactly 1
    assert s.shown(img, normalise=True)[1, 2] == pytest.approx(1.0)


def test_baseline_reference_and_its_errors():
    img = np.array([[0.8, 0.9]])
    s = colour_scale(img, reference="baseline", baseline=0.85, clip_percentile=None)
    np.testing.assert_allclose(s.shown(img), [[-0.05, 0.05]])
    assert "mean score (0.85)" in s.label
    with pytest.raises(ValueError):
        colour_scale(img, reference="baseline")
    with pytest.raises(ValueError):
        colour_scale(img, reference="median")


def test_clip_percentile_limits_the_scale():
    img = np.concatenate([np.linspace(0, 1, 999), [100.0]])
    assert colour_scale(img, clip_percentile=99.0).zmax < 2.0
    assert colour_scale(img, clip_percentile=None).zmax == 100.0


def test_default_reference_follows_the_spec():
    positive = np.full((3, 3), 0.6)
    assert default_reference(positive, EXPLAINERS.get("freqrise")) == "mean"
    assert default_reference(positive, EXPLAINERS.get("relax")) == "mean"
    assert default_reference(positive, EXPLAINERS.get("ig")) == "zero"
    assert default_reference(positive - 1, EXPLAINERS.get("freqrise")) == "zero"  # signed: around 0


def test_to_db_and_silent_cells():
    np.testing.assert_allclose(to_db(np.array([1.0, 0.01, 0.0])), [0.0, -20.0, -100.0], atol=1e-6)
    db = np.array([[0.0, -10.0, -70.0]])
    np.testing.assert_array_equal(silent_cells(db, below_db=60), [[False, False, True]])


@pytest.mark.parametrize("name", ["stft", "fourier", "time", "dwt", "mel"])
def test_display_grid_shapes_and_axes(name):
    tr = get_transform(name, 8000)
    x = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    shape = tr.map_shape(4000)
    sal = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    g = display_grid(tr, x, sal, max_columns=None, max_rows=None)   # every cell (pooling: test_long_clips)
    assert g.saliency.shape == g.power_db.shape == tuple(tr.image_shape(4000))
    assert np.all(g.uncertainty == 0)
    assert g.duration == pytest.approx(0.5)
    assert len(g.freqs) == g.saliency.shape[0] and len(g.times) == g.saliency.shape[1]
    assert g.profile == {"fourier": "frequency", "time": "time"}.get(name)
    np.testing.assert_allclose(g.bands, tr.band_sums(sal[None], length=4000)[0].double().numpy(), rtol=1e-5, atol=1e-5)


def test_region_image_keeps_one_box():
    f, t = np.array([100.0, 200.0, 300.0]), np.array([0.0, 0.1, 0.2, 0.3])
    img = region_image(freqs=f, times=t, time_range=(0.05, 0.25), freq_range=(150, 350))
    np.testing.assert_array_equal(img, [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]])
    img = region_image(freqs=f, times=t, time_range=(0.3, 0.0), rows=(0, 0))
    np.testing.assert_array_equal(img[0], [1, 1, 1, 1])
    assert img[1:].sum() == 0


def test_keep_region_whole_grid_is_the_clip():
    from earmark.sonify import keep_region

    tr = get_transform("stft", 8000)
    x = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    full = torch.ones(tr.image_shape(4000))
    torch.testing.assert_close(keep_region(tr, x, full), x, atol=1e-4, rtol=1e-4)
    none = torch.zeros(tr.image_shape(4000))
    assert float(keep_region(tr, x, none).abs().max()) < 1e-6


def _explanation() -> Explanation:
    return Explanation(saliency=torch.ones(3, 4), uncertainty=torch.zeros(3, 4), target=1, method="ig",
                       transform="stft", uncertainty_meaning="spread", params={"n_steps": 4}, seed=0,
                       extras={"completeness_gap": torch.tensor([0.1, 0.2])},
                       meta={"predicted": 0, "device": torch.device("cpu")})


def test_explanation_cpu_json_npz_round_trip():
    exp = _explanation().cpu()
    assert exp.saliency.device.type == "cpu"
    tr = get_transform("stft", 8000)
    axes = tr.axes(4000)
    arrays = np.load(io.BytesIO(exp.npz_bytes(axes=axes)))
    np.testing.assert_array_equal(arrays["saliency"], np.ones((3, 4)))
    np.testing.assert_allclose(arrays["axes_freqs"], axes.freqs.numpy())
    np.testing.assert_allclose(arrays["axes_times"], axes.times.numpy())
    assert "completeness_gap" in arrays
    cmd = ExplainCommand("my clip.wav", model="m", transform="stft", explainer="ig", target=1,
                         settings={"n_steps": 4}, offset=0.25)
    prov = provenance(cmd, labels=["a", "b"], explanation=exp, clip_name="my clip")
    data = json.loads(exp.to_json(prov))
    assert data["labels"] == ["a", "b"] and data["prediction"] == "a" and data["target_label"] == "b"
    assert data["clip"] == "my clip.wav" and data["device"] == "cpu" and data["params"] == {"n_steps": 4}
    argv = shlex.split(data["command"])
    assert argv[:3] == ["earmark", "explain", "my clip.wav"]
    assert "--offset" in argv and "n_steps=4" in argv and argv[argv.index("--target") + 1] == "1"


def test_cli_parser_defaults_come_from_the_command_model():
    import argparse

    from earmark.cli.explain import add_parser, command_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["explain", "clip.wav"])
    assert command_from_args(args) == ExplainCommand("clip.wav")


def test_plot_declarations_name_real_extras():
    assert [p.key for p in EXPLAINERS.get("minimal_mask").plots] == ["loss_curve", "tradeoff"]
    assert EXPLAINERS.get("wam_sg").plots[0].x_names == "rows"
    for spec in EXPLAINERS:
        for plot in spec.plots:
            assert plot.kind in ("line", "xy", "bars") and plot.xlabel and plot.ylabel


def test_resolve_reference_rules():
    from earmark.display import resolve_reference

    spec = EXPLAINERS.get("freqrise")
    positive, signed = np.full((2, 2), 0.6), np.array([[-1.0, 1.0]])
    assert resolve_reference(positive, spec) == "mean"
    assert resolve_reference(positive, spec, "zero") == "zero"
    assert resolve_reference(positive, spec, "baseline") == "mean"          # no baseline given
    assert resolve_reference(positive, spec, "baseline", baseline=0.5) == "baseline"
    assert resolve_reference(signed, spec, "mean") == "zero"                # signed: always around 0


def test_png_uses_the_same_rule_and_draws_fourier_as_a_profile():
    import matplotlib.pyplot as plt

    from earmark.plots import explanation_figure, map_scale

    tr = get_transform("fourier", 8000)
    x = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    sal = 0.65 + 0.01 * torch.rand(tr.map_shape(4000), generator=torch.Generator().manual_seed(1))
    exp = Explanation(saliency=sal, uncertainty=torch.zeros_like(sal), target=0, method="freqrise",
                      transform="fourier", uncertainty_meaning="", extras={"mean_score": torch.tensor(0.65)})
    spec = EXPLAINERS.get("freqrise")
    grid = display_grid(tr, x, sal)
    s = map_scale(grid, exp, spec=spec)
    assert s.reference == "mean" and s.diverging and s.zmax < 0.02
    fig = explanation_figure(tr, x, exp, spec=spec)
    ax = fig.axes[1]
    assert len(ax.lines) >= 1 and not ax.collections[1:]  # a line over frequency, no stretched image
    line = ax.lines[0].get_ydata()
    np.testing.assert_allclose(line, s.shown(grid.saliency)[:, 0])
    assert ax.get_ylim()[1] == pytest.approx(s.zmax * 1.05)
    plt.close(fig)
    fig = explanation_figure(tr, x, exp, spec=spec, reference="baseline", clip_percentile=None)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), grid.saliency[:, 0] - 0.65, atol=1e-6)
    plt.close(fig)


def test_png_honours_colour_clipping_and_silent_cells():
    import matplotlib.pyplot as plt

    from earmark.display import colour_limit
    from earmark.plots import explanation_figure

    tr = get_transform("stft", 8000)
    x = torch.zeros(4000)
    x[1000:3000] = torch.randn(2000, generator=torch.Generator().manual_seed(0))  # silence around a burst
    sal = torch.randn(tr.map_shape(4000), generator=torch.Generator().manual_seed(1))
    sal[5, sal.shape[1] // 2] = 100.0                                            # one huge cell, in the burst
    sal[5, 0] = -500.0                                                           # in the silence: not live
    exp = Explanation(saliency=sal, uncertainty=sal.abs(), target=0, method="ig", transform="stft",
                      uncertainty_meaning="")
    grid = display_grid(tr, x, sal)
    assert grid.live[:, grid.live.shape[1] // 2].all() and not grid.live[:, 0].any()
    clipped = explanation_figure(tr, x, exp)
    lo, hi = clipped.axes[1].collections[0].get_clim()
    # limits from the live cells only: the silent cell's −500 spends none of the scale, and is drawn blank
    assert hi == pytest.approx(colour_limit(grid.saliency[grid.live], 99.5)) and lo == -hi and hi < 50
    assert np.ma.is_masked(clipped.axes[1].collections[0].get_array()[0]) or np.isnan(
        np.asarray(clipped.axes[1].collections[0].get_array(), float).reshape(grid.saliency.shape)[5, 0])
    full = explanation_figure(tr, x, exp, clip_percentile=None)
    assert full.axes[1].collections[0].get_clim()[1] == pytest.approx(100.0, rel=1e-4)
    dimmed = explanation_figure(tr, x, exp, dim_silent=True)
    assert len(dimmed.axes[1].collections) == len(clipped.axes[1].collections) + 1   # the grey layer
    for f in (clipped, full, dimmed):
        plt.close(f)


def test_round_off_does_not_make_a_positive_map_signed():
    from earmark.display import is_signed, resolve_reference

    img = np.full((3, 3), 0.6)
    img[0, 0] = -2.5e-7
    assert not is_signed(img) and is_signed(img - 0.1)
    assert resolve_reference(img, EXPLAINERS.get("freqrise")) == "mean"
    assert not colour_scale(img, clip_percentile=None).diverging


def test_live_cells_carry_the_colour_scale():
    """Zero padding (cells masking cannot change) spends none of the scale: centre and limits come from
    the live cells, and the figures leave the padding blank."""
    from earmark.display import live_cells, live_values, shown_live

    tr = get_transform("stft", 8000)
    x = torch.zeros(4000)
    x[1000:3000] = torch.sin(torch.arange(2000) * 0.3)
    live = live_cells(tr, x[None])
    assert live.any() and not live.all() and not live[:, 0].any()
    # a FreqRISE-like map: ~0.6 everywhere in the word with structure ±0.05, 0 on the padding
    sal = torch.zeros(tr.map_shape(4000))
    structure = 0.05 * torch.randn(tr.map_shape(4000), generator=torch.Generator().manual_seed(0))
    sal = torch.where(live, 0.6 + structure, sal)
    grid = display_grid(tr, x, sal)
    vals = live_values(grid)
    whole = colour_scale(grid.saliency, reference="mean")
    scale = colour_scale(grid.saliency, reference="mean", live=grid.live)
    assert scale.centre == pytest.approx(vals.mean()) and "live cells" in scale.label
    assert scale.zmax < 0.25 < whole.zmax            # the limit follows the structure, not padding vs word
    shown = scale.shown(vals)
    lo, hi = np.percentile(shown, [5, 95])
    assert (hi - lo) / (scale.zmax - scale.zmin) > 0.5
    assert np.isnan(shown_live(grid.saliency, grid.live)[~grid.live]).all()


def test_log_frequency_ticks_are_written_in_full_and_baselines_are_named():
    from dashboard import figures

    vals, text = figures.log_ticks(31.25, 4000.0)
    assert text == ["50", "100", "200", "500", "1k", "2k"] and vals[0] == 50.0
    _, axis = figures._y(np.array([0.0, 62.5, 125.0, 4000.0]), None, True)
    assert axis["ticktext"][-1] == "2k" and axis["type"] == "log"
    plot = EXPLAINERS.get("ig").plots[0]
    fig = figures.extra_chart(plot, np.array([0.1, -0.2, 0.05]))
    assert list(fig.data[0].x) == ["zero", "noise", "blur"]
    assert list(figures.extra_chart(plot, np.array([0.1])).data[0].x) == ["zero"]
