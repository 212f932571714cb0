"""A class profile computed in a background thread, for the app: progress, partial profiles, cancel.

The app submits, polls and draws; all the maths stays here. ``partial()`` aggregates the rows computed so far
(the profile fills in as clips are explained); ``result`` holds the final :class:`~earmark.profiles.ClassProfiles`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..errors import EarmarkError
from . import aggregate, profile
from .grid import make_grid


class Cancelled(Exception):
    """Raised inside the worker thread when the person cancels."""


class ProfileJob:
    """Run :func:`earmark.profiles.profile` on a thread.

    Args:
        model: as for :func:`~earmark.profiles.profile`, or a model name / path (loaded on the thread).
        clips: a data set, or the keyword arguments of :func:`earmark.data.datasets.open_dataset` without
            ``card`` (opened on the thread), plus an optional ``plant_cue`` spec (``--plant-cue``).
        n_clips: number of clips when ``clips`` is not a data set yet (for the progress before it opens).
        **kwargs: the keyword arguments of :func:`~earmark.profiles.profile` (``explainer``, ``transform``, ...).

    Attributes:
        status: ``running``, ``done``, ``failed`` or ``cancelled``.  done, total: units.
        error: one sentence when it failed.  result: the profiles when done.
    """

    def __init__(self, model, clips, *, n_clips: int | None = None, **kwargs: Any):
        self.model, self.clips, self.kwargs = model, clips, kwargs
        self.status, self.error, self.result = "running", "", None
        count = n_clips if isinstance(clips, dict) else len(clips)
        self.done, self.total = 0, (count or 0) * (1 if isinstance(kwargs.get("explainer", "ig"), str)
                                                   else len(kwargs.get("explainer")))
        self.started = time.monotonic()
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="earmark-profile")
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or ``timeout`` seconds); whether it ended."""
        self._thread.join(timeout)
        return self.finished

    def _progress(self, done: int, total: int, eta, label: str) -> None:
        self.done, self.total = done, total
        if self._cancel.is_set():
            raise Cancelled

    def _on_row(self, row: dict) -> None:
        with self._lock:
            self._rows.append(row)

    def _open(self) -> None:
        if isinstance(self.model, str):
            from ..models import load_model

            self.model = load_model(self.model)
        if isinstance(self.clips, dict):
            from ..data.datasets import open_dataset

            spec = dict(self.clips)
            cue = spec.pop("plant_cue", None)
            clips = open_dataset(card=self.model.card, **spec)
            if cue:
                from ..training.cue import CuedClips, parse_cue

                card = self.model.card
                clips = CuedClips(clips, parse_cue(cue, num_classes=len(card.labels), sample_rate=card.sample_rate),
                                  card.sample_rate)
            self.clips = clips

    def _run(self) -> None:
        try:
            self._open()
            self.result = profile(self.model, self.clips, progress=self._progress, on_row=self._on_row, **self.kwargs)
            self.status = "done"
        except Cancelled:
            self.status = "cancelled"
        except EarmarkError as exc:
            self.error, self.status = str(exc), "failed"
        except Exception as exc:  # a failure in a worker thread must reach the page as a sentence
            self.error, self.status = f"The profile failed: {type(exc).__name__}: {exc}", "failed"

    def partial(self, explainer: str | None = None) -> dict | None:
        """``{label: statistics}`` of ``explainer`` (default the first) over the rows so far, or ``None``."""
        names = self.kwargs.get("explainer", "ig")
        name = explainer or (names if isinstance(names, str) else names[0])
        with self._lock:
            rows = [r for r in self._rows if r["explainer"] == name]
        if not rows or isinstance(self.model, str):
            return None
        from ..transforms import get_transform

        card = self.model.card
        domain = get_transform(self.kwargs.get("transform", "stft"), card.sample_rate)
        grid = make_grid(domain, int(card.num_samples), bands=self.kwargs.get("bands", "auto"),
                         n_bands=self.kwargs.get("n_bands", 16), n_times=self.kwargs.get("n_times", 32))
        from ..explainers import EXPLAINERS

        classes, _, _ = aggregate(rows, labels=card.labels, grid=grid, by=self.kwargs.get("by", "true"),
                                  seed=self.kwargs.get("seed", 0), centre=EXPLAINERS.get(name).family == "sampling")
        return {"classes": classes, "band_names": grid.band_names, "rows": len(rows)}


__all__ = ["Cancelled", "ProfileJob"]
