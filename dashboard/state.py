"""Every session key in one place. ``init_state()`` runs first on every rerun of every page.

Widget values live under their widget keys (``w_*``); derived objects under plain keys. Nothing here
computes: the sidebar fills ``current`` (the clip as the model hears it and the settings), the pages read it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

#: Most result slots on the Compare page.
MAX_SLOTS = 4

DEFAULTS: dict[str, Any] = {
    # input
    "w_source": "Example",          # Example | Upload | Microphone | Generator
    "w_example": None,              # example name (None = earmark.examples.default_example())
    "w_gen_kind": "chirp",
    "w_gen_seconds": 1.0,
    "w_gen_f0": 440.0,
    "w_gen_f1": 2000.0,
    "w_gen_snr": 20.0,
    "w_gen_seed": 0,
    "w_offset": None,               # seconds; None = centre the model's window
    "w_segment_start": 0.0,          # for recordings over the 60 s limit
    "pending_bytes": None,          # (name, bytes): upload / microphone / test hook, decoded next run
    "input_bytes": None,            # (name, bytes) of the current upload or recording
    # pickers
    "w_model": None,
    "w_window": None,               # seconds, for variable-length models (None = the model's default)
    "w_window_model": None,         # the model the window was set for
    "w_transform": "stft",
    "w_explainer": "ig",
    "w_target": -1,                 # -1 = the predicted class
    "w_seed": 0,
    # views
    "w_log_freq": False,
    "w_clip_colours": True,         # colour limit at the 99.5th percentile of |map|
    "w_layout": "Overlay",          # Overlay | Side by side
    "w_k": 10,                       # percent for keep/remove top-k
    "w_match": True,
    # results
    "current_error": None,          # why there is no current clip/model, for the pages to show
    "model_error": None,
    "current": None,                # dict built by the sidebar: clip, ready, settings, model name...
    "last_seconds": None,           # wall time of the last explain click → heatmap
    "slots": [],                    # pinned results for Compare
}


def init_state() -> None:
    """Set every session key that is not set yet (safe to call on every rerun)."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, (set, list, dict)) else value


def param_key(owner: str, name: str, param: str) -> str:
    """Widget key of a declared parameter, e.g. ``p_explainer_ig_n_steps``."""
    return f"p_{owner}_{name}_{param}"


def reset_params(owner: str, name: str, params) -> None:
    """Back to the declared defaults (callback of the reset buttons)."""
    for p in params:
        st.session_state[param_key(owner, name, p.name)] = p.default
