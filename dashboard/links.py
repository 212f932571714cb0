"""A shareable link: the page's settings in the URL (``st.query_params``), so a teacher can hand one out.

``read_once()`` runs before the sidebar on a session's first script run and applies what the URL names —
a bundled example (``clip``), ``model``, ``domain``, ``explainer``, ``seed``, ``target`` and the explainer's
settings (``e.<name>``); anything unknown or out of range is skipped with one sentence, never a traceback.
``write()`` runs after the sidebar and puts the current settings back into the URL whenever they change
(the clip only when it is a bundled example: an upload cannot travel in a link). Explainer settings go in
only where they differ from the value the app starts at, so a link stays short.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from earmark.errors import EarmarkError

from . import services as sv
from . import state
from .state import param_key

#: The plain keys of a link (explainer settings add ``e.<name>``).
KEYS = ("clip", "model", "domain", "explainer", "seed", "target")
_READ = "_link_read"


def _one(value: Any) -> str:
    return str(value[-1] if isinstance(value, (list, tuple)) and value else value)


def settings_from(query: dict) -> tuple[dict, dict, list[str]]:
    """The link's settings checked against what this server offers.

    Returns:
        ``(controls, explainer settings, problems)``: control name → value for :func:`dashboard.state.put`
        (``model`` is the model picker's key), explainer parameter → value, and one sentence per skipped item.
    """
    q = {k: _one(v) for k, v in query.items()}
    out: dict[str, Any] = {}
    params: dict[str, Any] = {}
    problems: list[str] = []
    if "clip" in q:
        names = {e.name for e in sv.list_examples()}
        if q["clip"] in names:
            out["source"], out["example"] = "Example", q["clip"]
        else:
            problems.append(f"the clip '{q['clip']}' is not a bundled example here")
    if "model" in q:
        if q["model"] in sv.model_names():
            out["model"] = q["model"]
        else:
            problems.append(f"the model '{q['model']}' is not on this server")
    if "domain" in q:
        if q["domain"] in sv.transform_classes():
            out["transform"] = q["domain"]
        else:
            problems.append(f"there is no domain '{q['domain']}'")
    specs = sv.explainer_specs()
    if "explainer" in q:
        if q["explainer"] in specs:
            out["explainer"] = q["explainer"]
        else:
            problems.append(f"there is no explainer '{q['explainer']}'")
    for key, low in (("seed", 0), ("target", -1)):
        if key in q:
            try:
                value = int(q[key])
                if value < low:
                    raise ValueError
                out[key] = value
            except ValueError:
                problems.append(f"'{key}' must be a whole number of at least {low}, not '{q[key]}'")
    spec = specs.get(out.get("explainer") or state.get("explainer"))
    declared = {p.name: p for p in getattr(spec, "params", ())}
    for key, text in q.items():
        if not key.startswith("e."):
            continue
        p = declared.get(key[2:])
        if p is None:
            problems.append(f"the explainer has no setting '{key[2:]}'")
            continue
        try:
            params[p.name] = p.coerce(text)
        except EarmarkError as exc:
            problems.append(str(exc).rstrip("."))
    return out, params, problems


def read_once() -> None:
    """Apply the URL's settings on this session's first run (before the sidebar draws its widgets)."""
    ss = st.session_state
    if ss.get(_READ):
        return
    ss[_READ] = True
    if not any(k in st.query_params for k in KEYS) and not any(k.startswith("e.") for k in st.query_params):
        return
    controls, params, problems = settings_from(st.query_params.to_dict())
    if "model" in controls:
        ss.w_model = controls.pop("model")
    for name, value in controls.items():
        state.put(name, value)
    explainer = controls.get("explainer") or state.get("explainer")
    for name, value in params.items():
        key = param_key("explainer", explainer, name)
        state._put(f"v_{key}", key, value)
    if problems:
        ss["_link_problems"] = "This link's settings were partly skipped: " + "; ".join(problems) + "."


def link_params(cur) -> dict[str, str]:
    """The URL's settings for the current result (``cur``: ``st.session_state.current``)."""
    s = cur["settings"]
    out = {}
    if state.get("source") == "Example":
        out["clip"] = str(state.get("example"))
    model = st.session_state.get("w_model") or sv.split_model_key(cur["model"])[0]
    if not sv.is_upload(model):   # a visitor's upload stays off the link
        out["model"] = str(model)
    out.update(domain=s.transform, explainer=s.explainer, seed=str(s.seed))
    if s.target is not None:
        out["target"] = str(s.target)
    spec = sv.explainer_specs().get(s.explainer)
    from .widgets import start_value

    declared = {p.name: p for p in getattr(spec, "params", ())}
    for name, value in s.eparams:
        p = declared.get(name)
        if p is not None and value != start_value(p, spec):
            out[f"e.{name}"] = str(value)
    return out


def write() -> None:
    """Put the current settings in the URL when they changed (nothing while there is no clip or model)."""
    if msg := st.session_state.pop("_link_problems", None):
        st.toast(msg, icon=":material/link_off:")
    cur = st.session_state.get("current")
    if cur is None:
        return
    wanted = link_params(cur)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
