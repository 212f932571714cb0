"""Pieces several pages draw: the current result, labelled players, the model card."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from earmark.errors import EarmarkError

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
    except EarmarkError as exc:
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
           container=st) -> None:
    """A labelled audio player; the model's prediction on this audio below the label."""
    caption = f"**{label}**"
    if probs is not None and labels is not None:
        caption += f"  \nmodel hears {prediction_label(probs, labels)}"
    container.markdown(caption)
    container.audio(sv.wav_bytes(wave, sample_rate), format="audio/wav")


def model_card(card, container=st) -> None:
    """The model card as a short table a person can read: the card's facts (format, rate, length, labels,
    activation, gradients, embedding, licence) and what it says about its training."""
    facts = card.facts() if hasattr(card, "facts") else {}
    rows = {
        "Name": card.name,
        "Format": facts.get("format", "bundled"),
        "Input": f"{facts.get('input length', f'{card.num_samples} samples')} at {card.sample_rate:,} Hz, "
                 f"{card.input_kind}",
        "Classes": facts.get("labels", ", ".join(map(str, card.labels))),
        "Output": facts.get("output", "softmax"),
        "Gradients": facts.get("gradients", "yes"),
        "Embedding for RELAX": facts.get("embedding for RELAX", "—"),
        "Training data": card.training_data or "—", "Licence / credit": card.licence or "—",
    }
    for k, v in (card.metrics or {}).items():
        rows[k.replace("_", " ")] = f"{v:.3f}" if isinstance(v, float) else str(v)
    if card.training_command:
        rows["Trained with"] = f"`{card.training_command}`"
    if card.notes:
        rows["Notes"] = card.notes
    container.markdown("\n".join(f"- **{k}:** {v}" for k, v in rows.items()))
    blocked = [s.title for s in sv.explainer_specs().values() if s.unavailable(card)]
    if blocked:
        from earmark.explainers.base import missing_capability

        container.caption(":gray[Cannot run: " + ", ".join(blocked) + f" — each {missing_capability(card)}]")
