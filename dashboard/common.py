"""Pieces several pages draw: the current result, labelled players, the model card."""

from __future__ import annotations

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


def result(cur, *, watch: bool = True):
    """The final explanation for ``cur`` if it was computed already (by any session), else ``None``.

    While this session's job for these settings is still running (started on Explore), ``watch`` shows its
    progress here and reruns the page when it is done: switching pages does not stop or lose it.
    """
    settings: sv.Settings = cur["settings"]
    exp = sv.explanation(settings)
    if exp is None and watch:
        job = sv.explanation_job(settings)
        if job is not None and not job.finished:
            from . import live
            live.watch(job, key="explain_elsewhere", label="The explanation is being computed")
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
