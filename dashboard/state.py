"""Every session key in one place. ``init_state()`` runs first on every rerun of every page.

Streamlit forgets the value of a widget that was not drawn in a run (a hidden result area, another page,
another explainer's settings). So every control's value lives under a key of our own, ``v_<name>``, and the
widget (key ``w_<name>``, or ``p_...`` for declared parameters) is re-seeded from it before it is drawn
(:func:`bind`). A change made in the widget is copied back at the start of the next run; a value set by
the program (:func:`put`) wins over the widget's stale one. Derived objects live under plain keys. Nothing
here computes: the sidebar fills ``current`` (the clip as the model hears it and the settings), the pages
read it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

#: Most result slots on the Compare page.
MAX_SLOTS = 4

#: Control values (``v_<name>``; the widget key is ``w_<name>``).
CONTROLS: dict[str, Any] = {
    # input
    "source": "Example",          # Example | Upload | Microphone | Generator
    "example": None,              # example name (None = earmark.examples.default_example())
    "gen_kind": "chirp",
    "offset": None,               # seconds; None = centre the model's window
    "segment_start": 0.0,         # for recordings over the 60 s limit
    # pickers
    "transform": "stft",
    "explainer": "ig",
    "target": -1,                 # -1 = the predicted class
    "seed": 0,
    # views
    "log_freq": False,
    "clip_colours": True,         # colour limit at the 99.5th percentile of |map|
    "layout": "Overlay",          # Overlay | Side by side
    "contrast": "rank",           # colour by rank (structure of heavy-tailed maps) or by value (linear)
    "reference": "auto",          # colour reference of a positive map: auto | zero | mean | baseline
    "dim_silent": False,          # grey out cells 60 dB below the clip's peak
    "zoom": None,                 # (t0, t1) s of the map's time axis shown; None = the whole window
    "k": 10,                      # percent for keep/remove top-k
    "match": True,
    "present": False,             # presentation mode (projector)
    "cmp_what": "Saliency",
    "eval_steps": 20,
    "eval_reference": True,
    # listening quiz
    "quiz_mode": "keep",
    "quiz_k": 10,
}
#: Controls that may not become empty (a segmented control clicked twice keeps its value).
REQUIRED = {"source", "layout", "reference", "contrast", "cmp_what", "quiz_mode"}

DEFAULTS: dict[str, Any] = {
    "pending_bytes": None,          # (name, bytes): upload / microphone / test hook, decoded next run
    "input_bytes": None,            # (name, bytes) of the current upload or recording
    "w_model": None,                # the model picker (always drawn in the sidebar)
    "w_window": None,               # seconds, for variable-length models (None = the model's default)
    "w_window_model": None,         # the model the window was set for
    "current_error": None,          # why there is no current clip/model, for the pages to show
    "model_error": None,
    "current": None,                # dict built by the sidebar: clip, ready, settings, model name...
    "last_seconds": None,           # wall time of the last explain click → heatmap
    "slots": [],                    # pinned results for Compare
    "quiz_question": None,          # the question the listener is answering
    "quiz_feedback": None,          # what the last answer was
    "_seeded": {},                  # widget key → the value it was last seeded with
}


def init_state() -> None:
    """Set every session key that is not set yet (safe to call on every rerun)."""
    for name, value in CONTROLS.items():
        if f"v_{name}" not in st.session_state:
            st.session_state[f"v_{name}"] = value
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, (set, list, dict)) else value


def bind(value_key: str, widget_key: str | None = None, *, default: Any = None, required: bool = False) -> str:
    """Seed a widget from its stored value and return the widget key; call it just before drawing it.

    Args:
        value_key: a control name from :data:`CONTROLS` (stored as ``v_<name>``, widget ``w_<name>``), or
            with ``widget_key`` the full key of the stored value.
        widget_key: the widget's key when it is not ``w_<name>``.
        default: the value when nothing is stored yet.
        required: ignore an empty (``None``) widget value.
    """
    ss = st.session_state
    if widget_key is None:
        required = required or value_key in REQUIRED
        widget_key, value_key = f"w_{value_key}", f"v_{value_key}"
    if value_key not in ss:
        ss[value_key] = default
    seeded = ss["_seeded"]
    if widget_key in ss:
        now = ss[widget_key]
        changed = widget_key not in seeded or _differs(now, seeded[widget_key])
        if changed and not (required and now is None):
            ss[value_key] = now   # the person changed the widget (or a caller set it before the first run)
    ss[widget_key] = ss[value_key]
    seeded[widget_key] = ss[value_key]
    return widget_key


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:  # arrays and the like: compare identity
        return a is not b


def get(name: str) -> Any:
    """The stored value of control ``name``."""
    return st.session_state[f"v_{name}"]


def put(name: str, value: Any) -> None:
    """Set control ``name`` from the program; the widget shows it the next time it is drawn."""
    _put(f"v_{name}", f"w_{name}", value)


def _put(value_key: str, widget_key: str, value: Any) -> None:
    ss = st.session_state
    ss[value_key] = value
    if widget_key in ss:  # the widget's current value is not a change by the person: the stored one wins
        ss["_seeded"][widget_key] = ss[widget_key]


def param_key(owner: str, name: str, param: str) -> str:
    """Widget key of a declared parameter, e.g. ``p_explainer_ig_n_steps`` (its value: ``v_p_...``)."""
    return f"p_{owner}_{name}_{param}"


def reset_params(owner: str, name: str, params) -> None:
    """Back to the declared defaults (callback of the reset buttons)."""
    for p in params:
        key = param_key(owner, name, p.name)
        _put(f"v_{key}", key, p.default)
        _put(f"v_{key}_auto", f"{key}_auto", True)
