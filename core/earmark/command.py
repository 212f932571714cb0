"""The arguments of ``earmark explain`` as data, the shell command that reproduces a result, its provenance.

:class:`ExplainCommand` is the CLI's argument model: the parser takes its defaults from it, the CLI builds
one from the parsed arguments, and the dashboard builds one from its settings, so both write the same
``command`` and the same provenance into their JSON.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields
from typing import Any


def format_settings(settings: dict[str, Any], flag: str) -> list[str]:
    """``{"n_steps": 64}`` → ``["--set n_steps=64"]`` (the inverse of the CLI's NAME=VALUE parsing)."""
    return [f"{flag} {shlex.quote(f'{k}={v}')}" for k, v in settings.items()]


@dataclass(frozen=True)
class ExplainCommand:
    """One ``earmark explain`` call.

    Attributes:
        clip: a file path or a bundled example's name.  model, transform, explainer: registered names.
        target: class index (``None`` = the prediction).  seed: generator seed.
        settings: explainer hyperparameters (``--set``).  tsettings: transform parameters (``--tset``).
        topk: percent kept / removed for listening.  policy: how a clip is fitted to the model's length.
        offset: start of the model's window in s (long clips).  window: the input length in s of a
        variable-length model (``None``: its default).  out: output folder.
    """

    clip: str
    model: str = "audionet-digits"
    transform: str = "stft"
    explainer: str = "ig"
    target: int | None = None
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    tsettings: dict[str, Any] = field(default_factory=dict)
    topk: float = 10.0
    policy: str = "center"
    offset: float | None = None
    window: float | None = None
    out: str = "earmark-out"
    at: float | None = None       # a moment of a long recording: the window centred there (``--at``)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field ``name`` (for the argument parser)."""
        f = next(f for f in fields(cls) if f.name == name)
        return f.default

    def shell(self) -> str:
        """The exact command line (settings that equal the defaults may be left out by the caller)."""
        parts = ["earmark", "explain", shlex.quote(self.clip), "--model", shlex.quote(self.model),
                 "--transform", self.transform, "--explainer", self.explainer, "--seed", str(self.seed)]
        if self.target is not None:
            parts += ["--target", str(self.target)]
        if self.offset is not None:
            parts += ["--offset", f"{self.offset:g}"]
        if self.window is not None:
            parts += ["--window", f"{self.window:g}"]
        if self.at is not None:
            parts += ["--at", f"{self.at:g}"]
        if self.topk != ExplainCommand.default("topk"):
            parts += ["--topk", f"{self.topk:g}"]
        if self.policy != ExplainCommand.default("policy"):
            parts += ["--policy", self.policy]
        parts += format_settings(self.tsettings, "--tset") + format_settings(self.settings, "--set")
        parts += ["--out", shlex.quote(self.out)]
        return " ".join(parts)


def provenance(command: ExplainCommand, *, labels, explanation, clip_name: str | None = None) -> dict[str, Any]:
    """What a saved explanation says about where it came from (the same keys from the CLI and the app).

    Args:
        command: the call that reproduces the result.
        labels: the model's class names.
        explanation: the :class:`~earmark.explanation.Explanation` (its prediction and target are named).
        clip_name: the clip's name when ``command.clip`` is a path.
    """
    predicted = explanation.meta.get("predicted")
    return {
        "clip": command.clip,
        "clip_name": clip_name or command.clip,
        "model": command.model,
        "labels": [str(label) for label in labels],
        "prediction": str(labels[predicted]) if predicted is not None else None,
        "target_label": str(labels[explanation.target]),
        "offset_s": command.offset,
        "window_s": command.window,
        "command": command.shell(),
    }
