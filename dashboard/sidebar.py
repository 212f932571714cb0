"""The sidebar, shared by every page: input, model, domain, explainer, target, seed.

It leaves ``st.session_state.current`` = a dict with the decoded clip, the clip as the model hears it,
the model name/card and the :class:`~dashboard.services.Settings` of the explanation to show — or
``None`` with ``current_error`` saying why (bad file, missing weights...).
"""

from __future__ import annotations

import streamlit as st

from earmark.errors import ClipTooLong, EarmarkError

from . import services as sv
from .state import param_key
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
        st.session_state.w_source = "Upload"
    source = box.segmented_control("Input", SOURCES, key="w_source", label_visibility="collapsed")
    source = source or "Example"
    if source == "Example":
        examples = sv.list_examples()
        if not examples:
            box.warning("No bundled examples are installed yet; upload a clip or use the generator.")
            return None
        names = [e.name for e in examples]
        titles = {e.name: getattr(e, "title", e.name) for e in examples}
        if st.session_state.w_example not in names:
            default = sv.default_example_name()
            st.session_state.w_example = default if default in names else names[0]
        name = box.selectbox("Example clip", names, key="w_example", format_func=lambda n: titles.get(n, n))
        return sv.example(name)
    if source == "Generator":
        from earmark.examples import SIGNAL_KINDS, SIGNAL_PARAMS

        kinds = list(SIGNAL_KINDS)
        kind = box.selectbox("Signal", kinds, key="w_gen_kind", format_func=lambda k: f"{k}: {SIGNAL_KINDS[k]}"
                             .replace("`", ""))
        with box.expander("Signal settings", expanded=False):
            values = param_widgets("gen", "signal", SIGNAL_PARAMS, st)
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
    except ClipTooLong as exc:
        box.warning(str(exc))
        start = box.number_input("Analyse 60 s starting at (s)", min_value=0.0, step=10.0, key="w_segment_start")
        return sv.decode(data, stem, (float(start), float(start) + 60.0), sample_rate)


def _model(box):
    box.subheader("2 · Model")
    names = sv.model_names()
    if st.session_state.w_model not in names:
        st.session_state.w_model = "audionet-digits" if "audionet-digits" in names else names[0]
    name = box.selectbox("Model", names, key="w_model", format_func=lambda n: f"{n} — {sv.model_title(n)}")
    try:
        return name, sv.get_model(name)
    except EarmarkError as exc:
        box.error(str(exc))
        st.session_state.model_error = f"The model '{name}' cannot be used: {exc} Pick another model in the sidebar."
        others = [n for n in names if n != name]
        if others:
            box.caption("Pick another model above: " + ", ".join(others))
        return name, None


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
    except EarmarkError as exc:
        input_box.error(str(exc))
        st.session_state.current_error = str(exc)
        clip = None

    sb.subheader("3 · Domain")
    tclasses = sv.transform_classes()
    if st.session_state.w_transform not in tclasses:
        st.session_state.w_transform = next(iter(tclasses))
    tname = sb.selectbox("Transform", list(tclasses), key="w_transform", format_func=lambda n: tclasses[n].title)
    with sb.expander(f"{tclasses[tname].title} settings"):
        tparams = param_widgets("transform", tname, tclasses[tname].params, st)

    sb.subheader("4 · Explainer")
    specs = sv.explainer_specs()
    usable = [n for n, s in specs.items() if s.supports(tname)]
    if st.session_state.w_explainer not in usable:
        st.session_state.w_explainer = "ig" if "ig" in usable else usable[0]
    ename = sb.selectbox("Explainer", usable, key="w_explainer", format_func=lambda n: specs[n].title)
    other = [f"{s.title} ({', '.join(s.domains)})" for n, s in specs.items() if n not in usable]
    if other:
        sb.caption("Other domains only: " + "; ".join(other))
    with sb.expander(f"{specs[ename].title} settings"):
        eparams = param_widgets("explainer", ename, specs[ename].params, st)

    labels = model.card.labels if model is not None else ()
    options = [PREDICTED] + list(range(len(labels)))
    if st.session_state.w_target not in options:
        st.session_state.w_target = PREDICTED
    c1, c2 = sb.columns([3, 2])
    target = c1.selectbox("Target class", options, key="w_target",
                          format_func=lambda i: "predicted class" if i == PREDICTED else f"{i}: {labels[i]}")
    target = None if target == PREDICTED else int(target)
    seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="w_seed")

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
        input_box.caption(f"The clip ({clip_seconds:.2f} s) is longer than the model's input ({window:g} s).")
        top = float(round(clip_seconds - window, 2))
        if st.session_state.w_offset is None or st.session_state.w_offset > top:
            st.session_state.w_offset = float(round(max(0.0, (clip_seconds - window) / 2), 2))
        offset = input_box.slider("Model window starts at (s)", 0.0, top, step=0.01, key="w_offset")
    try:
        ready = sv.prepared(clip.hash, clip.clip, card.sample_rate, card.num_samples, offset)
    except EarmarkError as exc:
        input_box.error(str(exc))
        st.session_state.current_error = str(exc)
        return
    for w in clip.warnings + tuple(w for w in ready.warnings if w not in clip.warnings):
        input_box.warning(w)

    settings = sv.Settings(clip_hash=ready.hash, clip_name=clip.name, model=model_name, transform=tname,
                           tparams=sv.as_items(tparams), explainer=ename, eparams=sv.as_items(eparams),
                           target=target, seed=int(seed))
    st.session_state.current = dict(clip=clip, ready=ready, model=model_name, card=card, settings=settings,
                                     offset=offset, window=window)
