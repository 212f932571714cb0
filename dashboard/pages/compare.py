"""Compare: two to four pinned results side by side, on the same axes and colour scale."""

from __future__ import annotations

import streamlit as st

from earmark.errors import EarmarkError

from dashboard import figures, live, state, views
from dashboard import services as sv
from dashboard.common import player, prediction_label

st.title("Compare pinned results")
slots = st.session_state.slots
if not slots:
    st.info("Nothing pinned yet. On **Explore**, press **Pin to compare** after an explanation.")
    st.stop()

c1, c2, c3 = st.columns([2, 2, 3])
with c1.popover("View", icon=":material/tune:"):
    view = views.view_controls(st, None)
show = c2.segmented_control("Map", ["Saliency", "Uncertainty"], key=state.bind("cmp_what")) or "Saliency"
if c3.button("Clear all slots", key="clear_slots"):
    st.session_state.slots = []
    st.rerun()
st.caption("Each map is drawn by the same rules as on Explore (signed maps around 0, FreqRISE and RELAX around "
           "their mean unless you choose otherwise) and divided by its own colour limit, so all slots share one "
           "colour scale (−1…1 or 0…1) and the same time and frequency axes.")
views.what_panel("Each column is one pinned result. Colours mean the same in every column: the strongest cells "
                 "of each map are full colour, so compare *where* the maps point, not their absolute values. "
                 "Under each map: the keep / remove players for that result and its faithfulness scores.",
                 present=view.present)
if len(slots) == 1:
    st.caption("Pin another result to compare.")

STEPS = 20   # the deletion / insertion curves' steps (the Faithfulness page's default)


def _scores(i: int, s, slot):
    """The slot's faithfulness scores if computed (by anyone), else a Score button: slots score on request.

    Returns the slot's running job (watched below the columns, at a width its Cancel reads at) or ``None``.
    """
    try:
        spec = sv.job_spec(s, "faithfulness", steps=STEPS)
        res = sv.job_service().result(spec)
        job = sv.session_job(spec)
        if res is None and job is not None and job.status == "done":
            res = job.result
        if res is None and (job is None or job.finished):
            if job is not None:
                live.ended_message(job)
            if st.button("Score faithfulness", key=f"score_slot_{i}", icon=":material/play_arrow:",
                         help="Deletion / insertion curves of this map (a job on the server)."):
                job = sv.faithfulness_job(s, slot["wave"], slot["exp"], steps=STEPS)
                res = sv.job_result(job, wait=2.0)
    except EarmarkError as exc:
        st.caption(f"Scores unavailable: {exc}")
        return None
    if res is None:
        return job
    scores = res["scores"]
    st.dataframe({"score": list(scores), "value": [round(v, 3) for v in scores.values()]},
                 hide_index=True, width="stretch")
    return None


cols = st.columns(len(slots))
remove = None
scoring = []
for i, (col, slot) in enumerate(zip(cols, slots)):
    s: sv.Settings = slot["settings"]
    with col:
        st.markdown(f"**Slot {i + 1}** — {slot['title']}")
        st.caption(f"seed {s.seed} · target {slot['labels'][slot['target']]} · prediction "
                   f"{prediction_label(slot['probs'], slot['labels'])}")
        scales = sv.colour_scales(s, slot["display"], slot["exp"], reference=view.reference, clip=view.clip,
                                   contrast=view.contrast)
        st.plotly_chart(figures.saliency_map(slot["display"], scales[show.lower()], what=show.lower(),
                                             log_freq=view.log_freq, layout=view.layout, normalise=True,
                                             dim_silent=view.dim_silent, height=360),
                        key=f"cmp_fig_{i}", config=figures.CONFIG)
        if slot.get("listened"):
            for kind, label in (("keep", f"Keep top {slot['k']} %"), ("remove", f"Remove top {slot['k']} %")):
                w, p = slot["listened"][kind]
                player(label, w, slot["sample_rate"], p, slot["labels"])
        scoring.append(_scores(i, s, slot))
        if st.button("Remove", key=f"remove_slot_{i}"):
            remove = i
for i, job in enumerate(scoring):   # running scores, full width: the status and Cancel stay readable
    if job is not None:
        live.watch(job, key=f"cmp_faith_{i}", label=f"Slot {i + 1} · scoring")
if remove is not None:
    st.session_state.slots = [s for j, s in enumerate(slots) if j != remove]
    st.rerun()
