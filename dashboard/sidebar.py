"""The sidebar, shared by every page: input, model, domain, explainer, target, seed.

It leaves ``st.session_state.current`` = a dict with the decoded clip, the clip as the model hears it,
the model name/card and the :class:`~dashboard.services.Settings` of the explanation to show — or
``None`` with ``current_error`` saying why (bad file, missing weights...).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from earmark.errors import ClipTooLong, EarmarkError

from . import services as sv
from . import state
from .contrast import contrast_picker
from .state import bind
from .widgets import param_widgets

SOURCES = ("Example", "Upload", "Microphone", "Generator")
FORMATS = ["wav", "flac", "ogg", "mp3"]
PREDICTED = -1  # target-class option meaning "the model's prediction"


def _take_bytes(name: str, data: bytes) -> None:
    """The one handler for uploaded, recorded and injected bytes."""
    st.session_state.input_bytes = (name, bytes(data))


def _input(box, sample_rate: int | None = None) -> sv.ClipView | None:
    """The clip chosen in the sidebar; uploads and recordings are kept at ``sample_rate`` (the model's)."""
    box.subheader("1 · Sound")
    pending = st.session_state.pending_bytes  # test hook / programmatic input, same path as uploads
    if pending is not None:
        st.session_state.pending_bytes = None
        _take_bytes(*pending)
        state.put("source", "Upload")
    source = box.segmented_control("Input", SOURCES, key=bind("source"), label_visibility="collapsed")
    source = source or state.get("source") or "Example"
    if source == "Example":
        examples = sv.list_examples()
        if not examples:
            box.warning("No bundled examples are installed yet; upload a clip or use the generator.")
            return None
        names = [e.name for e in examples]
        titles = {e.name: getattr(e, "title", e.name) for e in examples}
        if state.get("example") not in names:
            default = sv.default_example_name()
            state.put("example", default if default in names else names[0])
        name = box.selectbox("Example clip", names, key=bind("example"), format_func=lambda n: titles.get(n, n))
        return sv.example(name)
    if source == "Generator":
        from earmark.examples import SIGNAL_LABELS, SIGNAL_TITLES, signal_params

        kind = box.selectbox("Signal", list(SIGNAL_TITLES), key=bind("gen_kind"), format_func=SIGNAL_TITLES.get)
        with box.expander("Signal settings", expanded=False):   # only the chosen kind's settings
            own = signal_params(kind)
            values = param_widgets("gen", "signal", own[:1], st, labels=SIGNAL_LABELS)
            nyquist = values["sample_rate"] / 2
            st.caption(f"Frequencies stay below Nyquist ({nyquist:g} Hz at {values['sample_rate']} Hz).")
            values.update(param_widgets("gen", "signal", own[1:], st, labels=SIGNAL_LABELS,
                                        limits={n: nyquist - 10 for n in ("freq", "freq2", "f0", "f1")}))
        return sv.generate(kind, sv.as_items(values))
    if source == "Upload":
        up = box.file_uploader("Audio file (wav, flac, ogg, mp3)", type=FORMATS, key="w_upload")
        if up is not None and (st.session_state.input_bytes is None or st.session_state.input_bytes[0] != up.name
                               or len(st.session_state.input_bytes[1]) != up.size):
            _take_bytes(up.name, up.getvalue())
    else:
        rec = box.audio_input("Record from the microphone", key="w_mic")
        if rec is not None:
            _take_bytes("recording.wav", rec.getvalue())
    if st.session_state.input_bytes is None:
        box.info("Drop a file or record a clip to start; or pick an example.")
        return None
    name, data = st.session_state.input_bytes
    stem = name.rsplit(".", 1)[0] or "upload"
    try:
        return sv.decode(data, stem, None, sample_rate)
    except ClipTooLong:  # the page's own sentence (the core's one is written for the API)
        box.warning("This recording is longer than 60 s: choose which 60 s to analyse.")
        start = box.number_input("Analyse 60 s starting at (s)", min_value=0.0, step=10.0, key=bind("segment_start"))
        return sv.decode(data, stem, (float(start), float(start) + 60.0), sample_rate)


def _model(box):
    box.subheader("2 · Model")
    names = sv.model_names()
    if st.session_state.w_model not in names:
        st.session_state.w_model = "audionet-digits" if "audionet-digits" in names else names[0]
    name = box.selectbox("Model", names, key="w_model", format_func=lambda n: _model_label(n))
    if sv.upload_allowed():
        _model_upload(box)
    try:
        model = sv.get_model(name)
    except EarmarkError as exc:  # said once, on the page; the sidebar only points at it
        box.caption("This model cannot be used: the reason is on the page.")
        st.session_state.model_error = f"The model '{sv.model_title(name)}' cannot be used: {exc} Pick another model in the sidebar."
        others = [sv.model_title(n) for n in names if n != name]
        if others:
            box.caption("Pick another model above: " + ", ".join(others))
        return name, None
    card = model.card
    if card.variable_length:   # the model takes any length up to its maximum: the user picks the window
        top = (card.max_samples or 60 * card.sample_rate) / card.sample_rate
        if st.session_state.get("w_window_model") != name:   # a new model starts at its own default window
            st.session_state.w_window_model = name
            st.session_state.w_window = float(round(card.num_samples / card.sample_rate, 3))
        seconds = box.number_input("Model window (s)", min_value=0.05, max_value=float(top), step=0.25,
                                   key="w_window", help=f"This model takes any input up to {top:g} s.")
        samples = int(round(seconds * card.sample_rate))
        if samples != card.num_samples:
            name = sv.model_key(name, samples)
            try:
                model = sv.get_model(name)
            except EarmarkError as exc:
                box.caption("This window cannot be used: the reason is on the page.")
                st.session_state.model_error = str(exc)
                return name, None
            card = model.card
    facts = card.facts()
    box.caption(f"{facts['sample rate']} · {facts['input length']} · {card.num_classes} classes · "
                f"{'sigmoid (multi-label)' if card.multi_label else 'softmax'}"
                + ("" if card.gradients else " · no gradients"))
    return name, model


def _model_label(name: str) -> str:
    title = sv.model_title(name)
    return title if title.startswith(Path(name).name) else f"{name} — {title}"


def _model_upload(box) -> None:
    """TorchScript / ONNX upload with its card, only where the server owner allows it."""
    limit = sv.upload_limit_mb()
    with box.expander("Upload a model (TorchScript or ONNX)"):
        st.caption(f"One .pt (TorchScript) or .onnx file and its card .json (sample_rate, input_length, labels); "
                   f"at most {limit:g} MB. Uploaded models are visible to everyone on this server.")
        files = st.file_uploader("Model file and card", type=list(sv.UPLOAD_TYPES), accept_multiple_files=True,
                                 key="w_model_upload")
        if files and st.button("Add the model", key="w_model_upload_add"):
            try:
                path = sv.save_upload([(f.name, f.getvalue()) for f in files])
            except EarmarkError as exc:
                st.error(str(exc))
                return
            st.session_state.w_model = path
            st.rerun()


def render() -> None:
    """Draw the sidebar and set ``current`` / ``current_error``."""
    st.session_state.current = None
    st.session_state.current_error = None
    st.session_state.model_error = None
    sb = st.sidebar
    input_box = sb.container()
    model_name, model = _model(sb.container())   # first, so an upload is decoded straight to the model's rate
    try:
        clip = _input(input_box, model.card.sample_rate if model is not None else None)
    except EarmarkError as exc:  # said once, on the page; the sidebar only points at it
        input_box.caption(":red[This input cannot be used (see the message on the page).]")
        st.session_state.current_error = str(exc)
        clip = None

    sb.subheader("3 · Domain")
    tclasses = sv.transform_classes()
    if state.get("transform") not in tclasses:
        state.put("transform", next(iter(tclasses)))
    tname = sb.selectbox("Transform", list(tclasses), key=bind("transform"), format_func=lambda n: tclasses[n].title)
    with sb.expander(f"{tclasses[tname].title} settings"):
        tparams = param_widgets("transform", tname, tclasses[tname].params, st, reset="Reset to defaults")

    sb.subheader("4 · Explainer")
    specs = sv.explainer_specs()
    card_now = model.card if model is not None else None
    blocked = {n: s.unavailable(card_now, model) for n, s in specs.items() if s.supports(tname)}
    blocked = {n: why for n, why in blocked.items() if why}
    usable = [n for n, s in specs.items() if s.supports(tname) and n not in blocked]
    if state.get("explainer") not in usable:
        state.put("explainer", "ig" if "ig" in usable else usable[0])
    ename = sb.selectbox("Explainer", usable, key=bind("explainer"), format_func=lambda n: specs[n].title)
    other = [f"{s.title} ({', '.join(s.domains)})" for n, s in specs.items() if not s.supports(tname)]
    if other:
        sb.caption("Other domains only: " + "; ".join(other))
    if blocked:   # greyed out with the reason, not hidden silently
        from earmark.explainers.base import missing_capability

        reason = missing_capability(card_now) or next(iter(blocked.values()))
        sb.caption(":gray[Not available for this model: " + ", ".join(f"~~{specs[n].title}~~" for n in blocked)
                   + f" — each {reason}]")
    with sb.expander(f"{specs[ename].title} settings"):
        auto = specs[ename].auto_values
        eparams = param_widgets("explainer", ename, specs[ename].params, st, reset="Reset to the paper's defaults",
                                auto_values=(lambda: auto(tname)) if auto else None)

    labels = model.card.labels if model is not None else ()
    options = [PREDICTED] + list(range(len(labels)))
    if state.get("target") not in options:
        state.put("target", PREDICTED)
    c1, c2 = sb.columns([3, 2])
    target = c1.selectbox("Target class", options, key=bind("target"),
                          format_func=lambda i: "predicted class" if i == PREDICTED else f"{i}: {labels[i]}")
    target = None if target == PREDICTED else int(target)
    seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=bind("seed"))
    contrast = contrast_picker(sb, labels, target, specs[ename])

    if clip is None or model is None:
        if model is None and st.session_state.current_error is None:
            st.session_state.current_error = st.session_state.get("model_error") or (
                "The model could not be loaded; pick another model in the sidebar.")
        return

    card = model.card
    window = card.num_samples / card.sample_rate
    offset = None
    clip_seconds = clip.duration
    if clip_seconds > window + 1e-9:
        top = float(round(clip_seconds - window, 2))
        bind("offset")
        if st.session_state.w_offset is None or st.session_state.w_offset > top:
            state.put("offset", float(round(max(0.0, (clip_seconds - window) / 2), 2)))
            bind("offset")
        offset = input_box.slider("Model window starts at (s)", 0.0, top, step=0.01, key="w_offset")
    try:
        ready = sv.prepared(clip.hash, clip.clip, card.sample_rate, card.num_samples, offset)
    except EarmarkError as exc:
        input_box.caption(":red[This clip cannot be prepared for the model (see the message on the page).]")
        st.session_state.current_error = str(exc)
        return
    source = getattr(clip.clip, "original_rate", 0) or clip.sample_rate
    channels = getattr(clip.clip, "channels", 1)
    if channels > 1 or source != card.sample_rate:
        steps = ([f"mixed {channels} channels to mono"] if channels > 1 else []) + (
            [f"resampled {source} Hz → {card.sample_rate} Hz"] if source != card.sample_rate else [])
        note = "For the model the clip was " + " and ".join(steps) + "."
        input_box.caption(note)
    else:
        note = None
    from earmark.audio import is_window_note

    for w in clip.warnings + tuple(w for w in ready.warnings if w not in clip.warnings):
        # which part of a long clip the model hears is a fact (once, as information); the rest are warnings
        (input_box.info if is_window_note(w) else input_box.warning)(w)

    settings = sv.Settings(clip_hash=ready.hash, clip_name=clip.name, model=model_name, transform=tname,
                           tparams=sv.as_items(tparams), explainer=ename, eparams=sv.as_items(eparams),
                           target=target, seed=int(seed), contrast=contrast)
    st.session_state.current = dict(clip=clip, ready=ready, model=model_name, card=card, settings=settings,
                                     offset=offset, window=window, note=note)
