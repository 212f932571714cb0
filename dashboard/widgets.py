"""Widgets built from ``earmark.params.Param`` declarations (one source of truth for ranges and defaults).

The widget fits the range: a log-scale slider of round values for counts over wide ranges (``n_masks``
10–100,000 offers 300 and 1,000) and for parameters declared ``log``; a number input where a slider's steps
cannot hit the default (WAM-SG's noise 0.001); "auto (paper: 2)" for settings whose negative value means
"the paper's value for this domain". Every value persists through :func:`dashboard.state.bind`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import streamlit as st

from .state import bind, param_key, reset_params

#: Integer ranges at least this wide (high / low) get a log-scale slider of round values.
LOG_COUNT_RATIO = 100

def start_value(p, spec=None) -> Any:
    """The value a control starts at in the app: the explainer's declared ``app_defaults`` where they name
    ``p`` (a run that ends when its map has converged, samplers that reach the paper's map with fewer masks),
    else the paper's. The paper's value stays one click away, labelled "(paper)"."""
    value = spec.start_value(p.name, p.default) if spec is not None else p.default
    return value if p.choices is None or value in p.choices else p.default


def choice_label(p, start: Any) -> Callable[[Any], str]:
    """Labels of a select's options by the names people use (``p.labels``); the paper's value is marked where
    the app starts elsewhere, and always for a parameter whose choices have names (the readouts)."""
    mark = start != p.default or bool(p.labels)
    return lambda v: f"{p.label(v)} (paper)" if mark and v == p.default else p.label(v)


def round_values(low: float, high: float, default: Any, *, integer: bool) -> list:
    """1-2-3-5 values per decade in [low, high], with the ends and the default (sorted)."""
    lo = float(low) if low > 0 else max(float(high) / 1e4, 1e-12)
    values = {default, low if low > 0 else lo, high}
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(float(high))) + 1):
        for m in (1, 2, 3, 5):
            v = m * 10.0 ** e
            if lo <= v <= high:
                values.add(int(round(v)) if integer else float(f"{v:.3g}"))
    if integer:
        values = {int(v) for v in values}
    return sorted(values)


def _on_grid(value: float, low: float, step: float) -> bool:
    q = (float(value) - float(low)) / float(step)
    return abs(q - round(q)) < 1e-6


def widget_kind(p) -> str:
    """Which widget a parameter gets: ``select``, ``toggle``, ``log``, ``slider``, ``number`` or ``text``."""
    kind = type(p.default)
    if p.choices is not None:
        return "select"
    if kind is bool:
        return "toggle"
    if p.low is None or p.high is None or kind not in (int, float):
        return "number" if kind in (int, float) else "text"
    if p.log or (kind is int and p.low >= 1 and p.high / max(p.low, 1) >= LOG_COUNT_RATIO):
        return "log"
    step = float(p.step) if p.step else _float_step(p.low, p.high)
    if kind is float and (not _on_grid(p.default, p.low, step)
                          or 0 < (p.default - p.low) / (p.high - p.low) < 0.01):
        return "number"  # a slider cannot hit the default (or only with a steady hand)
    return "slider"


def _fmt(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def param_widget(p, key: str, container=st, *, high: float | None = None, auto: Any = None,
                 start: Any = None, label: str | None = None) -> Any:
    """One widget for one declared parameter; returns its value (stored under ``v_<key>``).

    Args:
        p: the declaration.  key: the widget key.
        high: a tighter upper limit than the declared one (e.g. Nyquist for a generator frequency).
        auto: the value a negative setting stands for here; draws "auto (paper: …)" with a number input
            for a value of one's own.
        start: the value the control starts at (default: the declared, i.e. the paper's, value).
        label: the widget's label (default: the parameter's name with spaces).
    """
    label = label or p.name.replace("_", " ")
    if auto is not None:
        use_auto = container.checkbox(f"{label}: auto (paper: {_fmt(auto)})", help=p.help,
                                      key=bind(f"v_{key}_auto", f"{key}_auto", default=True))
        if use_auto:
            return p.default
        bind(f"v_{key}", key, default=auto if p.default < 0 else p.default)
        if st.session_state[key] < 0:
            st.session_state[key] = st.session_state[f"v_{key}"] = auto
        return container.number_input(label, min_value=0.0, max_value=float(p.high), key=key, help=p.help,
                                      format="%g")
    kind = widget_kind(p)
    top = p.high if high is None else min(float(p.high), float(high))
    start = p.default if start is None else start
    bind(f"v_{key}", key, default=start)
    value = st.session_state[key]
    if kind in ("slider", "log", "number") and p.low is not None and value is not None:
        clamped = min(max(value, type(p.default)(p.low)), type(p.default)(top))
        if clamped != value:
            st.session_state[key] = st.session_state[f"v_{key}"] = clamped
    if kind == "select":
        return container.selectbox(label, list(p.choices), key=key, help=p.help, format_func=choice_label(p, start))
    if kind == "toggle":
        return container.toggle(label, key=key, help=p.help)
    if kind == "log":
        options = [v for v in round_values(p.low, top, p.default, integer=type(p.default) is int) if v <= top]
        if st.session_state[key] not in options:
            options = sorted(set(options) | {st.session_state[key]})
        return container.select_slider(label, options=options, key=key, help=p.help, format_func=_fmt)
    if kind == "slider":
        if type(p.default) is int:
            return container.slider(label, int(p.low), int(top), step=int(p.step or 1), key=key, help=p.help)
        step = float(p.step) if p.step else _float_step(p.low, top)
        return container.slider(label, float(p.low), float(top), step=step, key=key, help=p.help)
    if kind == "number":
        if p.low is None:
            return container.number_input(label, key=key, help=p.help)
        is_int = type(p.default) is int
        cast = int if is_int else float
        step = cast(p.step) if p.step and (is_int or _on_grid(p.default, p.low, p.step)) else (
            1 if is_int else 10 ** math.floor(math.log10(abs(p.default)) if p.default else -3))
        return container.number_input(label, min_value=cast(p.low), max_value=cast(top), step=step, key=key,
                                      help=p.help, format=None if is_int else "%g")
    return container.text_input(label, key=key, help=p.help)


def _float_step(low: float, high: float) -> float:
    span = float(high) - float(low)
    return 10 ** math.floor(math.log10(span / 100)) if span > 0 else 0.01


def param_widgets(owner: str, name: str, params: Sequence, container=st, *, reset: str | None = None,
                  limits: Mapping[str, float] | None = None,
                  auto_values: Callable[[], Mapping[str, Any]] | None = None,
                  labels: Mapping[str, str] | None = None) -> dict:
    """Widgets for every declared parameter of ``name`` (and a reset button); returns ``{param: value}``.

    Args:
        reset: the reset button's label (``None``: no button).
        limits: ``{param: high}`` tighter upper limits.
        auto_values: the values that negative ("auto") settings stand for.
        labels: ``{param: label}`` names people use, where they differ from the parameter's.
    """
    autos = dict(auto_values() if auto_values else {})
    values = {}
    for p in params:
        auto = autos.get(p.name) if isinstance(p.default, (int, float)) and p.default < 0 else None
        values[p.name] = param_widget(p, param_key(owner, name, p.name), container,
                                      high=(limits or {}).get(p.name), auto=auto, label=(labels or {}).get(p.name),
                                      start=start_value(p, _explainer(name)) if owner == "explainer" else p.default)
    if reset and params:
        container.button(reset, key=f"reset_{owner}_{name}", on_click=reset_params,
                         args=(owner, name, params), width="stretch")
    return values


def _explainer(name: str):
    """The registered explainer ``name`` (its declared app defaults), or ``None``."""
    from earmark.explainers import EXPLAINERS

    return EXPLAINERS.items.get(name)
