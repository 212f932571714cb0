"""The key of a job: :class:`JobSpec` (what determines a result: for caching, merging and provenance)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from ..explainers import EXPLAINERS
from ..params import resolve
from ..transforms import TRANSFORMS

#: What a job computes.
KINDS: tuple[str, ...] = ("explanation", "faithfulness", "listening")

Items = tuple[tuple[str, Any], ...]


def _items(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Items:
    """A hashable, order-independent form of a parameter dict."""
    return tuple(sorted(dict(params or {}).items()))



@dataclass(frozen=True)
class JobSpec:
    """Everything that determines a job's result: the key for caching, merging and provenance.

    Make one with :meth:`create` (which validates and fills in the declared defaults); the fields are
    plain hashable values.

    Attributes:
        kind: ``"explanation"``, ``"faithfulness"`` (curves and scores of the explanation the other fields
            name) or ``"listening"`` (keep / remove / soft audio of that explanation).
        clip_hash: identifies the waveform exactly as the model hears it (rate, length, window).
        model: registered model name (or a path a loader understands).
        transform, tparams: the domain and its resolved parameters (sorted ``(name, value)`` pairs).
        explainer, eparams: the method and its resolved hyperparameters.
        target: explained class (``None`` = the predicted class).  seed: seed of the random generator.
        options: kind-specific settings (faithfulness: ``steps``; listening: ``fraction``, ``match``).
    """

    kind: str
    clip_hash: str
    model: str
    transform: str
    tparams: Items
    explainer: str
    eparams: Items
    target: int | None = None
    seed: int | None = 0
    options: Items = ()

    @classmethod
    def create(cls, kind: str = "explanation", *, clip_hash: str, model: str, transform: str,
               tparams: Mapping[str, Any] | Items | None = None, explainer: str,
               eparams: Mapping[str, Any] | Items | None = None, target: int | None = None,
               seed: int | None = 0, options: Mapping[str, Any] | Items | None = None) -> "JobSpec":
        """A validated spec with every declared parameter filled in.

        Raises:
            ConfigError: unknown kind, transform, explainer or parameter, or a value out of its range.
        """
        if kind not in KINDS:
            raise ConfigError(f"Unknown job kind '{kind}'. Use one of: {', '.join(KINDS)}.")
        tcls = TRANSFORMS.get(transform)
        espec = EXPLAINERS.get(explainer)
        tp = resolve(tcls.params, dict(tparams or {}), owner=f"Transform '{transform}'")
        ep = resolve(espec.params, dict(eparams or {}), owner=f"Explainer '{explainer}'")
        return cls(kind=kind, clip_hash=str(clip_hash), model=str(model), transform=transform, tparams=_items(tp),
                   explainer=explainer, eparams=_items(ep), target=None if target is None else int(target),
                   seed=None if seed is None else int(seed), options=_items(options))

    @property
    def contrast(self) -> int | None:
        """The explanation's second class B ("target rather than B"), kept by the jobs derived from it."""
        return dict(self.options).get("contrast")

    def _kept(self) -> dict[str, Any]:
        return {} if self.contrast is None else {"contrast": self.contrast}

    def derived(self, kind: str, **options: Any) -> "JobSpec":
        """A job on this spec's explanation: ``spec.derived("faithfulness", steps=20)``."""
        if kind not in KINDS:
            raise ConfigError(f"Unknown job kind '{kind}'. Use one of: {', '.join(KINDS)}.")
        return dataclasses.replace(self, kind=kind, options=_items({**self._kept(), **options}))

    @property
    def explanation(self) -> "JobSpec":
        """The explanation job this spec is about (itself for an explanation; its contrast kept)."""
        return self if self.kind == "explanation" else dataclasses.replace(self, kind="explanation",
                                                                            options=_items(self._kept()))

    def provenance(self) -> dict[str, Any]:
        """A JSON-ready record of the request (what produced a result)."""
        return {"kind": self.kind, "clip_hash": self.clip_hash, "model": self.model, "transform": self.transform,
                "transform_params": dict(self.tparams), "explainer": self.explainer,
                "explainer_params": dict(self.eparams), "target": self.target, "seed": self.seed,
                **({"options": dict(self.options)} if self.options else {})}

    def describe(self) -> str:
        """One short line for a person: ``freqrise in stft (seed 0)``."""
        what = {"explanation": "", "faithfulness": "faithfulness of ", "listening": "listening to "}[self.kind]
        return f"{what}{self.explainer} in {self.transform} (seed {self.seed})"



__all__ = ["Items", "JobSpec", "KINDS"]
