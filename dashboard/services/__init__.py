"""Cached calls into ``earmark`` — the dashboard's only door to the maths.

Models and the job service live in ``st.cache_resource`` (one per server, shared across sessions);
decoded clips and predictions live in ``st.cache_data`` keyed on plain values. Explanations, listening
versions and faithfulness curves are **jobs** (:mod:`earmark.jobs`): submitted here, run by the server's
worker pool off the script thread, polled by the pages (``dashboard.live``), and kept in the service's
result cache keyed by their :class:`~earmark.jobs.JobSpec`, so returning to earlier settings is instant
and a result lands even when its page was left. Each session remembers its own jobs in its state.

The package, by idea: :mod:`~dashboard.services.models` (discovery, upload, loading, the model's answer),
:mod:`~dashboard.services.clips` (audio in), :mod:`~dashboard.services.jobs` (explanation, listening and
faithfulness jobs), :mod:`~dashboard.services.display` (screen grids, colour scales, regions),
:mod:`~dashboard.services.export` (PNG, command, npz, JSON) and :mod:`~dashboard.services.quiz`. The pages
use the names exported here as ``sv.X``; the maths is :mod:`earmark.workflow` and :mod:`earmark.display`.
"""

from __future__ import annotations

from earmark.errors import EarmarkError

from .clips import ClipView, decode, default_example_name, example, generate, list_examples, prepared, wav_bytes
from .common import ProgressFn, Settings, as_items, to_numpy
from .display import (clip_interval, clip_span, colour_scales, display, display_map, display_of, full_grid,
                      listen_region, partial_figure)
from .export import cli_command, command, json_bytes, npz_bytes, png
from .jobs import (CURVE_METRICS, METRIC_OPTIONS, SESSION_JOBS, cancel, energy_reference_job, explanation,
                   explanation_job, faithfulness_job, has_result, job_result, job_service, job_spec, listen_job,
                   partial_key, pin, session_id, session_job, show_jobs, stop, submit, submit_explanation)
from .models import (SCAN_NOTES, UPLOAD_TYPES, WINDOW_MARK, disk_models, is_upload, explainer_specs, get_model, get_transform, model_key,
                     model_names, model_title, models_folder, predict, save_upload, split_model_key,
                     training_message, transform_classes, upload_allowed, upload_folder, upload_limit_mb,
                     uploaded_models)
from .quiz import quiz_clip, quiz_store

__all__ = ["CURVE_METRICS", "ClipView", "EarmarkError", "METRIC_OPTIONS", "ProgressFn", "SESSION_JOBS", "Settings",
    "SCAN_NOTES", "UPLOAD_TYPES", "WINDOW_MARK", "is_upload", "as_items", "cancel", "cli_command", "clip_interval", "clip_span", "colour_scales", "command",
    "decode", "default_example_name", "disk_models", "display", "display_map", "display_of", "energy_reference_job",
    "example", "explainer_specs", "explanation", "explanation_job", "faithfulness_job", "full_grid", "generate", "get_model",
    "get_transform", "has_result", "job_result", "job_service", "job_spec", "json_bytes", "list_examples",
    "listen_job", "listen_region", "model_key", "model_names", "model_title", "models_folder", "npz_bytes",
    "partial_figure", "png", "predict", "prepared", "quiz_clip", "quiz_store", "save_upload", "session_id",
    "session_job", "split_model_key", "partial_key", "pin", "show_jobs", "stop", "submit", "submit_explanation", "to_numpy", "training_message",
    "transform_classes", "upload_allowed", "upload_folder", "upload_limit_mb", "uploaded_models", "wav_bytes"]
