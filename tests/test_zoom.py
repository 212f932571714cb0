"""Time zoom of long maps (``earmark.zoom``): the visible range, pooling per range, the waveform strip, and
the app's cache (a view toggle pools nothing; a zoom change pools once).

Pure functions against known answers: a one-cell peak inside the visible range keeps its value at full
resolution, the pooling blocks start at the range's first column, the whole range equals the whole-clip
display grid bit for bit. The app part drives Explore on a 10 s clip (``tests/long_models.py``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from earmark import zoom
from earmark.display import DisplayGrid, display_grid, to_db
from earmark.downsample import MAX_COLUMNS
from earmark.errors import ConfigError
from earmark.transforms import get_transform


def _grid(T: int = 3000, F: int = 4, duration: float = 10.0) -> DisplayGrid:
    g = np.random.default_rng(0)
    sal = g.uniform(-0.1, 0.1, (F, T))
    power = g.uniform(0.5, 1.0, (F, T))
    times = (np.arange(T) + 0.5) * duration / T
    live = np.ones((F, T), bool)
    return DisplayGrid(saliency=sal, uncertainty=np.abs(sal), power=power, power_db=to_db(power),
                       freqs=np.arange(F) * 100.0, times=times, freq_edges=np.arange(F + 1) * 100.0 - 50,
                       row_labels=None, bands=sal.sum(1), duration=duration, live=live)


# ---- range selection -------------------------------------------------------------------------------

def test_visible_range_clamps_moves_and_widens():
    assert zoom.visible_range(10.0) == (0.0, 10.0)
    assert zoom.visible_range(10.0, (4.0, 2.0)) == (2.0, 4.0)                 # any order
    assert zoom.visible_range(10.0, (-1.0, 1.0)) == (0.0, 2.0)               # moved inside, width kept
    assert zoom.visible_range(10.0, (9.0, 12.0)) == (7.0, 10.0)
    assert zoom.visible_range(10.0, (-5.0, 20.0)) == (0.0, 10.0)             # wider than the clip
    assert zoom.visible_range(10.0, (5.0, 5.0), min_width=1.0) == (4.5, 5.5)  # widened around its middle
    with pytest.raises(ConfigError):
        zoom.visible_range(0.0)
    with pytest.raises(ConfigError):
        zoom.visible_range(10.0, (0.0, float("nan")))


def test_column_span_keeps_centres_inside_and_at_least_one_column():
    t = np.array([0.5, 1.5, 2.5, 3.5])
    assert zoom.column_span(t, (1.0, 3.0)) == (1, 3)
    assert zoom.column_span(t, (1.5, 2.5)) == (1, 3)        # centres on the edges count
    assert zoom.column_span(t, (1.6, 1.7)) == (1, 3)        # fewer than two inside: the two nearest
    assert zoom.clip_interval((1.0, 5.0), (2.0, 4.0)) == (2.0, 4.0)
    assert zoom.clip_interval((0.0, 1.0), (2.0, 4.0)) is None


# ---- pooling per visible range ---------------------------------------------------------------------

def test_a_one_cell_peak_keeps_its_value_at_full_resolution_and_when_pooled():
    g = _grid()
    sal = g.saliency.copy()
    sal[2, 1234] = -7.0                       # at t = 4.115 s
    g = dataclasses.replace(g, saliency=sal)
    near = zoom.visible_grid(g, (3.5, 4.5))  # 300 columns: fits, full resolution
    assert near.saliency.shape == (4, 300) and near.span == (3.5, 4.5)
    first = zoom.column_span(g.times, (3.5, 4.5))[0]
    np.testing.assert_array_equal(near.saliency, sal[:, first:first + 300])   # the cells themselves
    np.testing.assert_array_equal(near.times, g.times[first:first + 300])
    assert near.saliency[2].min() == -7.0 and int(np.argmin(near.saliency[2])) == 1234 - first
    whole = zoom.visible_grid(g)             # 3,000 columns → blocks of 3 → 1,000 columns
    assert whole.saliency.shape == (4, 1000) and whole.saliency.min() == -7.0
    assert int(np.argmin(whole.saliency[2])) == 1234 // 3
    assert whole.span is None and whole.x_range == (0.0, 10.0) and whole.duration == 10.0
    np.testing.assert_array_equal(whole.bands, g.bands)        # the whole map's bands, whatever the range


def test_pooling_blocks_start_at_the_ranges_first_column():
    T = 6000
    g = _grid(T)
    sal = np.zeros_like(g.saliency)
    sal[0] = np.arange(T, dtype=np.float64)          # a ramp: each block's peak is its last cell
    unc = np.zeros_like(sal)
    g = dataclasses.replace(g, saliency=sal, uncertainty=unc)
    rng = (1.0, 5.0)                                  # 2,400 columns → blocks of 2
    first, stop = zoom.column_span(g.times, rng)
    assert stop - first == 2400
    v = zoom.visible_grid(g, rng)
    assert v.saliency.shape[1] == 1200
    np.testing.assert_array_equal(v.saliency[0], np.arange(first + 1, stop, 2, dtype=np.float64))
    np.testing.assert_allclose(v.times, (g.times[first:stop:2] + g.times[first + 1:stop:2]) / 2)
    np.testing.assert_allclose(v.power, (g.power[:, first:stop:2] + g.power[:, first + 1:stop:2]) / 2, rtol=1e-6)
    odd = zoom.visible_grid(g, (1.0, 5.001), max_columns=1000)   # 2,401 columns → blocks of 3, last one short
    assert odd.saliency.shape[1] == 801 and odd.saliency[0, -1] == sal[0, first + 2400]


def test_live_cells_and_colour_limits_follow_the_visible_range():
    from earmark.display import colour_scale

    g = _grid()
    live = np.ones_like(g.live)
    live[:, :1500] = False                     # the first 5 s are zero padding
    sal = g.saliency.copy()
    sal[:, 1500:] *= 0.01                      # the live part is quiet: limits must come from it
    g = dataclasses.replace(g, saliency=sal, live=live)
    right = zoom.visible_grid(g, (6.0, 8.0))
    assert right.live.all()
    scale = colour_scale(right.saliency, live=right.live, clip_percentile=None)
    assert scale.zmax == pytest.approx(np.abs(right.saliency).max()) and scale.zmax < 0.0011
    left = zoom.visible_grid(g, (0.0, 2.0))
    assert not left.live.any()


def test_the_whole_range_equals_the_whole_clip_display_grid_bit_for_bit():
    sr, n = 16000, 160_000
    x = torch.sin(torch.arange(n) / sr * 2 * np.pi * 440) * (torch.arange(n) > 40_000)
    t = get_transform("stft", sr)
    sal = torch.randn(t.map_shape(n), generator=torch.Generator().manual_seed(0))
    unc = sal.abs() * 0.1
    pooled = display_grid(t, x, sal, unc)                      # the old whole-clip path: 834 columns
    full = display_grid(t, x, sal, unc, max_columns=None)      # 2,501 columns
    assert full.saliency.shape == (129, 2501) and pooled.saliency.shape == (129, 834)
    again = zoom.visible_grid(full)
    for name in ("saliency", "uncertainty", "power", "power_db", "times", "live", "freqs", "bands"):
        np.testing.assert_array_equal(getattr(again, name), getattr(pooled, name), err_msg=name)
    for rng in ((2.5, 3.5), (0.3, 9.9), (4.0, 4.001), (-1.0, 0.5)):   # = display_grid(time_range=), bit for bit
        want, got = display_grid(t, x, sal, unc, time_range=rng), zoom.visible_grid(full, rng)
        assert want.span == got.span, rng
        for name in ("saliency", "uncertainty", "power", "power_db", "times", "live", "bands"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=f"{name} {rng}")
    word = zoom.visible_grid(full, (2.5, 3.5))                 # one second: 250 columns, unpooled
    first, stop = zoom.column_span(full.times, (2.5, 3.5))
    np.testing.assert_array_equal(word.saliency, full.saliency[:, first:stop])
    assert word.saliency.shape == (129, stop - first) and stop - first <= MAX_COLUMNS


def test_fourier_profile_has_no_time_axis_to_zoom():
    t = get_transform("fourier", 16000)
    x = torch.randn(16000, generator=torch.Generator().manual_seed(1))
    full = display_grid(t, x, torch.ones(t.map_shape(16000)), max_columns=None)
    assert zoom.visible_grid(full, (0.1, 0.2)) is full


def test_the_waveform_strip_covers_the_visible_range():
    sr = 16000
    wave = np.zeros(160_000, np.float32)
    wave[48_000] = 1.0                                            # a click at 3 s
    ((t, y),) = zoom.wave_window(wave, 10.0, (2.9, 3.1))          # 3,200 samples: drawn as they are
    assert t[0] == pytest.approx(2.9, abs=1 / sr) and t[-1] == pytest.approx(3.1, abs=2 / sr)
    assert y.max() == 1.0 and t[int(np.argmax(y))] == pytest.approx(3.0)
    (t, high), (_, low) = zoom.wave_window(wave, 10.0)             # the whole clip: a 4,000-point envelope
    assert len(t) <= 4000 and high.max() == 1.0 and t[0] < 0.01 and t[-1] > 9.99


@pytest.mark.parametrize("name", ["stft", "dwt", "time"])
def test_a_new_map_on_a_kept_grid_equals_the_display_grid_bit_for_bit(name):
    sr, n = 16000, 40_000
    x = torch.sin(torch.arange(n) / sr * 2 * np.pi * 440) * (torch.arange(n) > 8_000)
    t = get_transform(name, sr)
    g = torch.Generator().manual_seed(2)
    sal, unc = torch.randn(t.map_shape(n), generator=g), torch.rand(t.map_shape(n), generator=g)
    background = display_grid(t, x, torch.zeros(t.map_shape(n)), max_columns=None)
    for u in (unc, None):
        want = display_grid(t, x, sal, u, max_columns=None)
        got = zoom.with_map(background, t, sal, u, length=n)
        for field in dataclasses.fields(want):
            a, b = getattr(want, field.name), getattr(got, field.name)
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b, err_msg=field.name)
            else:
                assert a == b, field.name
