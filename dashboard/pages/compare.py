"""Compare: two to four pinned results side by side, on the same axes and colour scale."""

from __future__ import annotations

import numpy as np
import streamlit as st

from earmark.errors import EarmarkError

from dashboard import figures, live
from dashboard import services as sv
from dashboard.common import player, prediction_label

st.title("Compare pinned results")
slots = st.session_state.slots
if not slots:
    st.info("Nothing pinned yet. On **Explore**, press **Pin to compare** after an explanation.")
    st.stop()

c1, c2, c3 = st.columns([2, 2, 3])
log_freq = c1.toggle("Log frequency axis", key="w_log_freq")
clip = c1.toggle("Clip colours at the 99.5th percentile", key="w_clip_colours")
show = c2.segmented_control("Map", ["Saliency", "Uncertainty"], default="Saliency", key="w_cmp_what") or "Saliency"
if c3.button("Clear all slots", key="clear_slots"):
    st.session_state.slots = []
    st.rerun()
st.caption("Each map is divided by its own largest magnitude (or its 99.5th percentile when clipping), so all "
           "slots share one colour scale (−1…1 or 0…1) and the same time and frequency axes.")
if len(slots) == 1:
    st.caption("Pin another result to compare.")

cols = st.columns(len(slots))
remove = None
for i, (col, slot) in enumerate(zip(cols, slots)):
    s: sv.Settings = slot["settings"]
    with col:
        st.markdown(f"**Slot {i + 1}** — {slot['title']}")
        st.caption(f"seed {s.seed} · target {slot['labels'][slot['target']]} · prediction "
                   f"{prediction_label(slot['probs'], slot['labels'])}")
        st.plotly_chart(figures.saliency_map(slot["display"], what=show.lower(), log_freq=log_freq,
                                             normalise=True, clip_percentile=99.5 if clip else None,
                                             height=320),
                        key=f"cmp_fig_{i}", config=figures.CONFIG)
        if slot.get("listened"):
            for kind, label in (("keep", f"Keep top {slot['k']} %"), ("remove", f"Remove top {slot['k']} %")):
                w, p = slot["listened"][kind]
                player(label, w, slot["sample_rate"], p, slot["labels"])
        try:
            res = live.result_or_watch(sv.faithfulness_job(s, slot["wave"], slot["exp"]), key=f"cmp_faith_{i}",
                                       wait=2.0, label="Scoring")
            if res is not None:
                scores = res["scores"]
                st.dataframe({"score": list(scores), "value": [round(v, 3) for v in scores.values()]},
                             hide_index=True, width="stretch")
        except EarmarkError as exc:
            st.caption(f"Scores unavailable: {exc}")
        if st.button("Remove", key=f"remove_slot_{i}"):
            remove = i
if remove is not None:
    st.session_state.slots = [s for j, s in enumerate(slots) if j != remove]
    st.rerun()
