"""Class profiles: what the model relies on for each class across a data set, and the shortcut flags."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from earmark.explainers import EXPLAINERS
from earmark.profiles.job import ProfileJob

st.title("Class profiles")
st.markdown(
    "One map explains one clip; a **class profile** reads a whole data set: for every class, how much of the "
    "model's relevance falls in each frequency band and time bin, beside the share of the **energy** there. A band "
    "used far beyond its energy is flagged, then **measured**: the band is removed from the class's clips and the "
    "clips are re-scored. A flag whose removal changes nothing is not confirmed.")

SOURCES = {"synth-freq": "Synthetic frequency task (4 key tones, 6 classes)",
           "synth-tf": "Synthetic time–frequency task (tone bursts, 6 classes)"}
if os.environ.get("EARMARK_DATA"):
    SOURCES["fsdd"] = "Spoken digits: FSDD test split (this server's EARMARK_DATA)"
DIGIT_MODELS = ("melcnn-digits-cue7", "melcnn-digits", "audionet-digits")

c1, c2, c3 = st.columns(3)
source = c1.selectbox("Data set", list(SOURCES), format_func=SOURCES.get, key="prof_source")
model_name = c1.selectbox("Model", DIGIT_MODELS if source == "fsdd" else (source,), key=f"prof_model_{source}")
cue = None
if model_name == "melcnn-digits-cue7":
    from earmark.models.planted import CUE

    if c1.toggle("The 7s carry the 3 kHz cue, as in training", value=True, key="prof_cue",
                 help="A profile can only see what is in the clips: on clean clips the cue gets no relevance."):
        cue = CUE
transform = c2.selectbox("Domain", ["stft", "mel", "fourier", "dwt"], key="prof_transform")
usable = [n for n in EXPLAINERS.names() if EXPLAINERS.get(n).supports(transform)]
explainers = c2.multiselect("Explainers", usable, default=[n for n in ("ig", "energy") if n in usable],
                            key=f"prof_explainers_{transform}",
                            help="'energy' asks no model: it is the control that must not raise a flag.")
per_class = c3.slider("Clips per class", 1, 20, 3, key="prof_n")
fast = c3.toggle("Reduced budgets (IG 16 steps from zero, FreqRISE 500 masks)", value=True, key="prof_fast")

job: ProfileJob | None = st.session_state.get("prof_job")
start = st.button("Profile", type="primary", icon=":material/play_arrow:", key="prof_start",
                  disabled=not explainers or (job is not None and not job.finished))
if start:
    overrides = {"ig": {"n_steps": 16, "baselines": "zero"}, "freqrise": {"n_masks": 500}} if fast else {}
    data = ({"data": os.environ.get("EARMARK_DATA"), "split": "test"} if source == "fsdd" else {"task": source})
    data.update(n=per_class, per_class=True, seed=0, plant_cue=cue)
    out = Path(tempfile.mkdtemp(prefix="earmark-profile-"))
    job = ProfileJob(model_name, data, n_clips=per_class * (10 if source == "fsdd" else 6), explainer=explainers,
                     transform=transform, out=out, seed=0, figures=False, intervention_clips=20,
                     overrides={k: v for k, v in overrides.items() if k in explainers})
    st.session_state["prof_job"] = job
    st.session_state["prof_out"] = str(out)


def heatmap(classes: dict, band_names, *, key: str, title: str, flags=()) -> None:
    labels = list(classes)
    z = [[classes[l][key]["mean"][b] for l in labels] for b in range(len(band_names))]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=list(band_names), colorscale="RdBu" if key == "band" else "Magma",
                               reversescale=key == "band", zmid=0 if key == "band" else None,
                               colorbar={"title": "share"}))
    for f in flags:
        if f.get("band") is not None and f["class"] in labels:
            fig.add_shape(type="rect", x0=labels.index(f["class"]) - 0.5, x1=labels.index(f["class"]) + 0.5,
                          y0=f["band"] - 0.5, y1=f["band"] + 0.5, line={"color": "lime", "width": 3})
    fig.update_layout(title=title, height=120 + 22 * len(band_names), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title="class", yaxis_title="band")
    st.plotly_chart(fig, key=f"heat_{key}_{title}")


if job is not None and not job.finished:
    @st.fragment(run_every=1.0)
    def _live() -> None:
        if job.finished:
            st.rerun()
        left, right = st.columns([5, 1])
        left.progress(min(job.progress, 1.0), text=f"Explaining clips · {job.done} / {job.total} units")
        if right.button("Cancel", key="prof_cancel"):
            job.cancel()
        part = job.partial()
        if part is not None:
            st.caption(f"Partial profile over {part['rows']} clips (fills in as clips are explained).")
            heatmap(part["classes"], part["band_names"], key="band", title="relevance share so far")

    _live()
    st.stop()

if job is None:
    st.info("Choose a data set, a model, a domain and explainers, then press **Profile**.")
    st.stop()
if job.status != "done":
    st.warning(job.error or f"The profile was {job.status}.")
    st.stop()

result = job.result
out = Path(st.session_state["prof_out"])
st.caption(f"Data: {result.description}. Classes by the {result.by} label. "
           f"{sum(len(v) for v in result.clips.values())} clips, {result.grid.n_bands} bands × {result.grid.n_times} time bins.")
shown = st.selectbox("Explainer", result.explainers, key="prof_shown")
h1, h2 = st.columns(2)
with h1:
    heatmap(result.classes[shown], result.grid.band_names, key="band", title=f"{shown}: relevance share",
            flags=[f for f in result.flags if f["explainer"] == shown])
with h2:
    heatmap(result.classes[shown], result.grid.band_names, key="band_energy", title="energy share")

st.subheader(f"Shortcut flags ({len(result.flags)})")
if result.flags:
    st.dataframe([{
        "class": f["class"], "explainer": f["explainer"], "kind": "+".join(f["kind"]),
        "band (Hz)": f"{f['band_hz'][0]:g}–{f['band_hz'][1]:g}",
        "time (s)": "all" if f["time_s"] is None else f"{f['time_s'][0]:g}–{f['time_s'][1]:g}",
        "relevance": round(f["relevance_share"], 3), "energy": round(f["energy_share"], 3),
        "p change when removed": None if not f.get("effect") else f["effect"]["score_change"],
        "accuracy": None if not f.get("effect") else f"{f['effect']['accuracy_before']:.2f}→{f['effect']['accuracy_after']:.2f}",
        "confirmed": bool(f["confirmed"]),
    } for f in result.flags], hide_index=True, key="prof_flags")
else:
    st.success("No band receives relevance far beyond its energy, and no class leans on silence or the clip's edges.")

label = st.selectbox("Class", list(result.clips), key="prof_class")
stats = result.classes[shown][label]
centres = [(float(a) + float(b)) / 2 for a, b in zip(result.grid.band_edges[:-1], result.grid.band_edges[1:])]
fig = go.Figure()
fig.add_trace(go.Scatter(x=centres + centres[::-1], y=stats["band"]["high"] + stats["band"]["low"][::-1],
                         fill="toself", line={"width": 0}, name="95 % interval", opacity=0.3))
fig.add_trace(go.Scatter(x=centres, y=stats["band"]["mean"], name=f"{shown} relevance", mode="lines+markers"))
fig.add_trace(go.Scatter(x=centres, y=stats["band_energy"]["mean"], name="energy", line={"dash": "dash"}))
fig.update_layout(title=f"class {label}: share per band", xaxis_title="Hz", yaxis_title="share", height=320)
st.plotly_chart(fig, key="prof_curve")

st.subheader(f"Listen to class {label}")
st.caption("Prototypes: the clips where the model's relevance is most concentrated; *keep* plays each through the "
           "class's mean band relevance, *remove* through one minus it.")
for path in result.settings.get("listening", {}).get(label, []):
    st.caption(Path(path).stem)
    st.audio((out / path).read_bytes(), format="audio/wav")
st.download_button("profile.json", json.dumps(result.to_dict(), indent=1), file_name="profile.json",
                   mime="application/json", key="prof_dl_json")
st.download_button("report.md", (out / "report.md").read_text(encoding="utf-8"), file_name="report.md",
                   mime="text/markdown", key="prof_dl_md")
