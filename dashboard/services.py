"""Cached calls into ``earmark`` — the dashboard's only door to the maths.

Models and the job service live in ``st.cache_resource`` (one per server, shared across sessions);
decoded clips and predictions live in ``st.cache_data`` keyed on plain values. Explanations, listening
versions and faithfulness curves are **jobs** (:mod:`earmark.jobs`): submitted here, run by the server's
worker pool off the script thread, polled by the pages (``dashboard.live``), and kept in the service's
result cache keyed by their :class:`~earmark.jobs.JobSpec`, so returning to earlier settings is instant
and a result lands even when its page was left. Each session remembers its own jobs in its state.

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
from earmark.metrics import METRICS, MetricOptions

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

def training_message(name: str) -> str | None:
    """A sentence while a synthetic model is trained on first use (minutes), else ``None``."""
    from earmark.training.synthetic import DEFINITIONS, is_cached

    base, _ = split_model_key(name)
    if base not in DEFINITIONS or is_cached(base):
        return None
    return (f"Training the synthetic model '{base}' on first use: about two minutes on a CPU, once per server "
            "(the weights are cached for everyone after that)…")


def get_model(name: str):
    """The model, loaded once per server; a message while a synthetic model is trained first."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    message = training_message(name) if get_script_run_ctx() is not None else None
    if message is None:
        return _get_model(name)
    with st.spinner(message, show_time=True):
        return _get_model(name)


@st.cache_resource(show_spinner="Loading the model…")
def _get_model(name: str):
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
def decode(data: bytes, name: str, segment: tuple[float, float] | None = None,
           sample_rate: int | None = None) -> ClipView:
    """Decode uploaded/recorded bytes (any error is an AudioError with a sentence for a person).

    With ``sample_rate`` (the model's) the clip is kept, cached and played at that rate, mono, never at the
    file's: a 60 s upload then costs a few MB however many channels and samples per second it had.
    """
    return _view(audio.load_clip(data, name=name, max_seconds=60, segment=segment, sample_rate=sample_rate))


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


# ---- jobs: every slow computation runs on the server's worker pool ---------------------------------

@st.cache_resource(show_spinner=False)
def job_service():
    """The one :class:`earmark.jobs.JobService` of this server (shared, thread-safe; settings from
    ``EARMARK_WORKERS``, ``EARMARK_MAX_MODEL_PASSES``, ``EARMARK_MAX_QUEUE``...)."""
    from earmark.jobs import JobService, JobSettings
    return JobService(JobSettings.from_env())


#: Jobs a session remembers (its latest requests; finished results stay in the server's cache).
SESSION_JOBS = 16


def session_id() -> str:
    """This browser session's id (fair order and per-session limits in the queue)."""
    if "_session_id" not in st.session_state:
        import uuid
        st.session_state["_session_id"] = uuid.uuid4().hex
    return st.session_state["_session_id"]


def job_spec(settings: Settings, kind: str = "explanation", **options):
    """The :class:`earmark.jobs.JobSpec` of ``settings`` (raises ConfigError for a bad setting)."""
    from earmark.jobs import JobSpec
    spec = JobSpec.create(clip_hash=settings.clip_hash, model=settings.model, transform=settings.transform,
                          tparams=dict(settings.tparams), explainer=settings.explainer,
                          eparams=dict(settings.eparams), target=settings.target, seed=settings.seed)
    return spec if kind == "explanation" else spec.derived(kind, **options)


def _session_jobs() -> dict:
    return st.session_state.setdefault("_jobs", {})


def _remember(job):
    jobs = _session_jobs()
    jobs.pop(job.spec, None)
    jobs[job.spec] = job
    while len(jobs) > SESSION_JOBS:
        oldest = next((k for k, j in jobs.items() if j.finished), next(iter(jobs)))
        jobs.pop(oldest)
    return job


def submit(spec, work: Callable):
    """Queue ``work`` as this session's job for ``spec`` (or attach to an identical one); remembered in
    the session so that reruns, other pages and widget changes find it again."""
    return _remember(job_service().submit(spec, work, session=session_id()))


def session_job(spec):
    """This session's job for ``spec`` (any status), or ``None``."""
    return _session_jobs().get(spec)


def cancel(job) -> None:
    job.cancel(session_id())


def _spec_or_none(settings: Settings, kind: str = "explanation", **options):
    try:
        return job_spec(settings, kind, **options)
    except EarmarkError:
        return None


def has_result(settings: Settings) -> bool:
    return explanation(settings) is not None


def explanation(settings: Settings):
    """The final explanation for ``settings``: from the server's cache (any session computed it) or this
    session's finished job; ``None`` if there is none yet."""
    spec = _spec_or_none(settings)
    if spec is None:
        return None
    hit = job_service().result(spec)
    if hit is not None:
        return hit
    job = session_job(spec)
    return job.result if job is not None and job.status == "done" else None


def explanation_job(settings: Settings):
    """This session's job for the explanation of ``settings`` (queued, running or ended), or ``None``."""
    spec = _spec_or_none(settings)
    return None if spec is None else session_job(spec)


def submit_explanation(settings: Settings, wave: np.ndarray):
    """Queue the explanation (the slow part) on the worker pool; returns the :class:`earmark.jobs.Job`.

    Raises:
        EarmarkError: a bad setting, a request above ``max_model_passes``, or a full queue.
    """
    from earmark.jobs import explanation_work

    spec = job_spec(settings)
    model, transform = _model_and_transform(settings)
    return submit(spec, explanation_work(spec, model, torch.as_tensor(wave, dtype=torch.float32), transform))


def job_result(job, wait: float = 0.0):
    """``job.result`` once it is done (waiting up to ``wait`` s), else ``None``.

    Raises:
        EarmarkError: the job failed or was cancelled (its sentence).
    """
    if wait > 0 and not job.finished:
        job.wait(wait)
    if job.status == "done":
        return job.result
    if job.finished:
        raise EarmarkError(job.error or f"The computation ended as {job.status}.")
    return None


@st.cache_data(show_spinner=False, max_entries=64)
def display(settings: Settings, _wave: np.ndarray, _exp):
    """The :class:`earmark.display.DisplayGrid` of an explanation (cached on its settings)."""
    return display_map(settings, _wave, _exp.saliency, _exp.uncertainty)


def display_of(settings: Settings, wave: np.ndarray, exp):
    """The display grid of a final or a partial explanation (``meta["partial"]``: not cached)."""
    if exp.meta.get("partial"):
        return display_map(settings, wave, exp.saliency)
    return display(settings, wave, exp)


class _PartialFigures:
    """The last few partial-estimate figures, shared by every session watching the same job (thread-safe)."""

    def __init__(self, size: int = 32):
        import threading
        self.size, self.items, self.lock = size, [], threading.Lock()

    def get(self, exp, view: tuple, build: Callable):
        with self.lock:
            for e, v, fig in self.items:
                if e is exp and v == view:
                    return fig
        fig = build()
        with self.lock:
            self.items = ([(exp, view, fig)] + self.items)[: self.size]
        return fig


@st.cache_resource(show_spinner=False)
def _partial_figures() -> _PartialFigures:
    return _PartialFigures()


def partial_figure(exp, view: tuple, build: Callable):
    """``build()`` once per partial estimate ``exp`` (the same object for every watcher of a job) and view:
    the poll redraws twice a second, mostly the same estimate."""
    return _partial_figures().get(exp, view, build)


def display_map(settings: Settings, wave: np.ndarray, saliency: torch.Tensor, uncertainty: torch.Tensor | None = None):
    """The display grid for a saliency map (and its uncertainty; zeros while it is not known yet)."""
    from earmark.display import display_grid

    model = get_model(settings.model)
    transform = get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
    return display_grid(transform, wave, saliency, uncertainty)


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

def listen_job(settings: Settings, wave: np.ndarray, exp, fraction: float, match: bool = True):
    """Queue the listening versions of ``exp``; the job's result is ``{kind: (wave (L,), probabilities (C,))}``
    for original / keep / remove / soft, the probabilities by the model card's activation
    (:func:`earmark.workflow.listening`, the same as ``earmark explain``)."""
    from earmark.jobs import listening_work

    model, transform = _model_and_transform(settings)
    spec = job_spec(settings, "listening", fraction=float(fraction), match=bool(match))
    heard = listening_work(spec, model, torch.as_tensor(wave, dtype=torch.float32), transform, exp.saliency)

    def work(ctx) -> dict:
        return {kind: (to_numpy(w).reshape(-1), to_numpy(p)) for kind, (w, p) in heard(ctx).items()}

    return submit(spec, work)


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

#: The metrics shown beside the curves, in this order; labels and directions come from their MetricSpec.
CURVE_METRICS = ("insertion_auc", "deletion_auc", "faithfulness", "I", "D", "RI", "RD")
METRIC_OPTIONS = MetricOptions()


def _model_and_transform(settings: Settings):
    """The cached model and transform, fetched on the script thread (workers get the objects, not the caches)."""
    model = get_model(settings.model)
    return model, get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))


def _curve_scores(model, transform, settings: Settings, wave: np.ndarray, saliency, target: int, steps: int,
                  progress: ProgressFn | None = None) -> dict:
    """Deletion / insertion curves and the scores built on them for one map (see :func:`faithfulness_job`),
    with the metrics' titles as keys."""
    from earmark.workflow import faithfulness

    options = dataclasses.replace(METRIC_OPTIONS, steps=steps)
    # the random rankings are drawn from the explanation's seed itself
    out = faithfulness(model, transform, torch.as_tensor(wave, dtype=torch.float32), saliency, target,
                       seed=settings.seed, metrics=CURVE_METRICS, options=options, progress=progress)
    return {"fractions": to_numpy(out["fractions"]), "deletion": to_numpy(out["deletion"]),
            "insertion": to_numpy(out["insertion"]),
            "scores": {METRICS.get(m).title(options): v for m, v in out["scores"].items()}}


def faithfulness_job(settings: Settings, wave: np.ndarray, exp, steps: int = 20):
    """Queue the deletion / insertion curves and scores of ``exp`` (``earmark.metrics.curves``); the job's
    result is ``{"fractions": (K,), "deletion": (K,), "insertion": (K,), "scores": {name: float}}``."""
    saliency, target = exp.saliency, exp.target
    model, transform = _model_and_transform(settings)
    return submit(job_spec(settings, "faithfulness", steps=int(steps)),
                  lambda ctx: _curve_scores(model, transform, settings, wave, saliency, target, steps,
                                            progress=ctx.progress))


def energy_reference_job(settings: Settings, wave: np.ndarray, target: int, steps: int = 20):
    """The same curves and scores for the model-free ``energy`` map of the clip in the same domain.

    Keyed on the clip, model, transform, target and seed, not on the explainer (the map ignores it).
    """
    ref = dataclasses.replace(settings, explainer="energy", eparams=())
    model, transform = _model_and_transform(ref)

    def work(ctx) -> dict:
        from earmark.explainers import explain as core_explain

        e = core_explain(model, torch.as_tensor(wave, dtype=torch.float32), transform, target, method="energy")
        return _curve_scores(model, transform, ref, wave, e.saliency, target, steps, progress=ctx.progress)

    return submit(job_spec(ref, "faithfulness", steps=int(steps), target=int(target)), work)


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
