"""Explore: the clip, the prediction, the saliency and uncertainty maps, listening, pinning and export."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import figures, live
from dashboard import services as sv
from dashboard.common import current, model_card, player
from dashboard.state import MAX_SLOTS

st.title("Earmark — where does the model listen?")

cur = current()
if cur is None:
    st.stop()

clip, ready, card, settings = cur["clip"], cur["ready"], cur["card"], cur["settings"]
labels = card.labels

# ---- the sound ------------------------------------------------------------------------------------
st.subheader(f"Sound: {clip.name}")
st.caption(f"{clip.duration:.2f} s at {clip.sample_rate} Hz · the model hears {cur['window']:g} s at "
           f"{card.sample_rate} Hz (the maps below show that window)")
offset = cur["offset"]
window = None
if offset is not None:
    window = (offset, offset + cur["window"])
elif clip.duration > cur["window"]:
    start = (clip.duration - cur["window"]) / 2
    window = (start, start + cur["window"])
c_wave, c_pred = st.columns([3, 2])
with c_wave:
    st.plotly_chart(figures.waveform(clip.wave, clip.sample_rate, window=window), key="fig_wave",
                    config=figures.CONFIG)
    st.audio(sv.wav_bytes(clip.wave, clip.sample_rate), format="audio/wav")
try:
    probs = sv.predict(settings.model, ready.hash, ready.wave)
except sv.EarmarkError as exc:
    st.error(str(exc))
    st.stop()
with c_pred:
    pred = int(np.argmax(probs))
    st.plotly_chart(figures.probabilities(probs, labels, target=settings.target,
                                          title=f"Prediction: {labels[pred]} ({probs[pred]:.0%})"),
                    key="fig_probs", config=figures.CONFIG)
with st.expander(f"Model card — {card.title}"):
    model_card(card)

# ---- explain -------------------------------------------------------------------------------------
st.divider()
spec = sv.explainer_specs()[settings.explainer]
tclass = sv.transform_classes()[settings.transform]
b1, b2 = st.columns([1, 4])
clicked = b1.button("Explain", type="primary", key="explain", width="stretch")
target_txt = "the predicted class" if settings.target is None else f"class {labels[settings.target]}"
b2.markdown(f"**{spec.title}** in the **{tclass.title}** domain, explaining {target_txt} (seed {settings.seed}).")

job = None
if clicked:  # a job on the server's worker pool: the page stays live while it runs
    try:
        job = sv.submit_explanation(settings, ready.wave)
    except sv.EarmarkError as exc:
        st.error(str(exc))
        st.stop()
exp = sv.explanation(settings)          # computed already (by anyone), or this session's job is done
if exp is None and job is None:
    job = sv.explanation_job(settings)   # still running: a widget change or another page did not stop it
if exp is None and job is None:
    st.info("Press **Explain** to compute the map. Results are kept: returning to earlier settings shows them at once.")
    st.stop()

v1, v2, v3 = st.columns([2, 2, 3])
log_freq = v1.toggle("Log frequency axis", key="w_log_freq")
clip_pct = 99.5 if v1.toggle("Clip colours at the 99.5th percentile", key="w_clip_colours",
                             help="So that a few very large cells do not wash out the rest of the map.") else None
layout = v2.segmented_control("Layout", ["Overlay", "Side by side"], key="w_layout") or "Overlay"
cost_line = v3.empty()
saliency_title = f"Saliency — {spec.title} ({tclass.title})"


def draw_saliency(e, key: str = "fig_saliency"):
    """The saliency heatmap of a final or partial explanation; returns its display grid."""
    d = sv.display_of(settings, ready.wave, e)
    title = saliency_title
    if e.meta.get("partial"):
        done, total, conv = e.meta.get("done"), e.meta.get("total"), e.meta.get("convergence")
        title += (f" — estimate after {done:,} of {total:,} {e.meta.get('unit') or ''}" if done and total
                  else " — first look")
        title += f", convergence {conv:.2f}" if conv is not None else ""
    st.plotly_chart(figures.saliency_map(d, what="saliency", log_freq=log_freq, layout=layout,
                                         clip_percentile=clip_pct, wave=ready.wave, title=title),
                    key=key, config=figures.CONFIG)
    return d


if exp is None:
    if job.finished:       # cancelled or failed: say so; Explain starts over
        live.ended_message(job)
        st.stop()
    live.watch(job, key="explain", draw=lambda e: draw_saliency(e, key="fig_saliency_partial"),
               wait=1.0 if clicked else 0.0)
    st.stop()

meta = exp.meta
cost_line.caption(f"Explained class **{labels[exp.target]}** · computed in {meta.get('seconds', 0):.2f} s on "
                  f"{meta.get('device', '?')} · {meta.get('forward_passes', 0)} forward / "
                  f"{meta.get('backward_passes', 0)} backward passes")
d = draw_saliency(exp)
job = job or sv.explanation_job(settings)
if job is not None and job.status == "done" and job.ended is not None:
    total = job.ended - job.created
    first = (job.first_at - job.created) if job.first_at is not None else total
    st.session_state.last_seconds = first
    waited = (job.started or job.created) - job.created
    timing_line = (f"Explain → first map in {first:.2f} s (server side)"
                   + (f"; with its uncertainty in {total:.2f} s" if job.first_at is not None else "")
                   + (f"; {waited:.1f} s of it in the queue." if waited >= 0.05 else "."))
    st.caption(timing_line)

cu, cb = st.columns([3, 2])
with cu:
    st.plotly_chart(figures.saliency_map(d, what="uncertainty", log_freq=log_freq, layout=layout,
                                         clip_percentile=clip_pct,
                                         title="Uncertainty", height=300),
                    key="fig_uncertainty", config=figures.CONFIG)
    st.caption(f"**What the uncertainty means here:** {exp.uncertainty_meaning}")
with cb:
    title = "Importance per wavelet level" if d.row_labels else "Importance per frequency band"
    st.plotly_chart(figures.band_importance(d, title=title, log_freq=log_freq), key="fig_bands",
                    config=figures.CONFIG)

extras = exp.numpy()
curves = {k: v for k, v in extras.items() if k in ("loss_curve", "per_scale", "tradeoff", "sparsity_score")}
if curves:
    cols = st.columns(len(curves))
    for col, (k, v) in zip(cols, curves.items()):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim == 2 and v.shape[0] == 2:  # (2, K): x and y
            fig = figures.line(v[1], x=v[0], xlabel="sparsity", ylabel="score", title=k.replace("_", " "))
        elif v.ndim == 2:
            fig = figures.line(v.mean(0), xlabel="step", ylabel=k, title=f"{k.replace('_', ' ')} (mean of {v.shape[0]})")
        else:
            fig = figures.line(v.reshape(-1), xlabel="step" if "loss" in k else "index", ylabel=k,
                               title=k.replace("_", " "))
        col.plotly_chart(fig, key=f"fig_extra_{k}", config=figures.CONFIG)

# ---- listen ----------------------------------------------------------------------------------------
st.divider()
st.subheader("Listen")
l1, l2 = st.columns([3, 2])
k = l1.slider("k: share of the map's cells kept / removed (%)", 1, 90, key="w_k")
match = l2.toggle("Match loudness to the original", key="w_match",
                  help="So that a quieter version is not mistaken for a less important one.")
listened = None
try:
    listened = live.result_or_watch(sv.listen_job(settings, ready.wave, exp, k / 100, match), key="listen",
                                    wait=5.0, label="Rendering the masked audio")
except sv.EarmarkError as exc:
    st.warning(str(exc))
if listened:
    names = {"original": "Original (model input)", "keep": f"Keep top {k} %", "remove": f"Remove top {k} %",
             "soft": "Soft mask (saliency-weighted)"}
    cols = st.columns(4)
    for col, kind in zip(cols, ("original", "keep", "remove", "soft")):
        if kind in listened:
            wave, p = listened[kind]
            player(names[kind], wave, card.sample_rate, p, labels, container=col)

# ---- pin -------------------------------------------------------------------------------------------
st.divider()
p1, p2 = st.columns([1, 4])
n_slots = len(st.session_state.slots)
if p1.button("Pin to compare", icon=":material/push_pin:", key="pin", disabled=n_slots >= MAX_SLOTS, width="stretch"):
    slot = dict(settings=settings, display=d, probs=probs, labels=labels, target=exp.target,
                title=f"{clip.name} · {settings.model} · {spec.title} · {tclass.title}",
                sample_rate=card.sample_rate, listened=listened, k=k, wave=ready.wave, exp=exp)
    st.session_state.slots = st.session_state.slots + [slot]
    n_slots += 1
    st.toast(f"Pinned to slot {n_slots}.")
p2.caption(f"{n_slots} of {MAX_SLOTS} compare slots used. Open **Compare** to see them side by side."
           if n_slots < MAX_SLOTS else "All compare slots are full: remove one on the Compare page.")

# ---- export ----------------------------------------------------------------------------------------
with st.expander("Export: figure, maps, audio, command", expanded=False):
    stem = f"earmark_{clip.name}_{settings.model}_{settings.transform}_{settings.explainer}_s{settings.seed}"
    e1, e2, e3 = st.columns(3)
    try:
        e1.download_button("PNG figure (power, saliency, uncertainty)", sv.png(settings, ready.wave, exp, log_freq),
                           file_name=f"{stem}.png", mime="image/png", key="dl_png")
    except sv.EarmarkError as exc:
        e1.warning(str(exc))
    e2.download_button("Maps (NPZ)", sv.npz_bytes(exp), file_name=f"{stem}.npz",
                       mime="application/octet-stream", key="dl_npz")
    e3.download_button("Summary (JSON)", sv.json_bytes(exp), file_name=f"{stem}.json",
                       mime="application/json", key="dl_json")
    if listened:
        a1, a2, a3 = st.columns(3)
        for col, kind in zip((a1, a2, a3), ("keep", "remove", "soft")):
            col.download_button(f"WAV: {kind} (k = {k} %)", sv.wav_bytes(listened[kind][0], card.sample_rate),
                                file_name=f"{stem}_{kind}{k}.wav", mime="audio/wav", key=f"dl_wav_{kind}")
    st.caption("The camera icon on each figure saves it as PNG in the browser. Reproduce this result with:")
    clip_arg = clip.name if st.session_state.w_source == "Example" else f"{clip.name}.wav"
    st.code(sv.cli_command(settings, clip_arg, cur["offset"]), language="bash")
