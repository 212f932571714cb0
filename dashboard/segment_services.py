"""The segment page's computations, cached: segments from a source, their scores, sounds and curves.

Everything here calls :mod:`earmark.segments` and :mod:`earmark.metrics.segments`; the page only draws.
Results are cached per (clip, model, source, method, settings, target, seed) and shared across sessions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
import torch

from dashboard import services as sv


def method_specs() -> dict[str, Any]:
    from earmark.segments import SEGMENT_EXPLAINERS

    return {spec.name: spec for spec in SEGMENT_EXPLAINERS}


@st.cache_data(show_spinner=False, max_entries=64)
def segments_from(kind: str, value: Any, clip_hash: str, _wave: np.ndarray, sample_rate: int,
                  file_name: str | None = None, _data: bytes | None = None, tier: str | None = None):
    """``kind``: ``auto`` (value = threshold in dB), ``grid`` (value = width in s) or ``file`` (value = the
    file's hash; ``_data`` its bytes)."""
    from earmark.segments import detect, grid, read_bytes

    if kind == "auto":
        return detect(_wave, sample_rate, threshold_db=float(value))
    if kind == "grid":
        return grid(len(_wave) / sample_rate, float(value))
    return read_bytes(_data, file_name or "segments", tier or None)


@st.cache_data(show_spinner=False, max_entries=64)
def explain(model_name: str, clip_hash: str, _wave: np.ndarray, source_key: tuple, _segments, method: str,
            params: tuple, target: int, seed: int):
    """The :class:`~earmark.segments.SegmentExplanation`, its sounds and its deletion/insertion curves."""
    from earmark.metrics.segments import segment_deletion_insertion
    from earmark.segments import explain_segments, sounds_for

    model = sv.get_model(model_name)
    x = torch.as_tensor(_wave, dtype=torch.float32)
    expl = explain_segments(model, x, _segments, target, method=method, seed=seed, **dict(params))
    sounds = sounds_for(model, x, expl, top_k=min(3, len(expl.segments)))
    game = {k: expl.params.get(k, d) for k, d in (("replacement", "silence"), ("rest", "keep"), ("readout", "prob"))}
    curves = segment_deletion_insertion(model, x, expl.segments, expl.scores, target=expl.target, seed=seed, **game)
    return expl, sounds, curves


def csv_text(expl) -> str:
    """``start,end,label,score,stderr`` of an explanation, as the CLI writes it."""
    rows = ["start,end,label,score,stderr"]
    rows += [f"{r['start']:.4f},{r['end']:.4f},{r['label']},{r['score']:.6g},{r['stderr']:.6g}" for r in expl.rows()]
    return "\n".join(rows) + "\n"
