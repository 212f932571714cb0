"""Rough edges a new user met, each checked where it lives (figures, views, audio, loaders).

The app-level ones are in ``test_app_rough_edges.py``; the rendered layout in the browser in
``test_browser.py``.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


class _Grid:
    """The parts of a DisplayGrid that :func:`dashboard.views.region_from_event` reads."""

    row_labels = None
    freqs = np.linspace(0.0, 4000.0, 65)


def _box(yref: str, y=(200.0, 1500.0)) -> dict:
    return {"selection": {"box": [{"xref": "x2" if yref == "y2" else "x", "yref": yref, "x": [0.3, 0.6],
                                   "y": list(y)}], "points": []}}


def test_a_box_on_the_waveform_strip_is_not_a_frequency_range():
    from dashboard import figures, views

    fig = figures.saliency_map(_display(), _scale(), wave=np.sin(np.linspace(0, 60, 8000)).astype(np.float32))
    heat = [t for t in fig.data if t.type == "heatmap"]
    lines = [t for t in fig.data if t.type == "scatter"]
    yrefs = figures.map_yrefs("Overlay", wave=True)
    assert {t.yaxis for t in heat} <= set(yrefs) and not {t.yaxis for t in lines} & set(yrefs)
    on_strip = _box(lines[0].yaxis, y=(-0.4, 0.4))          # amplitude, not Hz
    assert views.region_from_event(on_strip, _Grid(), False, yrefs) is None
    assert views.box_off_map(on_strip, yrefs)
    on_map = _box(heat[0].yaxis)
    region = views.region_from_event(on_map, _Grid(), False, yrefs)
    assert region["box"] == ((0.3, 0.6), (200.0, 1500.0), None) and not views.box_off_map(on_map, yrefs)
    # side by side: both panels are maps on the same time and frequency axes
    assert views.region_from_event(_box("y"), _Grid(), False, figures.map_yrefs("Side by side")) is not None


def test_near_silent_versions_are_flagged():
    import torch

    from earmark.sonify import NEAR_SILENT_DBFS, level_dbfs, near_silence_note

    t = torch.arange(8000) / 8000
    tone = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    assert abs(level_dbfs(tone) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.01
    assert level_dbfs(torch.zeros(100)) == pytest.approx(-240.0)
    assert near_silence_note(tone) is None
    assert "−240 dBFS" in near_silence_note(torch.zeros(8000)).replace("-", "−")
    quiet = tone * 10 ** ((NEAR_SILENT_DBFS - 1 - level_dbfs(tone)) / 20)   # 1 dB under the threshold
    assert near_silence_note(quiet) is not None and near_silence_note(quiet * 1.3) is None

    from dashboard import views

    class Box:
        said: list = []

        def warning(self, text, **_):
            self.said.append(text)

    box = Box()
    views.silent_note(np.zeros(8000, np.float32), box)
    views.silent_note(tone.numpy(), box)
    assert len(box.said) == 1 and "near silent" in box.said[0]


def _display():
    from earmark.display import DisplayGrid

    f, t = 33, 40
    rng = np.random.default_rng(0)
    sal = rng.standard_normal((f, t))
    power = rng.random((f, t)) + 1e-3
    return DisplayGrid(saliency=sal, uncertainty=np.abs(sal) / 3, power=power, power_db=10 * np.log10(power),
                       freqs=np.linspace(0, 4000, f), times=(np.arange(t) + 0.5) / t,
                       freq_edges=np.linspace(-62.5, 4062.5, f + 1), row_labels=None, bands=sal.sum(1), duration=1.0)


def _scale():
    from earmark.display import colour_scale

    return colour_scale(_display().saliency)


def _space_below_axis(fig) -> tuple[float, float]:
    """(pixels between the plot area's bottom and the colour bar's top, pixels the bar has below it)."""
    height, m = fig.layout.height, fig.layout.margin
    plot = height - m.t - m.b
    bar = [t for t in fig.data if t.type == "heatmap" and t.showscale is not False][-1].colorbar
    return -bar.y * plot, m.b + bar.y * plot


@pytest.mark.parametrize("present", [False, True], ids=["default", "presentation"])
@pytest.mark.parametrize("case", ["compare", "explore", "side-by-side"])
def test_colour_bar_clears_the_time_axis_labels(present, case):
    """The bar starts below the time axis' tick labels (and its title, where drawn), and fits the margin."""
    from dashboard import figures

    figures.use_style("presentation" if present else "default")
    try:
        kwargs = {"compare": dict(normalise=True, height=360), "side-by-side": dict(layout="Side by side", height=360),
                  "explore": dict(title="Saliency", height=410,
                                  wave=np.sin(np.linspace(0, 60, 8000)).astype(np.float32))}[case]
        fig = figures.saliency_map(_display(), _scale(), **kwargs)
        tick = 17 if present else 15                    # tick labels' size in this style
        title = (19 if present else 15) if case != "explore" else 0   # the "Time (s)" title, if any
        # in Chromium (Streamlit's theme) a 15 px tick label ends 35 px under the plot area; the title follows
        need = 2.3 * tick + (1.2 * title + 10 if title else 0)
        above, below = _space_below_axis(fig)
        assert above >= need, (above, need)
        assert below >= 9 + 1.2 * 12 + 1.2 * 15, below   # the bar, its tick labels and its title
    finally:
        figures.use_style("default")


def test_the_ast_mel_filter_warning_is_silenced_and_other_warnings_pass(monkeypatch):
    pytest.importorskip("transformers")
    import transformers.audio_utils as au

    from earmark.models.loaders.hf import KaldiFbank

    args = dict(sample_rate=16000, num_mel_bins=128, max_length=100, mean=0.0, std=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KaldiFbank(**args)
    assert not [w for w in caught if "mel filter" in str(w.message)], [str(w.message) for w in caught]
    original = au.mel_filter_bank

    def noisy(*a, **k):
        warnings.warn("something else is wrong", UserWarning)
        return original(*a, **k)

    monkeypatch.setattr(au, "mel_filter_bank", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KaldiFbank(**args)
    assert [str(w.message) for w in caught if "something else" in str(w.message)]

    def broken(*a, **k):
        raise ValueError("bad banks")

    monkeypatch.setattr(au, "mel_filter_bank", broken)
    with pytest.raises(ValueError, match="bad banks"):
        KaldiFbank(**args)


def test_figures_import_pandas_once_with_the_module():
    """Plotly imports pandas lazily; a session drawing a first figure while another imports it met a
    half-initialised module. The figures module imports it at once, in a fresh interpreter."""
    pytest.importorskip("pandas")
    code = ("import sys; import dashboard.figures; m = sys.modules.get('pandas'); "
            "print(m is not None and hasattr(m, 'Series') and hasattr(m, 'DataFrame'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": f"{ROOT / 'core'}:{ROOT}"})
    assert out.stdout.strip() == "True", out.stderr[-2000:]


def test_every_signal_kind_and_setting_has_a_plain_name():
    from earmark.examples import SIGNAL_KINDS, SIGNAL_LABELS, SIGNAL_PARAMS, SIGNAL_TITLES, SIGNAL_USES, signal_params

    assert set(SIGNAL_TITLES) == set(SIGNAL_KINDS) and set(SIGNAL_LABELS) == {p.name for p in SIGNAL_PARAMS}
    for kind in SIGNAL_KINDS:
        names = [p.name for p in signal_params(kind)]
        assert names[0] == "sample_rate" and set(names) == {"sample_rate", "seconds", "amplitude", *SIGNAL_USES[kind]}
