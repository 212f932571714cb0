"""The listening quiz's store and clips."""

from __future__ import annotations

import dataclasses

import streamlit as st

from .clips import ClipView, example, prepared
from .common import Settings


@st.cache_resource(show_spinner=False)
def quiz_store(path: str):
    """The quiz's SQLite store at ``path`` (one per server; every call opens its own connection)."""
    from earmark.quiz import QuizStore
    return QuizStore(path)


def quiz_clip(name: str, settings: Settings, card) -> tuple[Settings, ClipView]:
    """The settings of ``settings`` applied to the bundled example ``name``, and that clip as the model hears it."""
    view = example(name)
    ready = prepared(view.hash, view.clip, card.sample_rate, card.num_samples, None)
    return dataclasses.replace(settings, clip_hash=ready.hash, clip_name=name, target=None), ready
