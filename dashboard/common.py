"""Pieces several pages draw: the current result, labelled players, the model card."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from . import services as sv


def current():
    """``st.session_state.current`` or ``None`` after telling the user what is missing."""
    cur = st.session_state.current
    if cur is None:
        msg = st.session_state.get("current_error")
        if msg:
            st.error(msg)
        else:
            st.info("Choose a sound and a model in the sidebar.")
    return cur


def progress_callback(bar):
    """A ``progress(fraction, stage)`` that updates ``bar`` at most every 2 % (cheap on the server)."""
    last = {"f": -1.0, "stage": None, "t": 0.0}

    def report(fraction: float, stage: str = "") -> None:
        now = time.perf_counter()
        if fraction - last["f"] < 0.02 and stage == last["stage"] and fraction < 1.0 and now - last["t"] < 0.5:
            return
        last.update(f=fraction, stage=stage, t=now)
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{stage or 'working'} · {fraction:.0%}")

    return report


def result(cur, *, run: bool = False, first_look=None):
    """The explanation for ``cur`` if it was computed already (any session) or ``run``, else ``None``.

    ``first_look(saliency)`` is passed on to methods that hand out their map early. Errors in the
    settings (bad hop, unsupported domain...) are shown, never raised.
    """
    settings: sv.Settings = cur["settings"]
    if not run and not sv.has_result(settings):
        return None
    bar = st.progress(0.0, text="starting") if run else None
    try:
        exp = sv.explain(settings, cur["ready"].wave, progress_callback(bar) if bar else None, first_look)
    except sv.EarmarkError as exc:
        if bar is not None:
            bar.empty()
        st.error(str(exc))
        return None
    if bar is not None:
        bar.empty()
    return exp


def prediction_label(probs: np.ndarray, labels) -> str:
    i = int(np.argmax(probs))
    return f"→ {labels[i]} ({probs[i]:.0%})"


def player(label: str, wave: np.ndarray, sample_rate: int, probs: np.ndarray | None = None, labels=None,
           container=st, *, compact: bool = False) -> None:
    """A labelled audio player; the model's prediction on this audio beside (``compact``) or below the label."""
    caption = f"**{label}**"
    if probs is not None and labels is not None:
        caption += (f" → **{labels[int(np.argmax(probs))]}** ({float(np.max(probs)):.0%})" if compact
                    else f"  \nmodel hears {prediction_label(probs, labels)}")
    container.markdown(caption)
    container.audio(sv.wav_bytes(wave, sample_rate), format="audio/wav")


def model_card(card, container=st) -> None:
    """The model card as a short table a person can read."""
    rows = {
        "Name": card.name, "Input": f"{card.num_samples} samples at {card.sample_rate} Hz "
                                    f"({card.num_samples / card.sample_rate:g} s), {card.input_kind}",
        "Classes": ", ".join(map(str, card.labels)),
        "Training data": card.training_data or "—", "Licence / credit": card.licence or "—",
    }
    for k, v in (card.metrics or {}).items():
        rows[k.replace("_", " ")] = f"{v:.3f}" if isinstance(v, float) else str(v)
    if card.training_command:
        rows["Trained with"] = f"`{card.training_command}`"
    if card.notes:
        rows["Notes"] = card.notes
    container.markdown("\n".join(f"- **{k}:** {v}" for k, v in rows.items()))
