"""Models for the app: discovery (registered, ``$EARMARK_MODELS``, uploads), loading once per server, the
transforms, and the model's answer on a clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from earmark.errors import EarmarkError, ModelError

from .common import Settings, as_items, to_numpy


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
    from earmark.models.loaders.card import card_title         # the card's title, where it gives one
    from earmark.models.loaders.cardcheck import scan_folder   # loops, broken links, FIFOs: skipped with a note

    entries, SCAN_NOTES[str(folder)] = scan_folder(folder, _MODEL_SUFFIXES)
    names = {".pt2": "torch.export", ".onnx": "ONNX"}
    out: dict[str, str] = {}
    for path, kind in entries:
        fmt = names.get(kind, "TorchScript") if kind.startswith(".") else kind
        title = card_title(path)
        out[str(path)] = f"{title} — {path.name} ({fmt}, {where})" if title else f"{path.name} ({fmt}, {where})"
    return out


#: folder → the entries its last scan skipped, each with the reason (shown by the model picker's help).
SCAN_NOTES: dict[str, list[str]] = {}


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


_PRIVATE_UPLOADS: list[Path] = []


def upload_folder() -> Path:
    """``model_uploads`` if the server owner set it, else a private folder made once per server process
    (``tempfile.mkdtemp``: a random name, mode 0700 — never a predictable path in the shared temp folder)."""
    configured = _setting("model_uploads", None)
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder
    if not _PRIVATE_UPLOADS or not _PRIVATE_UPLOADS[0].is_dir():
        from earmark.sandbox import private_folder
        _PRIVATE_UPLOADS[:] = [private_folder()]
    return _PRIVATE_UPLOADS[0]


def is_upload(path: str) -> bool:
    """Whether ``path`` lies in this server's upload folder (such a model runs in the sandbox)."""
    try:
        return upload_allowed() and Path(path).resolve().is_relative_to(upload_folder().resolve())
    except (OSError, RuntimeError, ValueError):
        return False


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
    from earmark.models import load_model, warm_up
    base, window = split_model_key(name)
    try:
        if is_upload(base):   # a visitor's model: loaded and run in a confined worker process
            from earmark.models import _windowed
            from earmark.sandbox import load_sandboxed
            return _windowed(load_sandboxed(base), window)
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


# ---- the model's answer ------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=256)
def predict(model_name: str, wave_key: str, _wave: np.ndarray) -> np.ndarray:
    """Class probabilities (C,) of ``model_name`` on a waveform at the model's rate and length."""
    model = get_model(model_name)
    from earmark.probe import Probe
    from earmark.transforms import get_transform as core_transform

    probe = Probe(model, core_transform("time", model.card.sample_rate), torch.as_tensor(_wave))
    return to_numpy(probe.probs)


def _model_and_transform(settings: Settings):
    """The cached model and transform, fetched on the script thread (workers get the objects, not the caches)."""
    model = get_model(settings.model)
    return model, get_transform(settings.transform, model.card.sample_rate, dict(settings.tparams))
