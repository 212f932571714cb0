"""Faithfulness of the current explanation: deletion / insertion curves and the scores built on them."""

from __future__ import annotations

import streamlit as st

from earmark.metrics.base import percent

from earmark.errors import EarmarkError
from dashboard import figures, live, state, views
from dashboard import services as sv
from dashboard.common import current, result

st.title("Faithfulness")
st.markdown(
    "Cells of the map are ranked by saliency. **Deletion** removes the top fraction (set to 0) and reads the "
    "target-class probability: a faithful map makes it fall fast (small area). **Insertion** keeps only the "
    "top fraction: it should rise fast (large area). *Faithfulness = insertion AUC − deletion AUC.*")

cur = current()
if cur is None:
    st.stop()
exp = result(cur)
if exp is None:
    if sv.explanation_job(cur["settings"]) is None or sv.explanation_job(cur["settings"]).finished:
        st.info("No explanation for the current settings yet: press **Explain** on the Explore page first.")
    st.stop()

views.what_panel("The green curve is how sure the model stays of the class when only the top-ranked part of the "
                 "map is kept (higher is better); the red one when that part is removed (lower is better). The "
                 "grey curves do the same with the loudest cells instead of the map: a useful map beats them.",
                 present=state.get("present"))
steps = st.select_slider("Points on each curve", [10, 20, 40, 80], key=state.bind("eval_steps"))
compare = exp.method != "energy" and st.toggle(
    "Compare with the energy reference", key=state.bind("eval_reference"),
    help="Rank the cells by the clip's own energy instead (no model): the bar a map must clear to show it "
         "found something about the model rather than 'the loud part matters'.")
try:  # two jobs on the worker pool; the page polls them while they run
    res_job = sv.faithfulness_job(cur["settings"], cur["ready"].wave, exp, steps)
    ref_job = sv.energy_reference_job(cur["settings"], cur["ready"].wave, exp.target, steps) if compare else None
    res = live.result_or_watch(res_job, key="faith", wait=2.0, label="Scoring insertion and deletion")
    ref = (live.result_or_watch(ref_job, key="faith_ref", wait=2.0, label="Scoring the energy reference")
           if ref_job is not None else None)
except EarmarkError as exc:
    st.warning(str(exc))
    st.stop()
if res is None or (ref_job is not None and ref is None):
    st.stop()

c1, c2 = st.columns([3, 2])
c1.plotly_chart(figures.faithfulness(res, reference=ref, title=f"{exp.method} in {exp.transform}: class "
                                                              f"{cur['card'].labels[exp.target]}"),
                key="fig_faith", config=figures.CONFIG)
with c2:
    table = {"score": list(res["scores"]), exp.method: [round(v, 4) for v in res["scores"].values()]}
    if ref is not None:
        table["energy reference"] = [round(ref["scores"][k], 4) for k in res["scores"]]
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(f"↑ higher is better, ↓ lower is better. I/D keep/remove the top {percent(sv.METRIC_OPTIONS.fraction)} "
               "by the map; RI/RD do the same "
               "for random rankings (the chance level to beat). The energy reference ranks cells by loudness "
               "alone; on speech padded with silence it is a much harder bar than chance.")
    st.download_button("Curves (CSV)", "fraction,deletion,insertion\n" + "\n".join(
        f"{f:.4f},{d:.6f},{i:.6f}" for f, d, i in zip(res["fractions"], res["deletion"], res["insertion"])),
        file_name="earmark_faithfulness.csv", mime="text/csv", key="dl_curves")
