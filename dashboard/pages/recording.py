"""Recording: scan a whole recording with a model, see where it hears each class, explain any moment in place.

Pick the generated phone-number example (FSDD test-split digits, made on demand from ``$EARMARK_DATA``), a
recording from the server's ``$EARMARK_RECORDINGS`` folder, or upload one. The scan runs in a background
thread (progress, Cancel); the overview shows the level and one probability track per class on one time
axis (drag the range slider to zoom and scroll; click a track to explain that moment); events can be
played, explained and exported (CSV, Raven, Audacity). The maths is in ``earmark.timeline`` and
``earmark.moment``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from earmark.errors import EarmarkError
from dashboard import services as sv

from earmark.timeline import ScanJob, format_events, read_span  # noqa: E402

st.title("Recording")
ss = st.session_state
for key, default in (("rec_job", None), ("rec_timeline", None), ("rec_source", None), ("rec_moment", None),
                     ("rec_explained", None)):
    ss.setdefault(key, default)
ss.setdefault("rec_scanned_with", None)
ss.setdefault("rec_stitched", None)

EXAMPLE = "Phone number (example)"


def _server_recordings() -> dict[str, str]:
    folder = os.environ.get("EARMARK_RECORDINGS")
    if not folder or not Path(folder).is_dir():
        return {}
    return {p.name: str(p) for p in sorted(Path(folder).iterdir())
            if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3")}


@st.cache_resource(show_spinner="Making the phone-number example from FSDD's test split…")
def _example() -> tuple[str, str]:
    from earmark.data.recording import cached_recording

    wav, words = cached_recording()
    return str(wav), str(words)


choices = ([EXAMPLE] if os.environ.get("EARMARK_DATA") else []) + list(_server_recordings()) + ["Upload"]
models = sv.model_names()
c1, c2, c3, c4 = st.columns([3, 3, 1.3, 2], vertical_alignment="bottom")
pick = c1.selectbox("Recording", choices, key="rec_pick")
model_name = c2.selectbox("Model", models, index=models.index("scan-digits") if "scan-digits" in models else 0,
                          key="rec_model")
hop = c3.number_input("Hop (s)", min_value=0.01, max_value=5.0, value=None, step=0.05, key=f"rec_hop_{model_name}",
                      placeholder="model's", help="seconds between windows; empty: the model card's choice "
                                                  "(scan-digits: 0.05 s), else a quarter window")
threshold = c4.slider("Event threshold", 0.05, 1.0, 0.5, 0.05, key="rec_threshold")

source, truth = None, None
if pick == EXAMPLE:
    try:
        source, truth = _example()
    except EarmarkError as exc:
        st.error(str(exc))
elif pick == "Upload":
    up = st.file_uploader("Audio file (WAV, FLAC, OGG, MP3)", type=["wav", "flac", "ogg", "mp3"], key="rec_upload")
    source = up.getvalue() if up is not None else None
else:
    source = _server_recordings()[pick]

try:
    model = sv.get_model(model_name)
except EarmarkError as exc:
    st.error(str(exc))
    st.stop()

b1, b2, _ = st.columns([1, 1, 6])
job: ScanJob | None = ss.rec_job
running = job is not None and not job.done
if b1.button("Scan", icon=":material/play_arrow:", disabled=source is None or running, key="rec_scan", type="primary"):
    ss.rec_job = job = ScanJob(model, source, hop=None if hop is None else float(hop))
    ss.rec_source, ss.rec_moment, ss.rec_explained, ss.rec_scanned_with = source, None, None, model_name
    ss.rec_stitched = None
    running = True
if b2.button("Cancel", icon=":material/stop:", disabled=not running, key="rec_cancel"):
    job.cancel()


@st.fragment(run_every=0.5)
def _watch() -> None:
    j: ScanJob | None = st.session_state.rec_job
    if j is None:
        return
    if not j.done:
        st.progress(min(1.0, j.progress), text=f"Scanning: {j.stage}")
        return
    if st.session_state.rec_timeline is not j.timeline:
        st.session_state.rec_timeline = j.timeline
        st.rerun()


if running:
    _watch()
if job is not None and job.done:
    if job.error:
        st.error(job.error)
    if ss.rec_timeline is not job.timeline:
        ss.rec_timeline = job.timeline
tl = ss.rec_timeline
if tl is None:
    st.info("Choose a recording and a model, then Scan. The model's window slides along the whole recording.")
    st.stop()
if tl.meta.get("stopped"):
    st.warning(f"Scan cancelled after {tl.duration:.1f} s of the recording; the windows so far are shown.")

model = sv.get_model(ss.rec_scanned_with or model_name)   # the model that made the timeline (explains it too)
events = tl.events(float(threshold), trim_db=(model.card.metrics or {}).get("scan_trim_db"))
# ---- overview: level and class tracks on one time axis -------------------------------------------------
shown = [i for i in np.argsort(-tl.probs.max(0))[:12]] if len(tl) else []
shown = sorted(shown)
zoom = st.slider("Time range (s)", 0.0, max(tl.duration, 0.1), (0.0, max(tl.duration, 0.1)),
                 key=f"rec_zoom_{tl.duration:.3f}",
                 help="long recordings are pooled for drawing (each column keeps its highest probability), "
                      "so zoom in for single windows")
centres, probs, levels = tl.display(*zoom)
fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.25, 0.75], vertical_spacing=0.03)
fig.add_trace(go.Scatter(x=centres, y=levels, mode="lines", line=dict(width=1, color="#555"),
                         name="level (dBFS)", hoverinfo="skip"), row=1, col=1)
fig.add_trace(go.Heatmap(x=centres, y=[tl.labels[i] for i in shown], z=probs[:, shown].T, zmin=0, zmax=1,
                         colorscale="Viridis", colorbar=dict(title="p", len=0.7, y=0.35),
                         hovertemplate="%{x:.2f} s · %{y}: %{z:.2f}<extra></extra>"), row=2, col=1)
for e in events:
    if e.label in tl.labels and tl.labels.index(e.label) in shown:
        fig.add_shape(type="rect", x0=e.start, x1=e.end, y0=shown.index(tl.labels.index(e.label)) - 0.5,
                      y1=shown.index(tl.labels.index(e.label)) + 0.5, line=dict(color="white", width=2),
                      row=2, col=1)
fig.update_layout(height=360, margin=dict(l=10, r=10, t=10, b=10), showlegend=False)
fig.update_xaxes(range=list(zoom), row=2, col=1, title="time in the recording (s)",
                 rangeslider=dict(visible=True, thickness=0.06))
fig.update_yaxes(title="dBFS", row=1, col=1)
clicked = st.plotly_chart(fig, key="rec_chart", on_select="rerun", selection_mode="points", width="stretch")
points = (clicked or {}).get("selection", {}).get("points", []) if isinstance(clicked, dict) else []
if points:
    ss.rec_moment = float(points[0]["x"])
st.caption(f"{tl.name}: {tl.duration:,.1f} s, {len(tl):,} windows of {tl.window:g} s every {tl.hop:g} s "
           f"({tl.meta.get('model')}, {'sigmoid' if tl.multi_label else 'softmax'}); {len(events)} events over "
           f"{threshold:g}. Click a track to explain that moment.")

# ---- events: list, play, explain, export ----------------------------------------------------------------
left, right = st.columns([2, 3])
with left:
    st.dataframe([{"start (s)": round(e.start, 2), "end (s)": round(e.end, 2), "label": e.label,
                   "score": round(e.score, 3)} for e in events], height=220, key="rec_events_table")
    if events:
        pick_event = st.selectbox("Event", range(len(events)), key="rec_event",
                                  format_func=lambda i: f"{events[i].label} · {events[i].start:.2f}–"
                                                        f"{events[i].end:.2f} s · {events[i].score:.2f}")
        e = events[pick_event]
        play = read_span(ss.rec_source, tl.rate, max(0.0, e.start - 0.3), min(tl.duration, e.end + 0.3))
        st.audio(sv.wav_bytes(play, tl.rate), format="audio/wav")
        if st.button("Explain this event", icon=":material/insights:", key="rec_explain_event"):
            ss.rec_moment = (e.start + e.end) / 2
    d1, d2, d3 = st.columns(3)
    d1.download_button("CSV", format_events(events, "csv"), "events.csv", key="rec_dl_csv")
    d2.download_button("Raven", format_events(events, "raven", high_hz=tl.rate / 2), "events.selections.txt",
                       key="rec_dl_raven")
    d3.download_button("Audacity", format_events(events, "audacity"), "events.labels.txt", key="rec_dl_aud")

with right:
    from earmark.explainers import EXPLAINERS

    methods = EXPLAINERS.names()
    e1, e2 = st.columns(2)
    method = e1.selectbox("Explainer", methods, index=methods.index("saliency") if "saliency" in methods else 0,
                          key="rec_method")
    domain = e2.selectbox("Domain", ["stft", "mel", "time", "fourier", "dwt"], key="rec_domain")
    if ss.rec_moment is not None:
        at = float(np.clip(ss.rec_moment, 0, tl.duration))
        key = (id(tl), at, method, domain)
        if ss.rec_explained is None or ss.rec_explained[0] != key:
            from earmark.moment import explain_at

            with st.spinner(f"Explaining the window around {at:.2f} s with {method}…"):
                try:
                    ss.rec_explained = (key, *explain_at(model, ss.rec_source, at, method=method, transform=domain))
                except EarmarkError as exc:
                    st.error(str(exc))
                    ss.rec_explained = None
        if ss.rec_explained is not None:
            from earmark.moment import moment_figure

            _, expl, start, transform = ss.rec_explained
            st.pyplot(moment_figure(ss.rec_source, model.card, start, transform, expl,
                                    title=f"{tl.labels[expl.target]} around {at:.2f} s ({method}, {domain})"))
    else:
        st.info("Pick an event and Explain it, or click a track: the model's window around that moment is "
                "explained and drawn on the recording's time axis.")

# ---- explained timeline: one stitched map over the visible range ---------------------------------------
with st.expander("Explained timeline: where the model listens for a class, along the recording", expanded=False):
    from earmark.timeline import CHEAP_METHODS

    x1, x2, x3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    cls = x1.selectbox("Class", list(tl.labels), key="rec_stitch_class")
    cheap = x2.selectbox("Method", list(CHEAP_METHODS), key="rec_stitch_method")
    span = (float(zoom[0]), float(min(zoom[1], zoom[0] + 120.0)))
    if x3.button("Stitch", key="rec_stitch", help="explain every window of the visible range (at most 120 s) and "
                                                  "join the maps by overlap-add"):
        from earmark.timeline import explain_timeline

        with st.spinner(f"Explaining the windows of {span[0]:.1f}–{span[1]:.1f} s with {cheap}…"):
            try:
                ss.rec_stitched = explain_timeline(model, ss.rec_source, method=cheap, target=cls, start=span[0],
                                                   stop=span[1])
            except EarmarkError as exc:
                st.error(str(exc))
    stitched = ss.get("rec_stitched")
    if stitched is not None:
        times, values = stitched.display(max_columns=2000)
        sfig = go.Figure(go.Scatter(x=times, y=values, mode="lines", line=dict(width=1)))
        sfig.update_layout(height=200, margin=dict(l=10, r=10, t=10, b=10),
                           yaxis_title=f"{stitched.method} for {tl.labels[stitched.target]}")
        sfig.update_xaxes(range=list(zoom), title="time in the recording (s)")
        st.plotly_chart(sfig, key="rec_stitch_chart", width="stretch")
