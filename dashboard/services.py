"""Cached calls into ``earmark`` — the dashboard's only door to the maths.

Models live in ``st.cache_resource`` (one per server, shared across sessions); decoded clips, predictions,
explanations, listening audio and metric curves live in ``st.cache_data`` keyed on plain values (clip
hash, names, parameter tuples, seed), so returning to earlier settings is instant.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st
import torch

from earmark import audio, examples
from earmark.errors import EarmarkError, ModelError
from earmark.metrics import METRICS, MetricContext, MetricOptions, compute_metrics
from earmark.metrics import curves as metric_curves
from earmark.sonify import listen as core_listen

ProgressFn = Callable[[float, str], None]


def to_numpy(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().float().cpu().numpy()
    return np.asarray(v)


def as_items(params: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-independent key for a parameter dict."""
    return tuple(sorted((params or {}).items()))


# ---- registries --------------------------------------------------------------------------------

def model_names() -> list[str]:
    """Registered models, then the models found in ``$EARMARK_MODELS`` and this server's uploads (by path)."""
    from earmark.models import MODELS
    return MODELS.names() + list(disk_models()) + [p for p in uploaded_models() if p not in disk_models()]


#: A picker key for a variable-length model at a window the user picked: ``NAME#window=SAMPLES``.
WINDOW_MARK = "#window="


def model_key(name: str, window: int | None) -> str:
    return name if window is None else f"{name}{WINDOW_MARK}{int(window)}"


def split_model_key(key: str) -> tuple[str, int | None]:
    name, mark, window = key.partition(WINDOW_MARK)
    return (name, int(window)) if mark and window.isdigit() else (key, None)


def model_title(name: str) -> str:
    from earmark.models import MODELS
    name, window = split_model_key(name)
    if window is not None:
        return f"{model_title(name)}, window {window:,} samples"
    if name in MODELS:
        return MODELS.get(name).title
    found = {**disk_models(), **uploaded_models()}
    return found.get(name, Path(name).name)


#: Where a model's card JSON lives beside it; not a model of its own.
_MODEL_SUFFIXES = (".pt2", ".pt", ".ts", ".jit", ".onnx")


def models_folder() -> Path | None:
    """The folder named by ``$EARMARK_MODELS`` (set by whoever runs the server), if it exists."""
    import os
    value = os.environ.get("EARMARK_MODELS")
    if not value:
        return None
    folder = Path(value).expanduser()
    return folder if folder.is_dir() else None


def _scan(folder: Path, where: str) -> dict[str, str]:
    """path → picker title for every model-looking entry in ``folder`` (loading happens when picked)."""
    out: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            kind = ("Hugging Face" if (entry / "config.json").is_file() else
                    "SpeechBrain" if (entry / "hyperparams.yaml").is_file() else "folder")
        elif entry.suffix in _MODEL_SUFFIXES:
            kind = {".pt2": "torch.export", ".onnx": "ONNX"}.get(entry.suffix, "TorchScript")
        else:
            continue
        out[str(entry.resolve())] = f"{entry.name} ({kind}, {where})"
    return out


def disk_models() -> dict[str, str]:
    folder = models_folder()
    return _scan(folder, "from EARMARK_MODELS") if folder is not None else {}


# ---- model upload (off unless the server owner allows it) -------------------------------------------

#: Formats a stranger may upload: TorchScript and ONNX run no Python code (Hugging Face folders, entry
#: points and SpeechBrain YAML are for the server owner's own models folder).
UPLOAD_TYPES = ("pt", "onnx", "json")


def _setting(name: str, default: str | None = None) -> str | None:
    """A server setting: the environment variable ``EARMARK_<NAME>``, else ``st.secrets[name]``."""
    import os
    env = os.environ.get(f"EARMARK_{name.upper()}")
    if env is not None:
        return env
    try:
        value = st.secrets.get(name)
    except Exception:  # no secrets file: the default
        value = None
    return default if value is None else str(value)


def upload_allowed() -> bool:
    """``allow_model_upload``: off by default, since a shared server should not run strangers' models."""
    return str(_setting("allow_model_upload", "false")).strip().lower() in ("1", "true", "yes", "on")


def upload_limit_mb() -> float:
    try:
        return float(_setting("model_upload_mb", "50"))
    except ValueError:
        return 50.0


def upload_folder() -> Path:
    import tempfile
    folder = Path(_setting("model_uploads", None) or Path(tempfile.gettempdir()) / "earmark-model-uploads")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def uploaded_models() -> dict[str, str]:
    if not upload_allowed():
        return {}
    folder = upload_folder()
    out = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path, title in _scan(sub, "uploaded").items():
            out[path] = title
    return out


def save_upload(files: list[tuple[str, bytes]]) -> str:
    """Store an uploaded model file and its card JSON; returns the model's path (the picker's key).

    Raises:
        ModelError: uploads are off, a file type or size that is not allowed, or no card.
    """
    import hashlib

    from earmark.errors import ModelError

    if not upload_allowed():
        raise ModelError("This server does not take model uploads (allow_model_upload is off).")
    limit = upload_limit_mb()
    models = [(n, b) for n, b in files if Path(n).suffix.lower() in (".pt", ".onnx")]
    cards = [(n, b) for n, b in files if Path(n).suffix.lower() == ".json"]
    if len(models) != 1 or len(cards) != 1 or len(files) != 2:
        raise ModelError("Upload one model file (.pt TorchScript or .onnx) and its card (.json) together.")
    (name, data), (_, card) = models[0], cards[0]
    if len(data) > limit * 1e6:
        raise ModelError(f"{name} is {len(data) / 1e6:.1f} MB; this server takes models up to {limit:g} MB.")
    digest = hashlib.sha256(data + b"\0" + card).hexdigest()[:16]
    folder = upload_folder() / digest
    folder.mkdir(exist_ok=True)
    suffix = Path(name).suffix.lower()
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(name).stem)[:40] or "model"
    target = folder / f"{stem}{suffix}"
    target.write_bytes(data)
    target.with_suffix(".json").write_bytes(card)
    return str(target.resolve())


def transform_classes() -> dict[str, Any]:
    from earmark.transforms import TRANSFORMS
    return {name: TRANSFORMS.get(name) for name in TRANSFORMS.names()}


def explainer_specs() -> dict[str, Any]:
    from earmark.explainers import EXPLAINERS
    return {name: EXPLAINERS.get(name) for name in EXPLAINERS.names()}


# ---- models and transforms --------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading the model…")
def get_model(name: str):
    """The model, loaded and warmed up once per server. Raises ModelError/ConfigError for a person to read,
    whatever went wrong inside a user's model (a model that fails to load never breaks the page)."""
    from earmark.errors import ModelError
    from earmark.models import load_model, warm_up
    base, window = split_model_key(name)
    try:
        return warm_up(load_model(base, window=window))
    except EarmarkError:
        raise
    except Exception as exc:  # a user's model failing in a way its loader did not foresee
        text = str(exc).strip().splitlines()
        raise ModelError(f"The model {Path(name).name} could not be loaded ({type(exc).__name__}: "
                         f"{text[0][:200] if text else ''}).") from None


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
    return ClipView(clip=clip, wave=to_numpy(clip.wave), sample_rate=int(clip.sample_rate), name=clip.name,
                    hash=audio.clip_hash(clip), warnings=tuple(getattr(clip, "warnings", ())))


@st.cache_data(show_spinner="Decoding the audio…", max_entries=32)
def decode(data: bytes, name: str, segment: tuple[float, float] | None = None) -> ClipView:
    """Decode uploaded/recorded bytes (any error is an AudioError with a sentence for a person)."""
    return _view(audio.load_clip(data, name=name, max_seconds=60, segment=segment))


def list_examples() -> list[Any]:
    return list(examples.list_examples())


def default_example_name() -> str:
    return examples.DEFAULT_EXAMPLE


@st.cache_data(show_spinner="Loading the example…", max_entries=32)
def example(name: str) -> ClipView:
    return _view(examples.load_example(name))


@st.cache_data(show_spinner=False, max_entries=32)
def generate(kind: str, items: tuple) -> ClipView:
    """A teaching signal from ``earmark.examples.generate_signal`` (``items``: its :data:`SIGNAL_PARAMS`)."""
    params = dict(items)
    wave = examples.generate_signal(kind, **params)
    return _view(audio.Clip(wave=wave.to(torch.float32).flatten(),
                            sample_rate=int(params.get("sample_rate", 8000)), name=kind))


@st.cache_data(show_spinner=False, max_entries=64)
def prepared(clip_hash: str, _clip: Any, sample_rate: int, num_samples: int,
             offset: float | None) -> ClipView:
    """The clip resampled and cut to the model's input (``offset`` in s, ``None`` = centre)."""
    ready = audio.prepare(_clip, sample_rate=sample_rate, num_samples=num_samples, policy="center",
                    offset_seconds=offset)
    return ClipView(clip=ready, wave=to_numpy(ready.wave), sample_rate=int(ready.sample_rate),
                    name=ready.name, hash=f"{clip_hash}@{sample_rate}:{num_samples}:{offset}",
                    warnings=tuple(getattr(ready, "warnings", ())))


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    return audio.wav_bytes(torch.as_tensor(wave, dtype=torch.float32), int(sample_rate))


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
    exp = _to_cpu(exp)
    store.put(settings.key, exp)
    return exp


def _to_cpu(exp):
    import dataclasses
    return dataclasses.replace(
        exp, saliency=exp.saliency.detach().cpu(), uncertainty=exp.uncertainty.detach().cpu(),
        extras={k: v.detach().cpu() for k, v in exp.extras.items()})


@dataclass(frozen=True)
class Display:
    """What the figures need for one explanation, on the display grid (NumPy)."""

    saliency: np.ndarray      # (F, T)
    uncertainty: np.ndarray   # (F, T)
    power: np.ndarray         # (F, T)
    freqs: np.ndarray         # (F,)
    times: np.ndarray         # (T,)
    freq_edges: np.ndarray    # (F + 1,)
    row_labels: tuple[str, ...] | None
    bands: np.ndarray         # (F,) per-band importance
    duration: float


@st.cache_data(show_spinner=False, max_entries=64)
def display(settings: Settings, _wave: np.ndarray, _exp) -> Display:
    return display_map(settings, _wave, _exp.saliency, _exp.uncertainty)


def display_map(settings: Settings, wave: np.ndarray, saliency: torch.Tensor,
                uncertainty: torch.Tensor | None = None) -> Display:
    """The display grid for a saliency map (and its uncertainty; zeros while it is not known yet)."""
    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    length = len(wave)
    x = torch.as_tensor(wave, dtype=torch.float32)[None]
    ax = transform.axes(length)
    sal = saliency.detach().cpu().float()[None]
    unc = torch.zeros_like(sal) if uncertainty is None else uncertainty.detach().cpu().float()[None]
    return Display(
        saliency=to_numpy(transform.to_image(sal, length=length)[0]),
        uncertainty=to_numpy(transform.to_image(unc, length=length)[0]),
        power=to_numpy(transform.power_image(x)[0]),
        freqs=to_numpy(ax.freqs), times=to_numpy(ax.times), freq_edges=to_numpy(ax.freq_edges),
        row_labels=tuple(ax.row_labels) if ax.row_labels else None,
        bands=to_numpy(transform.band_sums(sal, length=length)[0]),
        duration=length / transform.sample_rate,
    )


# ---- listening -----------------------------------------------------------------------------------

LISTEN_LABELS = {"original": "Original", "keep": "Keep top k %", "remove": "Remove top k %",
                 "soft": "Soft mask"}


@st.cache_data(show_spinner="Rendering the masked audio…", max_entries=64)
def listen(settings: Settings, _wave: np.ndarray, _exp, fraction: float, match: bool = True) -> dict:
    """``{kind: (wave (L,), probabilities (C,))}`` for original / keep / remove / soft."""
    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    x = torch.as_tensor(_wave, dtype=torch.float32)
    sal = _exp.saliency.to(x.device)
    waves = core_listen(transform, x, sal, fraction, match=match)
    out = {}
    for kind, w in waves.items():
        arr = to_numpy(w).reshape(-1)
        out[kind] = (arr, predict(settings.model, f"{settings.key}|{kind}|{fraction}|{match}", arr))
    return out


# ---- faithfulness --------------------------------------------------------------------------------

#: The metrics shown beside the curves, in this order; labels and directions come from their MetricSpec.
CURVE_METRICS = ("insertion_auc", "deletion_auc", "faithfulness", "I", "D", "RI", "RD")
METRIC_OPTIONS = MetricOptions()


def _curve_scores(settings: Settings, wave: np.ndarray, saliency, target: int, steps: int) -> dict:
    """Deletion / insertion curves and the scores built on them for one map (see :func:`faithfulness`)."""
    from earmark.device import make_generator
    from earmark.probe import Probe

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    probe = Probe(model, transform, torch.as_tensor(wave, dtype=torch.float32), target=target)
    sal = saliency.to(probe.device)
    options = dataclasses.replace(METRIC_OPTIONS, steps=steps)
    ctx = MetricContext(probe, sal, seed=settings.seed, options=options)
    c = ctx.curves()
    # the random rankings are drawn from the explanation's seed itself (the page's RI/RD since round 1)
    ctx.cache["single_point"] = metric_curves.single_point(probe, sal, fraction=options.fraction,
                                                           generator=make_generator(settings.seed, probe.device))
    scores = {METRICS.get(m).title(options): v for m, v in compute_metrics(list(CURVE_METRICS), ctx).items()}
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
def png(settings: Settings, _wave: np.ndarray, _exp, log_freq: bool) -> bytes:
    """A static PNG (matplotlib, server-side) of power / saliency / uncertainty."""
    from earmark.plots import explanation_figure

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    fig = explanation_figure(transform, torch.as_tensor(_wave), _exp, log_freq=log_freq,
                             title=f"{settings.clip_name} · {settings.model} · {settings.transform} · "
                                   f"{settings.explainer} · class {_exp.target}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def npz_bytes(exp) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **exp.numpy())
    return buf.getvalue()


def json_bytes(exp) -> bytes:
    from earmark.explanation import _jsonable
    return json.dumps(exp.summary(), indent=2, default=_jsonable).encode()


def cli_command(settings: Settings, clip_label: str, offset: float | None = None) -> str:
    from earmark.cli.explain import reproduce_command
    tcls = transform_classes()[settings.transform]
    defaults_t = {p.name: p.default for p in tcls.params}
    spec = explainer_specs()[settings.explainer]
    defaults_e = {p.name: p.default for p in spec.params}
    tset = {k: v for k, v in settings.tparams if defaults_t.get(k) != v}
    eset = {k: v for k, v in settings.eparams if defaults_e.get(k) != v}
    model_name, window = split_model_key(settings.model)
    window_s = None if window is None else window / get_model(settings.model).card.sample_rate
    return reproduce_command(clip_label, model=model_name, transform=settings.transform,
                             explainer=settings.explainer, seed=settings.seed, target=settings.target,
                             settings=eset, tsettings=tset, offset=offset, window=window_s)
