"""Segments: a score per word, call or span with its uncertainty, and each one heard alone or left out.

The segments come from the clip itself (energy-based detection), a fixed grid, or a file (Praat TextGrid,
Raven selection table, Audacity labels, CSV such as a scan's events). A strip above the waveform shows each
segment coloured by its score with ± its standard error; click a segment to hear it alone and the recording
without it, each with the model's answer; the table lists the segments by score.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from earmark.errors import EarmarkError
from dashboard import segment_services as ss
from dashboard import services as sv
from dashboard.common import current
from dashboard.segment_figures import segment_strip

st.title("Segments — which word made the model say it?")

cur = current()
if cur is None:
    st.stop()
ready, card, settings = cur["ready"], cur["card"], cur["settings"]
labels = card.labels
wave = np.asarray(ready.wave, dtype=np.float32)
rate = card.sample_rate

c1, c2, c3 = st.columns(3)
kind = c1.radio("Segments from", ["auto", "grid", "file"], horizontal=True, key="seg_source",
                format_func={"auto": "the sound (energy)", "grid": "a grid", "file": "a file"}.get)
value, file_name, data, tier = None, None, None, None
if kind == "auto":
    value = c1.slider("Active above (dB below the loudest part)", -60, -5, -30, key="seg_threshold")
elif kind == "grid":
    value = c1.select_slider("Width (s)", [0.1, 0.2, 0.25, 0.5, 1.0], 0.25, key="seg_width")
else:
    up = c1.file_uploader("TextGrid, Raven table, Audacity labels or CSV", key="seg_file",
                          type=["TextGrid", "txt", "csv", "tsv"])
    tier = c1.text_input("Tier or label column (optional)", key="seg_tier") or None
    if up is None:
        st.info("Upload a segment file, or take the segments from the sound or a grid.")
        st.stop()
    file_name, data = up.name, up.getvalue()
    value = hashlib.sha256(data).hexdigest()[:16]
specs = ss.method_specs()
method = c2.selectbox("Method", list(specs), key="seg_method", format_func=lambda n: specs[n].title)
params = {}
declared = {p.name: p for p in specs[method].params}
if "replacement" in declared:
    params["replacement"] = c2.selectbox("A removed segment becomes", declared["replacement"].choices,
                                         key="seg_replacement")
if "bands" in declared and c2.toggle("Split each segment into low and high halves", key="seg_bands"):
    params["bands"] = 2
try:
    probs = sv.predict(settings.model, ready.hash, ready.wave)
except EarmarkError as exc:
    st.error(str(exc))
    st.stop()
default_target = settings.target if settings.target is not None else int(np.argmax(probs))
target = c3.selectbox("Class to explain", list(range(len(labels))), key="seg_target", index=default_target,
                      format_func=lambda i: f"{labels[i]} ({probs[i]:.0%})")
seed = int(settings.seed)

try:
    segs = ss.segments_from(kind, value, ready.hash, wave, rate, file_name, data, tier)
    with st.spinner(f"Scoring {len(segs)} segments"):
        expl, sounds, curves = ss.explain(settings.model, ready.hash, wave, (kind, value, tier), segs, method,
                                          tuple(sorted(params.items())), int(target), seed)
except EarmarkError as exc:
    st.warning(str(exc))
    st.stop()

rows = expl.rows()
chosen = st.session_state.get("seg_selected")
if chosen is None or chosen >= len(rows):
    chosen = expl.order()[0]
event = st.plotly_chart(segment_strip(wave, rate, rows, selected=chosen,
                                      title=f"{specs[method].title}: class {labels[expl.target]}"),
                        key="seg_strip", on_select="rerun", selection_mode="points")
points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
    getattr(getattr(event, "selection", None), "points", []) or []
if points and points[0].get("customdata") is not None:
    chosen = int(points[0]["customdata"] if not isinstance(points[0]["customdata"], list)
                 else points[0]["customdata"][0])
    st.session_state["seg_selected"] = chosen
st.caption(f"Uncertainty: {expl.meta['uncertainty']} Σ scores = {float(expl.scores.sum()):+.4f}"
           + (f"; f(all) − f(none) = {float(expl.extras['value_all'] - expl.extras['value_none']):+.4f}"
              if "value_all" in expl.extras else ""))

left, right = st.columns([3, 2])
with left:
    order = expl.order()
    st.dataframe({"label": [rows[i]["label"] for i in order],
                  "start (s)": [round(rows[i]["start"], 3) for i in order],
                  "end (s)": [round(rows[i]["end"], 3) for i in order],
                  "score": [round(rows[i]["score"], 5) for i in order],
                  "± stderr": [round(rows[i]["stderr"], 5) for i in order]}, hide_index=True, key="seg_table")
    st.download_button("segments.csv", ss.csv_text(expl), file_name="segments.csv", mime="text/csv",
                       key="seg_download")
    st.dataframe(curves.rows(), hide_index=True, key="seg_curves")
    st.caption("Deletion / insertion by whole segments in score order, against random and energy orders.")
with right:
    chosen = st.selectbox("Hear segment", list(range(len(rows))), index=chosen, key="seg_pick",
                          format_func=lambda i: f"{rows[i]['label']} ({rows[i]['start']:.2f}–{rows[i]['end']:.2f} s)")
    by = {(s.kind, s.index): s for s in sounds}
    for key in (("alone", chosen), ("without", chosen), ("top", None), ("original", None)):
        s = by.get(key)
        if s is None:
            continue
        st.markdown(f"**{s.label}** → model: {labels[expl.target]} score {s.score:.3f}, hears **{labels[s.predicted]}**")
        st.audio(sv.wav_bytes(s.wave.cpu().numpy(), rate), format="audio/wav")
