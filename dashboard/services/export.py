"""Export: the PNG, the ``earmark explain`` command, the npz and the JSON summary of an explanation."""

from __future__ import annotations

import io

import numpy as np
import streamlit as st
import torch

from .common import Settings
from .models import explainer_specs, get_model, get_transform, split_model_key, transform_classes


@st.cache_data(show_spinner=False, max_entries=32)
def png(settings: Settings, _wave: np.ndarray, _exp, log_freq: bool, reference: str = "auto", clip: bool = True,
        dim_silent: bool = False, palette: str = "default", contrast: str = "value", partial: int | None = None) -> bytes:
    """A static PNG (matplotlib, server-side) of power / saliency / uncertainty, with the screen's colour rules.

    ``partial``: the masks or steps of a stopped run's partial map (part of the cache key, so the final map
    never gets a partial map's figure)."""
    from earmark.display import CLIP_PERCENTILE
    from earmark.plots import explanation_figure

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    fig = explanation_figure(transform, torch.as_tensor(_wave), _exp, log_freq=log_freq,
                             spec=explainer_specs()[settings.explainer],
                             reference=None if reference == "auto" else reference,
                             clip_percentile=CLIP_PERCENTILE if clip else None, dim_silent=dim_silent,
                             palette=palette, contrast=contrast,
                             title=f"{settings.clip_name} · {settings.model} · {settings.transform} · "
                                   f"{settings.explainer} · class {_exp.target}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def command(settings: Settings, clip_label: str, offset: float | None = None):
    """The :class:`earmark.command.ExplainCommand` that reproduces ``settings`` (non-default settings only)."""
    from earmark.command import ExplainCommand

    tcls = transform_classes()[settings.transform]
    defaults_t = {p.name: p.default for p in tcls.params}
    spec = explainer_specs()[settings.explainer]
    defaults_e = {p.name: p.default for p in spec.params}
    tset = {k: v for k, v in settings.tparams if defaults_t.get(k) != v}
    eset = {k: v for k, v in settings.eparams if defaults_e.get(k) != v}
    model_name, window = split_model_key(settings.model)
    window_s = None if window is None else window / get_model(settings.model).card.sample_rate
    return ExplainCommand(clip_label, model=model_name, transform=settings.transform,
                          explainer=settings.explainer, seed=settings.seed, target=settings.target,
                          settings=eset, tsettings=tset, offset=offset, window=window_s)


def cli_command(settings: Settings, clip_label: str, offset: float | None = None) -> str:
    return command(settings, clip_label, offset).shell()


def npz_bytes(settings: Settings, exp, length: int) -> bytes:
    """Maps, extras and the display grid's axes (as the CLI's explanation.npz)."""
    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    return exp.npz_bytes(axes=transform.axes(int(length)))


def json_bytes(settings: Settings, exp, clip_label: str, offset: float | None = None) -> bytes:
    """The summary with the same provenance as the CLI's explanation.json (clip, model, labels, command)."""
    from earmark.command import provenance

    labels = get_model(settings.model).card.labels
    prov = provenance(command(settings, clip_label, offset), labels=labels, explanation=exp,
                      clip_name=settings.clip_name)
    return exp.to_json(prov).encode()
