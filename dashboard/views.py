"""Drawing one explanation: the maps, the players, the method's charts, the plain-words panels.

Every function takes an explanation (partial or final) and a :class:`View` (the person's view settings)
and draws into the containers it is given, so a polling fragment can call them as results arrive. No maths
here: grids and colour scales come from :mod:`earmark.display` through ``services``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from earmark.errors import EarmarkError
from earmark.explainers.anytime import stability_text

from . import figures, live, state
from . import services as sv
from .common import player

REFERENCE_OPTIONS = ("auto", "zero", "mean", "baseline")
REFERENCE_LABELS = {"auto": "auto", "zero": "zero", "mean": "map's mean", "baseline": "mean score"}


@dataclass(frozen=True)
class View:
    """How the person wants to see a result (stored in ``st.session_state`` by :mod:`dashboard.state`)."""

    log_freq: bool
    clip: bool
    layout: str
    reference: str
    dim_silent: bool
    k: int
    match: bool
    present: bool
    contrast: str = "rank"
    zoom: tuple[float, float] | None = None    # time range shown (s); None = the whole window

    @property
    def palette(self) -> str:
        return "cvd" if self.present else "default"


def current_view() -> View:
    g = state.get
    return View(log_freq=bool(g("log_freq")), clip=bool(g("clip_colours")), layout=g("layout") or "Overlay",
                reference=g("reference") or "auto", dim_silent=bool(g("dim_silent")), k=int(g("k")),
                match=bool(g("match")), present=bool(g("present")), contrast=g("contrast") or "rank",
                zoom=tuple(g("zoom")) if g("zoom") else None)


def view_controls(box, spec, *, window: float | None = None) -> View:
    """The view toggles (log axis, colour clipping, layout, colour reference, silent cells) in ``box``, and
    with ``window`` (s, the model's window) the time range shown."""
    box.toggle("Log frequency axis", key=state.bind("log_freq"))
    if window:
        full = (0.0, round(float(window), 2))
        zoom = state.get("zoom")
        zoom = tuple(zoom) if zoom and full[0] <= zoom[0] < zoom[1] <= full[1] else full
        shown = box.slider("Time shown (s)", full[0], full[1], value=zoom, step=0.01, key="w_zoom_range",
                           help="Zoom in time: the map is redrawn for this range at its own resolution (a long "
                                "clip's whole map is pooled into screen-wide blocks). Colour limits follow the "
                                "cells shown.")
        state.put("zoom", None if tuple(shown) == full else tuple(shown))
    box.segmented_control("Colour by", ["rank", "value"], key=state.bind("contrast"),
                          format_func=lambda o: {"rank": "Rank (structure)", "value": "Value (linear)"}[o],
                          help="Rank: each live cell's colour is its rank among the cells on its side of the "
                               "centre, so the structure of a map with a few very large cells stays visible; the "
                               "colour bar's ticks give the values at the quartiles. Value: colour proportional "
                               "to the value. Either way, cells masking cannot change (zero padding) are blank "
                               "and spend none of the scale.")
    box.toggle("Clip colours at the 99.5th percentile", key=state.bind("clip_colours"),
               help="So that a few very large cells do not wash out the rest of the map (colour by value).")
    box.toggle("Dim silent cells", key=state.bind("dim_silent"),
               help="Grey out cells more than 60 dB below the loudest one: what the map says there is "
                    "about silence.")
    box.segmented_control("Layout", ["Overlay", "Side by side"], key=state.bind("layout"))
    box.toggle("Match the loudness of the players to the original", key=state.bind("match"),
               help="So that a quieter version is not mistaken for a less important one.")
    box.segmented_control("Colours centred on", list(REFERENCE_OPTIONS), key=state.bind("reference"),
                          format_func=lambda o: REFERENCE_LABELS[o],
                          help="A positive map whose cells all sit near one value (FreqRISE, RELAX) reads best "
                               "relative to its mean, or to the mean score of the random masks. 'auto' uses "
                               "the method's choice; signed maps are always centred on zero, and 'mean score' falls back to the "
                               "map's mean for methods without one.")
    return current_view()


def grid_and_scales(cur, exp, view: View, *, partial_saliency=None):
    """The display grid and the two colour scales of ``exp`` (or of a partial saliency map)."""
    settings, wave = cur["settings"], cur["ready"].wave
    if partial_saliency is not None:
        grid = sv.display_map(settings, wave, partial_saliency, time_range=view.zoom)
    else:
        grid = sv.display_of(settings, wave, exp, view.zoom)   # a stopped run's partial map is not cached
    scales = sv.colour_scales(settings, grid, exp, reference=view.reference, clip=view.clip,
                               contrast=view.contrast)
    return grid, scales


def map_figures(cur, grid, scales, view: View, *, title: str, region=None):
    """``(saliency figure, uncertainty figure)`` side by side on the same time axis, the wave above each."""
    span = sv.clip_span(cur["clip"].duration, cur["window"], cur["offset"])[:2]
    common = dict(log_freq=view.log_freq, layout=view.layout, dim_silent=view.dim_silent, wave=cur["ready"].wave,
                  clip_span=span, height=410)
    sal = figures.saliency_map(grid, scales["saliency"], what="saliency", title=title, region=region, **common)
    unc = figures.saliency_map(grid, scales["uncertainty"], what="uncertainty", title="Uncertainty",
                               y_title=False, **common)
    return sal, unc


def draw_partial(cur, exp, view: View, *, title: str) -> None:
    """A partial estimate (``exp.meta["partial"]``) while the job runs: saliency and uncertainty side by side.

    Called by the polling fragment of :func:`dashboard.live.watch` about twice a second.
    """
    def build():
        settings, heading = cur["settings"], title
        grid = sv.display_of(settings, cur["ready"].wave, exp, view.zoom)
        scales = sv.colour_scales(settings, grid, exp, reference=view.reference, clip=view.clip,
                               contrast=view.contrast)
        meta = exp.meta
        done, total, conv = meta.get("done"), meta.get("total"), meta.get("convergence")
        if meta.get("partial"):
            heading += (f" — after {done:,} of {total:,} {meta.get('unit') or ''}" if done and total
                        else " — first look")
            heading += f", convergence {conv:.2f}" if conv is not None else ""
        sal, unc = map_figures(cur, grid, scales, view, title=heading)
        if not np.any(grid.uncertainty):
            unc.update_layout(title_text="Uncertainty — drawn when the map is final")
        return sal, unc

    # built once per estimate and view, for every session watching the job (the poll redraws twice a second)
    sal, unc = sv.partial_figure(exp, (view, title), build) if exp.meta.get("partial") else build()
    c1, c2, _ = st.columns([4, 4, 3])
    c1.plotly_chart(sal, key="fig_saliency_partial", config=figures.CONFIG)
    c2.plotly_chart(unc, key="fig_uncertainty_partial", config=figures.CONFIG)


def _last_box(event):
    try:
        boxes = event["selection"]["box"]
    except (KeyError, TypeError):
        return None
    return boxes[-1] if boxes else None


#: Said when the last box was dragged on the waveform strip above the map (a time range with an amplitude
#: range, not a frequency range).
OFF_MAP_BOX = ("That box was drawn on the waveform strip, not on the map: drag it on the map to hear one "
               "time–frequency region.")


def box_off_map(event, map_yrefs) -> bool:
    """Whether the last box of a plotly selection lies on another axis than the map's (the waveform strip)."""
    b = _last_box(event)
    return b is not None and map_yrefs is not None and b.get("yref", map_yrefs[0]) not in map_yrefs


def region_from_event(event, grid, log_freq: bool, map_yrefs=None):
    """The box chosen on the saliency map (a plotly selection) as ``{"x", "y", "box"}``, or ``None``.

    ``map_yrefs``: the y axes of the map in the figure (:func:`dashboard.figures.map_yrefs`); a box on any
    other axis (the waveform strip, whose y is an amplitude) is not a region and gives ``None``.
    """
    b = _last_box(event)
    if b is None or box_off_map(event, map_yrefs):
        return None
    t0, t1 = sorted(float(v) for v in b["x"][:2])
    if getattr(grid, "span", None) is not None:            # a zoomed map: the part of the box on screen
        cut = sv.clip_interval((t0, t1), grid.span)
        if cut is None:
            return None
        t0, t1 = cut
    y0, y1 = sorted(float(v) for v in b["y"][:2])
    if grid.row_labels:
        rows = (max(0, int(np.ceil(y0))), min(len(grid.row_labels) - 1, int(np.floor(y1))))
        return {"x": (t0, t1), "y": (y0, y1), "box": ((t0, t1), None, rows),
                "text": f"{t0:.2f}–{t1:.2f} s, levels {grid.row_labels[rows[0]]}–{grid.row_labels[rows[1]]}"}
    if log_freq and y1 < np.log10(max(float(grid.freqs.max()), 10.0)) + 0.5:  # a log axis reports log10 Hz
        y0, y1 = 10 ** y0, 10 ** y1
    return {"x": (t0, t1), "y": (y0, y1), "box": ((t0, t1), (y0, y1), None),
            "text": f"{t0:.2f}–{t1:.2f} s, {y0:.0f}–{y1:.0f} Hz"}


def players(cur, exp, view: View, box, *, listened=None, region=None) -> dict | None:
    """The k slider, loudness toggle and the four players with the model's answer on each, in ``box``."""
    card = cur["card"]
    labels = card.labels
    box.slider("Top k % of the map kept / removed", 1, 90, key=state.bind("k"), format="%d %%")
    view = current_view()
    if listened is None:
        try:
            listened = live.result_or_watch(sv.listen_job(cur["settings"], cur["ready"].wave, exp, view.k / 100,
                                                          view.match),
                                            key="listen", wait=5.0, label="Rendering the masked audio",
                                            container=box)
        except EarmarkError as exc:
            box.warning(str(exc))
            return None
        if listened is None:
            return None
    names = {"original": "Original", "keep": f"Keep {view.k} %", "remove": f"Remove {view.k} %",
             "soft": "Soft mask"}
    for kind in ("original", "keep", "remove", "soft"):
        if kind in listened:
            wave, p = listened[kind]
            player(names[kind], wave, card.sample_rate, p, labels, container=box, compact=True)
            silent_note(wave, box)
    if region is not None:
        try:
            wave, p = sv.listen_region(cur["settings"], cur["ready"].wave, region["box"])
            player(f"Only the box {region['text']}", wave, card.sample_rate, p, labels, container=box, compact=True)
            silent_note(wave, box)
        except EarmarkError as exc:
            box.warning(str(exc))
    else:
        box.caption("Drag a box on the saliency map to hear only that part.")
    return listened


def silent_note(wave, box=st) -> None:
    """A warning under a player whose audio is near silent (:func:`earmark.sonify.near_silence_note`)."""
    from earmark.sonify import near_silence_note

    if note := near_silence_note(wave):
        box.warning(note, icon=":material/volume_off:")


def extras_charts(exp, spec, grid, box=st) -> int:
    """The method's charts as its spec declares them (:class:`earmark.explainers.PlotSpec`); returns how many."""
    arrays = exp.numpy()
    plots = [p for p in getattr(spec, "plots", ()) if p.key in arrays]
    if not plots:
        return 0
    cols = box.columns(len(plots))
    for col, plot in zip(cols, plots):
        pts = None
        if plot.points and all(k in arrays for k in plot.points):
            pts = (arrays[plot.points[0]], arrays[plot.points[1]])
        col.plotly_chart(figures.extra_chart(plot, arrays[plot.key], row_labels=grid.row_labels, points=pts),
                         key=f"fig_extra_{plot.key}", config=figures.CONFIG)
    return len(plots)


def budget_text(exp, spec) -> str:
    """How much of its budget an anytime run used, for the line under the maps ("" for other methods)."""
    extras = exp.extras
    if not spec.anytime or "budget_used" not in extras or "budget_total" not in extras:
        return ""
    used, total = int(extras["budget_used"]), int(extras["budget_total"])
    unit = spec.budget_unit
    target = float(extras["stability_target"]) if "stability_target" in extras else 0.0
    if used < total and target > 0 and float(extras.get("stability_top10", float("nan"))) >= target:
        text = (f"stable enough after {used:,} of {total:,} {unit} (stop at stability {target:.2f}: "
                f"{1 - used / total:.0%} saved)")
    elif used < total:
        text = f"converged after {used:,} of {total:,} {unit} (stop = auto: {1 - used / total:.0%} saved)"
    else:
        how = "stop = auto, not converged earlier" if exp.params.get("stop") == "auto" else "stop = budget"
        text = f"all {total:,} {unit} ({how})"
    stability = stability_text(extras)
    return f"{text}; {stability}" if stability else text


def partial_text(exp) -> str:
    """The label of a stopped run's partial result ("" for any other result)."""
    meta = exp.meta
    if not meta.get("stopped"):
        return ""
    done, total, unit = meta.get("budget_used"), meta.get("budget_total"), meta.get("budget_unit") or "units"
    used = f"after {done:,} of {total:,} {unit}" if done is not None and total else "before the end"
    return (f"**Partial result**: stopped {used}. It can be exported, pinned and listened to like any result; "
            "**Continue** finishes it with the same map an uninterrupted run gives at this seed.")


def explain_text(exp, scales, view: View, *, spec=None) -> str:
    """'What am I looking at' for the maps and players, in plain words for this result."""
    sal = scales["saliency"]
    bright = "orange" if view.present else "red"
    dark = "purple" if view.present else "blue"
    if sal.reference != "zero":
        what = (f"Every cell of this map scores about **{sal.centre:.3g}** ({sal.label.split('−')[1].strip()}): "
                f"a random mask that keeps it scores that on average. The colours show the difference: "
                f"**{bright}** cells raise the model's answer above that level when kept, **{dark}** cells "
                "lower it. Colourless is 'no different from average'.")
    elif sal.diverging:
        what = (f"**{bright.capitalize()}** cells push the model towards the explained class, **{dark}** cells "
                "push it away; colourless cells do not matter. Stronger colour = stronger effect.")
    else:
        what = ("The stronger a cell's colour, the more it matters for the explained class; colourless or "
                "pale cells matter little. This map has no sign: it says how much, not in which direction.")
    return (f"**The maps.** Time runs left to right over the model's input window, frequency bottom to top "
            f"(grey: the sound's own energy). {what}\n\n"
            f"**The uncertainty** (right) is how much to trust each cell: {exp.uncertainty_meaning} "
            "Strongly coloured cells there mean: do not read too much into the saliency at that spot.\n\n"
            f"**The players.** *Keep top {view.k} %* rebuilds the sound from only the {view.k} % most "
            f"important cells; *remove top {view.k} %* deletes them and keeps the rest. Under each player is "
            "what the model hears in it: if keeping a few cells is enough for the same answer, and removing "
            "them changes it, the map has found what the model listens to.")


def what_panel(text: str, *, present: bool, box=st) -> None:
    """The 'what am I looking at' panel (open in presentation mode)."""
    with box.expander("What am I looking at?", expanded=present, icon=":material/help:"):
        st.markdown(text)
