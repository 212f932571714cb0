"""Cached calls into ``earmark`` — the dashboard's only door to the maths.

Models live in ``st.cache_resource`` (one per server, shared across sessions); decoded clips, predictions,
explanations, listening audio and metric curves live in ``st.cache_data`` keyed on plain values (clip
hash, names, parameter tuples, seed), so returning to earlier settings is instant.

Parts of ``earmark`` that are still being written (``earmark.sonify``, ``earmark.examples``, ``earmark.metrics``...)
are imported lazily: while missing, the calls raise :class:`Unavailable` (an ``EarmarkError``) whose
message the page shows instead of the feature.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import streamlit as st
import torch

from earmark.errors import EarmarkError

ProgressFn = Callable[[float, str], None]


class Unavailable(EarmarkError):
    """A part of core this feature needs is not installed yet."""


def optional(module: str):
    """``core.<module>`` or ``None`` while it does not exist (or cannot be imported)."""
    try:
        return importlib.import_module(f"earmark.{module}")
    except ModuleNotFoundError:
        return None


def need(module: str, attr: str | None = None):
    mod = optional(module)
    if mod is None or (attr and not hasattr(mod, attr)):
        what = f"earmark.{module}.{attr}" if attr else f"earmark.{module}"
        raise Unavailable(f"This feature needs {what}, which is not available in this installation yet.")
    return getattr(mod, attr) if attr else mod


def to_numpy(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().float().cpu().numpy()
    return np.asarray(v)


def as_items(params: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-independent key for a parameter dict."""
    return tuple(sorted((params or {}).items()))


# ---- registries --------------------------------------------------------------------------------

def model_names() -> list[str]:
    from earmark.models import MODELS
    return MODELS.names()


def model_title(name: str) -> str:
    from earmark.models import MODELS
    return MODELS.get(name).title


def transform_classes() -> dict[str, Any]:
    from earmark.transforms import TRANSFORMS
    return {name: TRANSFORMS.get(name) for name in TRANSFORMS.names()}


def explainer_specs() -> dict[str, Any]:
    from earmark.explainers import EXPLAINERS
    return {name: EXPLAINERS.get(name) for name in EXPLAINERS.names()}


def metric_specs() -> dict[str, Any]:
    mod = optional("metrics")
    reg = getattr(mod, "METRICS", None) if mod else None
    if reg is None:
        return {}
    return {name: reg.get(name) for name in reg.names()}


# ---- models and transforms --------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading the model…")
def get_model(name: str):
    """The model, loaded and warmed up once per server. Raises ModelError/ConfigError for a person to read."""
    from earmark.models import load_model, warm_up
    return warm_up(load_model(name))


@st.cache_resource(show_spinner=False)
def _transform(name: str, sample_rate: int, items: tuple) -> Any:
    from earmark.transforms import get_transform
    return get_transform(name, sample_rate, **dict(items))


def get_transform(name: str, sample_rate: int, params: dict[str, Any]):
    return _transform(name, int(sample_rate), as_items(params))


# ---- audio in ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipView:
    """A decoded clip as the pages use it (NumPy wave, hash for cache keys)."""

    clip: Any            # earmark.audio.Clip
    wave: np.ndarray     # (L,) float32
    sample_rate: int
    name: str
    hash: str
    warnings: tuple[str, ...]

    @property
    def duration(self) -> float:
        return len(self.wave) / self.sample_rate


def _view(clip) -> ClipView:
    audio = need("audio")
    return ClipView(clip=clip, wave=to_numpy(clip.wave), sample_rate=int(clip.sample_rate), name=clip.name,
                    hash=audio.clip_hash(clip), warnings=tuple(getattr(clip, "warnings", ())))


@st.cache_data(show_spinner="Decoding the audio…", max_entries=32)
def decode(data: bytes, name: str, segment: tuple[float, float] | None = None) -> ClipView:
    """Decode uploaded/recorded bytes (any error is an AudioError with a sentence for a person)."""
    load_clip = need("audio", "load_clip")
    return _view(load_clip(data, name=name, max_seconds=60, segment=segment))


def list_examples() -> list[Any]:
    examples = optional("examples")
    if examples is None or not hasattr(examples, "list_examples"):
        return []
    return list(examples.list_examples())


def default_example_name() -> str | None:
    examples = optional("examples")
    if examples is None or not hasattr(examples, "default_example"):
        return None
    ex = examples.default_example()
    return getattr(ex, "name", ex)


@st.cache_data(show_spinner="Loading the example…", max_entries=32)
def example(name: str) -> ClipView:
    load = need("examples", "load_example")
    return _view(load(name))


def generator_kinds() -> tuple[str, ...]:
    examples = optional("examples")
    kinds = getattr(examples, "SIGNAL_KINDS", None) if examples else None
    return tuple(kinds) if kinds else ("tone", "chirp", "bursts", "noise", "mix")


@st.cache_data(show_spinner=False, max_entries=32)
def generate(kind: str, items: tuple) -> ClipView:
    """A teaching signal from ``earmark.examples.generate_signal`` (only the arguments it declares)."""
    import inspect

    gen = need("examples", "generate_signal")
    params = dict(items)
    accepted = inspect.signature(gen).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        params = {k: v for k, v in params.items() if k in accepted}
    out = gen(kind, **params)
    if not hasattr(out, "wave"):  # a bare waveform: wrap it as a Clip
        audio = need("audio")
        out = audio.Clip(wave=torch.as_tensor(out, dtype=torch.float32).flatten(),
                         sample_rate=int(params.get("sample_rate", 8000)), name=kind)
    return _view(out)


@st.cache_data(show_spinner=False, max_entries=64)
def prepared(clip_hash: str, _clip: Any, sample_rate: int, num_samples: int,
             offset: float | None) -> ClipView:
    """The clip resampled and cut to the model's input (``offset`` in s, ``None`` = centre)."""
    prepare = need("audio", "prepare")
    ready = prepare(_clip, sample_rate=sample_rate, num_samples=num_samples, policy="center",
                    offset_seconds=offset)
    return ClipView(clip=ready, wave=to_numpy(ready.wave), sample_rate=int(ready.sample_rate),
                    name=ready.name, hash=f"{clip_hash}@{sample_rate}:{num_samples}:{offset}",
                    warnings=tuple(getattr(ready, "warnings", ())))


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    audio = optional("audio")
    if audio is not None and hasattr(audio, "wav_bytes"):
        return audio.wav_bytes(torch.as_tensor(wave, dtype=torch.float32), int(sample_rate))
    import soundfile as sf  # fallback while earmark.audio.wav_bytes is missing
    buf = io.BytesIO()
    sf.write(buf, np.asarray(wave, dtype=np.float32), int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ---- prediction and explanation ----------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=256)
def predict(model_name: str, wave_key: str, _wave: np.ndarray) -> np.ndarray:
    """Class probabilities (C,) of ``model_name`` on a waveform at the model's rate and length."""
    model = get_model(model_name)
    from earmark.probe import Probe
    from earmark.transforms import get_transform as core_transform

    probe = Probe(model, core_transform("time", model.card.sample_rate), torch.as_tensor(_wave))
    return to_numpy(probe.probs)


@dataclass(frozen=True)
class Settings:
    """Everything that determines an explanation (the cache key)."""

    clip_hash: str
    clip_name: str
    model: str
    transform: str
    tparams: tuple
    explainer: str
    eparams: tuple
    target: int | None
    seed: int

    @property
    def key(self) -> tuple:
        return (self.clip_hash, self.model, self.transform, self.tparams, self.explainer, self.eparams,
                self.target, self.seed)


class ResultStore:
    """A small thread-safe LRU of explanations shared by all sessions of this server.

    Not ``st.cache_data``: that one records the progress-bar updates made while the function runs and
    cannot replay them on a cache hit (the bar lives outside the function). Keys are plain values
    (:attr:`Settings.key`), so the behaviour is the same: equal settings, instant answer.
    """

    def __init__(self, max_entries: int = 64):
        import threading
        from collections import OrderedDict

        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items


@st.cache_resource(show_spinner=False)
def results() -> ResultStore:
    return ResultStore()


def has_result(settings: Settings) -> bool:
    return settings.key in results()


def explain(settings: Settings, wave: np.ndarray, progress: ProgressFn | None = None,
            first_look: Callable[[torch.Tensor], None] | None = None):
    """Run the explainer (the slow part), or return the stored result for equal settings.

    ``first_look(saliency)`` gets the final map early from methods that can give it (IG, WAM-IG).
    """
    store = results()
    hit = store.get(settings.key)
    if hit is not None:
        return hit
    from earmark.explainers import explain as core_explain

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    exp = core_explain(model, torch.as_tensor(wave, dtype=torch.float32), transform, settings.target,
                       method=settings.explainer, seed=settings.seed, progress=progress, first_look=first_look,
                       **dict(settings.eparams))
    exp = exp.cpu()
    store.put(settings.key, exp)
    return exp


#: Widest display grid drawn in the browser (longer clips are averaged over blocks of columns).
MAX_COLUMNS = 1200


@st.cache_data(show_spinner=False, max_entries=64)
def display(settings: Settings, _wave: np.ndarray, _exp):
    """The :class:`earmark.display.DisplayGrid` of an explanation (cached on its settings)."""
    return display_map(settings, _wave, _exp.saliency, _exp.uncertainty)


def display_map(settings: Settings, wave: np.ndarray, saliency: torch.Tensor, uncertainty: torch.Tensor | None = None):
    """The display grid for a saliency map (and its uncertainty; zeros while it is not known yet)."""
    from earmark.display import display_grid

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    return display_grid(transform, wave, saliency, uncertainty, max_columns=MAX_COLUMNS)


def colour_scales(settings: Settings, grid, exp, *, reference: str = "auto", clip: bool = True) -> dict:
    """``{"saliency": ColourScale, "uncertainty": ColourScale}`` by the rules of :mod:`earmark.display`.

    ``reference="auto"`` takes the explainer's declared reference (FreqRISE and RELAX: the map's mean).
    """
    from earmark.display import CLIP_PERCENTILE, baseline_of, colour_scale, resolve_reference

    spec = explainer_specs()[settings.explainer]
    baseline = baseline_of(exp, spec) if exp is not None else None
    ref = resolve_reference(grid.saliency, spec, reference, baseline=baseline)
    pct = CLIP_PERCENTILE if clip else None
    return {"saliency": colour_scale(grid.saliency, reference=ref, baseline=baseline, clip_percentile=pct),
            "uncertainty": colour_scale(grid.uncertainty, what="uncertainty", clip_percentile=pct)}


def clip_span(clip_seconds: float, window_seconds: float, offset: float | None) -> tuple[float, float, float]:
    from earmark.display import clip_span as span
    return span(clip_seconds, window_seconds, offset=offset)


# ---- listening -----------------------------------------------------------------------------------

LISTEN_LABELS = {"original": "Original", "keep": "Keep top k %", "remove": "Remove top k %",
                 "soft": "Soft mask"}


@st.cache_data(show_spinner="Rendering the masked audio…", max_entries=64)
def listen(settings: Settings, _wave: np.ndarray, _exp, fraction: float, match: bool = True) -> dict:
    """``{kind: (wave (L,), probabilities (C,))}`` for original / keep / remove / soft."""
    listen_fn = need("sonify", "listen")
    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    x = torch.as_tensor(_wave, dtype=torch.float32)
    sal = _exp.saliency.to(x.device)
    waves = listen_fn(transform, x, sal, fraction, match=match)
    out = {}
    for kind, w in waves.items():
        arr = to_numpy(w).reshape(-1)
        out[kind] = (arr, predict(settings.model, f"{settings.key}|{kind}|{fraction}|{match}", arr))
    return out


@st.cache_data(show_spinner="Rendering the chosen region…", max_entries=64)
def listen_region(settings: Settings, _wave: np.ndarray, box: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The clip rebuilt from one time–frequency box of the display grid, and the model's answer on it.

    ``box`` = ``((t0, t1), (f0, f1) or None, (row0, row1) or None)``.
    """
    from earmark.display import region_image
    from earmark.sonify import keep_region

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    x = torch.as_tensor(_wave, dtype=torch.float32)
    ax = transform.axes(len(_wave))
    img = region_image(freqs=to_numpy(ax.freqs), times=to_numpy(ax.times), time_range=box[0], freq_range=box[1],
                       rows=box[2])
    wave = to_numpy(keep_region(transform, x, torch.as_tensor(img))).reshape(-1)
    return wave, predict(settings.model, f"{settings.key}|region|{box}", wave)


# ---- faithfulness --------------------------------------------------------------------------------

def _curve_scores(settings: Settings, wave: np.ndarray, saliency, target: int, steps: int) -> dict:
    """Deletion / insertion curves and the scores built on them for one map (see :func:`faithfulness`)."""
    mod = need("metrics.curves")
    from earmark.device import make_generator
    from earmark.probe import Probe

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    probe = Probe(model, transform, torch.as_tensor(wave, dtype=torch.float32), target=target)
    sal = saliency.to(probe.device)
    c = mod.curves(probe, sal, fractions=mod.fraction_grid(steps))
    scores = {"insertion AUC ↑": c.insertion_auc, "deletion AUC ↓": c.deletion_auc,
              "faithfulness ↑": c.faithfulness}
    if hasattr(mod, "single_point"):
        sp = mod.single_point(probe, sal, fraction=0.1, generator=make_generator(settings.seed, probe.device))
        scores.update({"I (keep 10 %) ↑": sp.I, "D (remove 10 %) ↓": sp.D, "RI (random keep)": sp.RI,
                       "RD (random remove)": sp.RD})
    return {"fractions": to_numpy(c.fractions), "deletion": to_numpy(c.deletion),
            "insertion": to_numpy(c.insertion), "scores": {k: float(v) for k, v in scores.items()}}


@st.cache_data(show_spinner="Scoring insertion and deletion…", max_entries=64)
def faithfulness(settings: Settings, _wave: np.ndarray, _exp, steps: int = 20) -> dict:
    """Deletion / insertion curves and scores from ``earmark.metrics.curves`` for one explanation.

    Returns:
        ``{"fractions": (K,), "deletion": (K,), "insertion": (K,), "scores": {name: float}}``.
    """
    return _curve_scores(settings, _wave, _exp.saliency, _exp.target, steps)


def energy_reference(settings: Settings, wave: np.ndarray, target: int, steps: int = 20) -> dict:
    """The same curves and scores for the model-free ``energy`` map of the clip in the same domain.

    Cached on the clip, model, transform, target and seed, not on the explainer (the map ignores it).
    """
    return _energy_reference(dataclasses.replace(settings, explainer="energy", eparams=()), wave, target, steps)


@st.cache_data(show_spinner="Scoring the energy reference…", max_entries=64)
def _energy_reference(settings: Settings, _wave: np.ndarray, target: int, steps: int) -> dict:
    from earmark.explainers import explain as core_explain

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    ref = core_explain(model, torch.as_tensor(_wave, dtype=torch.float32), transform, target, method="energy")
    return _curve_scores(settings, _wave, ref.saliency, target, steps)


# ---- export --------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def png(settings: Settings, _wave: np.ndarray, _exp, log_freq: bool, reference: str = "auto", clip: bool = True,
        dim_silent: bool = False, palette: str = "default") -> bytes:
    """A static PNG (matplotlib, server-side) of power / saliency / uncertainty, with the screen's colour rules."""
    from earmark.display import CLIP_PERCENTILE
    from earmark.plots import explanation_figure

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    fig = explanation_figure(transform, torch.as_tensor(_wave), _exp, log_freq=log_freq,
                             spec=explainer_specs()[settings.explainer],
                             reference=None if reference == "auto" else reference,
                             clip_percentile=CLIP_PERCENTILE if clip else None, dim_silent=dim_silent,
                             palette=palette,
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
    return ExplainCommand(clip_label, model=settings.model, transform=settings.transform,
                          explainer=settings.explainer, seed=settings.seed, target=settings.target,
                          settings=eset, tsettings=tset, offset=offset)


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


# ---- listening quiz ------------------------------------------------------------------------------

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
