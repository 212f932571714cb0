"""Explore: one screen per explanation — saliency and uncertainty side by side, the players beside them.

Before Explain: the clip and the model's prediction. After: the maps on the model's window (the waveform
above each, the clip's own audio shaded), the players with the model's answer on each, a box drawn on the
saliency map to hear only that part, a playhead while audio plays; below: per-band importance, the
prediction, the method's own charts, pinning and exports.
"""

from __future__ import annotations

from functools import partial as deferred

import numpy as np
import streamlit as st

from earmark.errors import EarmarkError
from dashboard import figures, live, state, views
from dashboard import services as sv
from dashboard.common import current, model_card
from dashboard.contrast import rather_than
from dashboard.playhead import playhead
from dashboard.state import MAX_SLOTS

st.title("Earmark — where does the model listen?")

cur = current()
if cur is None:
    st.stop()

clip, ready, card, settings = cur["clip"], cur["ready"], cur["card"], cur["settings"]
labels = card.labels
spec = sv.explainer_specs()[settings.explainer]
tclass = sv.transform_classes()[settings.transform]
try:
    probs = sv.predict(settings.model, ready.hash, ready.wave)
except EarmarkError as exc:
    st.error(str(exc))
    st.stop()
pred = int(np.argmax(probs))

# ---- the sound and the button ----------------------------------------------------------------------
head, act = st.columns([3, 2], vertical_alignment="center")
start, end, clip_start = sv.clip_span(clip.duration, cur["window"], cur["offset"])
# which part of a longer clip the model hears is said once, in the sidebar beside the window's slider
where = (f" · the clip sits at {start:.2f}–{end:.2f} s of the model's {cur['window']:g} s window (shaded)"
         if end - start < cur["window"] - 1e-9 else "")
head.markdown(f"**{clip.name}** · {clip.duration:.2f} s at {clip.sample_rate} Hz{where} · "
              f"model hears **{labels[pred]}** ({probs[pred]:.0%})")
if cur.get("note"):
    head.caption(cur["note"])
if getattr(card, "multi_label", False):   # sigmoid outputs: each class on its own; pick one to explain
    top = np.argsort(-probs)[:5]
    head.caption("Top labels (each on its own, sigmoid): " + ", ".join(f"{labels[i]} {probs[i]:.0%}" for i in top)
                 + ". Choose the class to explain under *Target class*.")
b1, b2 = act.columns([1, 1], vertical_alignment="center")
clicked = b1.button("Explain", type="primary", key="explain", width="stretch")
with b2.popover("View", icon=":material/tune:", width="stretch"):
    view = views.view_controls(st, spec, window=cur["window"])
target_txt = ("the predicted class" if settings.target is None else f"class {labels[settings.target]}") + rather_than(
    labels, settings.contrast)
st.caption(f"**{spec.title}** in the **{tclass.title}** domain, explaining {target_txt} (seed {settings.seed}).")

job = None
if clicked:  # a job on the server's worker pool: the page stays live while it runs
    try:
        job = sv.submit_explanation(settings, ready.wave)
    except EarmarkError as exc:
        st.error(str(exc))
        st.stop()
exp = sv.explanation(settings)          # computed already (by anyone), this session's job is done or stopped
if exp is None and job is None:
    job = sv.explanation_job(settings)   # still running: a widget change or another page did not stop it
# the job on screen: the session's other explanation jobs yield to it (and end after a grace unless pinned)
sv.show_jobs(job if job is not None and not job.finished else None)
if exp is None and job is None:
    c_wave, c_pred = st.columns([3, 2])
    window = None
    if clip.duration > cur["window"]:
        window = (clip_start, clip_start + cur["window"])
    c_wave.plotly_chart(figures.waveform(clip.wave, clip.sample_rate, window=window), key="fig_wave",
                        config=figures.CONFIG)
    c_wave.audio(sv.wav_bytes(clip.wave, clip.sample_rate), format="audio/wav")
    c_pred.plotly_chart(figures.probabilities(probs, labels, target=settings.target,
                                              title=f"Prediction: {labels[pred]} ({probs[pred]:.0%})"),
                        key="fig_probs", config=figures.CONFIG)
    st.info("Press **Explain** to compute the map. Results are kept: returning to earlier settings shows them at once.")
    with st.expander(f"Model card — {card.title}"):
        model_card(card)
    st.stop()

# ---- one screen: saliency | uncertainty | players ------------------------------------------------------
saliency_title = f"Saliency · {settings.explainer}"

def _continue_button(where) -> None:
    """Continue a stopped job from its tape (the same map as an uninterrupted run at this seed)."""
    if where.button("Continue", key="continue", icon=":material/play_circle:", type="primary"):
        try:
            sv.submit_explanation(settings, ready.wave)
        except EarmarkError as exc:
            st.error(str(exc))
            st.stop()
        st.rerun()


if exp is None:  # still computing: the live fragment polls the job and draws each new estimate
    if job.finished:       # cancelled or failed: say so; Explain starts over (a stopped one: Continue)
        live.ended_message(job)
        if job.status == "stopped":
            _continue_button(st)
        st.stop()
    live.watch(job, key="explain", draw=lambda e: views.draw_partial(cur, e, view, title=saliency_title),
               wait=1.0 if clicked else 0.0, stoppable=True)
    st.stop()

if partial := views.partial_text(exp):   # a stopped run's last estimate: labelled, and Continue finishes it
    saliency_title += f" (partial, {exp.meta.get('budget_used') or 0:,} of {exp.meta.get('budget_total') or 0:,})"
    l1, l2 = st.columns([5, 1], vertical_alignment="center")
    l1.info(partial, icon=":material/pause_circle:")
    _continue_button(l2)

c_sal, c_unc, c_play = st.columns([4, 4, 3])
sal_box = c_sal.container(key="map_saliency")
unc_box = c_unc.container(key="map_uncertainty")
play_box = c_play.container(key="players")
timing_line = st.empty()
try:
    grid, scales = views.grid_and_scales(cur, exp, view)
except EarmarkError as exc:
    st.error(str(exc))
    st.stop()

box_event, yrefs = st.session_state.get("fig_saliency"), figures.map_yrefs(view.layout, wave=True)
region = views.region_from_event(box_event, grid, view.log_freq, yrefs)
if views.box_off_map(box_event, yrefs):
    play_box.info(views.OFF_MAP_BOX)
fig_sal, fig_unc = views.map_figures(cur, grid, scales, view, title=saliency_title, region=region)
sal_box.plotly_chart(fig_sal, key="fig_saliency", config=figures.CONFIG, on_select="rerun", selection_mode="box")
unc_box.plotly_chart(fig_unc, key="fig_uncertainty", config=figures.CONFIG)
listened = views.players(cur, exp, view, play_box, region=region)
view = views.current_view()
playhead()

meta = exp.meta
cost = (f"Explained class **{labels[exp.target]}** · {meta.get('seconds', 0):.2f} s on {meta.get('device', '?')} · "
        f"{meta.get('forward_passes', 0)} forward / {meta.get('backward_passes', 0)} backward passes")
if used := views.budget_text(exp, spec):
    cost += f" · {used}"
for warning in exp.meta.get("warnings", []):   # guards: an all-zero map, a class-insensitive method
    st.warning(warning)
if (sens := exp.meta.get("class_sensitivity")) and not sens["insensitive"]:
    st.caption(f"Class sensitivity: this map correlates at {sens['correlation']:.3f} with the same run's map for "
               f"**{labels[sens['contrast_class']]}** (above 0.99 would mean it ignores the class asked).")
if (check := exp.completeness()) is not None:  # IG: does the map add up to f(x) − f(baseline)?
    (st.warning if check["warning"] else st.caption)(check["warning"] or (
        f"IG completeness: the map adds up to f(x) − f(baseline) = {check['output_change']:+.3f} within "
        f"{check['relative_gap']:.1%} (gap {check['gap']:+.3f} logits)."))
job = job or sv.explanation_job(settings)
if job is not None and job.status == "done" and job.started is None:   # answered at once by the result cache
    cost += " · from cache (computed earlier with these settings; the seconds are that run's)."
elif job is not None and job.status == "done" and job.ended is not None:
    total = job.ended - job.created
    first = (job.first_at - job.created) if job.first_at is not None else total
    st.session_state.last_seconds = first
    waited = (job.started or job.created) - job.created
    cost += (f" · Explain → first map in {first:.2f} s (server side)"
             + (f"; with its uncertainty in {total:.2f} s" if job.first_at is not None else "")
             + (f"; {waited:.1f} s of it in the queue." if waited >= 0.05 else "."))
timing_line.caption(cost)
views.what_panel(views.explain_text(exp, scales, view, spec=spec), present=view.present)
st.caption(f"**What the uncertainty means here:** {exp.uncertainty_meaning}")

# ---- below the first screen ------------------------------------------------------------------------
cb, cp = st.columns([3, 2])
title = "Importance per wavelet level" if grid.row_labels else "Importance per frequency band"
cb.plotly_chart(figures.band_importance(grid, title=title, log_freq=view.log_freq), key="fig_bands",
                config=figures.CONFIG)
cp.plotly_chart(figures.probabilities(probs, labels, target=exp.target,
                                      title=f"Prediction: {labels[pred]} ({probs[pred]:.0%})"),
                key="fig_probs", config=figures.CONFIG)
views.extras_charts(exp, spec, grid)

with st.expander(f"The whole clip and the model — {card.title}"):
    window = (clip_start, clip_start + cur["window"]) if clip.duration > cur["window"] else None
    st.plotly_chart(figures.waveform(clip.wave, clip.sample_rate, window=window), key="fig_wave",
                    config=figures.CONFIG)
    st.audio(sv.wav_bytes(clip.wave, clip.sample_rate), format="audio/wav")
    model_card(card)

# ---- pin -------------------------------------------------------------------------------------------
p1, p2 = st.columns([1, 4])
n_slots = len(st.session_state.slots)
if p1.button("Pin to compare", icon=":material/push_pin:", key="pin", disabled=n_slots >= MAX_SLOTS, width="stretch"):
    whole = sv.display_of(settings, ready.wave, exp)       # Compare shows the whole map, whatever the zoom
    slot = dict(settings=settings, display=whole, probs=probs, labels=labels, target=exp.target,
                title=f"{clip.name} · {card.name} · {spec.title} · {tclass.title}"
                      + (f" · partial ({exp.meta.get('budget_used') or 0:,} {exp.meta.get('budget_unit') or ''})"
                         if exp.meta.get("stopped") else ""),
                sample_rate=card.sample_rate, listened=listened, k=view.k, match=view.match, wave=ready.wave,
                exp=exp)
    st.session_state.slots = st.session_state.slots + [slot]
    n_slots += 1
    st.toast(f"Pinned to slot {n_slots}.")
p2.caption(f"{n_slots} of {MAX_SLOTS} compare slots used. Open **Compare** to see them side by side."
           if n_slots < MAX_SLOTS else "All compare slots are full: remove one on the Compare page.")

# ---- export ----------------------------------------------------------------------------------------
with st.expander("Export: figure, maps, audio, command", expanded=False):
    stem = (f"earmark_{clip.name}_{card.name}_{settings.transform}_{settings.explainer}_s{settings.seed}"
            + (f"_partial{exp.meta.get('budget_used') or 0}" if exp.meta.get("stopped") else ""))
    clip_arg = clip.name if state.get("source") == "Example" else f"{clip.name}.wav"
    e1, e2, e3 = st.columns(3)
    # rendered when clicked, not on every rerun: a 10 s map's PNG takes seconds, its npz half a second
    e1.download_button("PNG figure (power, saliency, uncertainty)",
                       deferred(sv.png, settings, ready.wave, exp, view.log_freq, view.reference, view.clip,
                               view.dim_silent, view.palette, view.contrast,
                               partial=exp.meta.get("budget_used") if exp.meta.get("stopped") else None),
                       file_name=f"{stem}.png", mime="image/png", key="dl_png")
    e2.download_button("Maps and axes (NPZ)", deferred(sv.npz_bytes, settings, exp, len(ready.wave)),
                       file_name=f"{stem}.npz", mime="application/octet-stream", key="dl_npz")
    e3.download_button("Summary with provenance (JSON)", sv.json_bytes(settings, exp, clip_arg, cur["offset"]),
                       file_name=f"{stem}.json", mime="application/json", key="dl_json")
    if listened:
        a1, a2, a3 = st.columns(3)
        for col, kind in zip((a1, a2, a3), ("keep", "remove", "soft")):
            col.download_button(f"WAV: {kind} (k = {view.k} %)", sv.wav_bytes(listened[kind][0], card.sample_rate),
                                file_name=f"{stem}_{kind}{view.k}.wav", mime="audio/wav", key=f"dl_wav_{kind}")
    st.caption("The PNG uses the colours on screen (reference, clipping, silent cells). The camera icon on each "
               "figure saves it as shown. Reproduce this result with:")
    st.code(sv.cli_command(settings, clip_arg, cur["offset"]), language="bash")
