"""Widgets built from ``earmark.params.Param`` declarations (one source of truth for ranges and defaults)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import streamlit as st

from .state import param_key, reset_params


def _geometric(p) -> list:
    """~25 log-spaced values over [low, high] (with the default), for parameters declared ``log``."""
    lo, hi = float(p.low), float(p.high)
    lo = lo if lo > 0 else (hi / 1e4)
    values = {p.default}
    for i in range(25):
        v = lo * (hi / lo) ** (i / 24)
        if isinstance(p.default, int):
            v = int(round(v))
        else:
            v = float(f"{v:.3g}")
        values.add(v)
    return sorted(values)


def param_widget(p, key: str, container=st) -> Any:
    """One widget for one declared parameter; its value lives in ``st.session_state[key]``."""
    if key not in st.session_state:
        st.session_state[key] = p.default
    label = p.name.replace("_", " ")
    kind = type(p.default)
    if p.choices is not None:
        return container.selectbox(label, list(p.choices), key=key, help=p.help)
    if kind is bool:
        return container.toggle(label, key=key, help=p.help)
    if p.low is not None and p.high is not None and kind in (int, float):
        if p.log:
            return container.select_slider(label, options=_geometric(p), key=key, help=p.help)
        if kind is int:
            step = int(p.step or 1)
            return container.slider(label, int(p.low), int(p.high), step=step, key=key, help=p.help)
        step = float(p.step) if p.step else _float_step(p.low, p.high)
        return container.slider(label, float(p.low), float(p.high), step=step, key=key, help=p.help)
    if kind in (int, float):
        return container.number_input(label, key=key, help=p.help)
    return container.text_input(label, key=key, help=p.help)


def _float_step(low: float, high: float) -> float:
    span = float(high) - float(low)
    return 10 ** math.floor(math.log10(span / 100)) if span > 0 else 0.01


def param_widgets(owner: str, name: str, params: Sequence, container=st, *, reset: bool = True) -> dict:
    """Widgets for every declared parameter of ``name`` and a reset button; returns ``{param: value}``."""
    values = {p.name: param_widget(p, param_key(owner, name, p.name), container) for p in params}
    if reset and params:
        container.button("Reset to the paper's defaults", key=f"reset_{owner}_{name}", on_click=reset_params,
                         args=(owner, name, params), width="stretch")
    return values
