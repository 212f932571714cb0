"""Declared hyperparameters: one source of truth for defaults, ranges, CLI flags and dashboard sliders."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .errors import ConfigError


def _show(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter.

    Attributes:
        name: keyword name of the function argument.
        default: the paper's default.
        help: one line for a person.
        low, high: inclusive numeric range (``None`` for choices and booleans).
        choices: allowed values for a categorical parameter.
        log: a slider should move on a log scale.
        step: slider step for numbers.
        labels: names people use for some choices (``{"log_prob": "log-probability"}``); the rest show as is.
    """

    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    log: bool = False
    step: float | None = None
    labels: Mapping[Any, str] | None = field(default=None, hash=False)

    def label(self, value: Any) -> str:
        """The name a person reads for ``value`` (:attr:`labels`, else ``str(value)``)."""
        return (self.labels or {}).get(value, str(value))

    @property
    def kind(self) -> type:
        if self.choices is not None:
            return type(self.default)
        return type(self.default)

    def _range_text(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"[{low}, {high}]"

    def coerce(self, value: Any) -> Any:
        """Cast ``value`` to this parameter's type and check its range.

        Numbers must be finite (NaN passes no range check, and ``int(inf)`` overflows, so both are refused
        here with the parameter's range); booleans are not numbers; integers must be whole.

        Raises:
            ConfigError: wrong type, not finite, outside the range, or not among the choices.
        """
        kind = self.kind
        shown = _show(value)
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        wrong_type = ConfigError(f"'{self.name}' must be {article} {kind.__name__}, got {shown}. {self.help}")
        if kind in (int, float):
            if isinstance(value, bool) or isinstance(value, (bytes, bytearray)):
                raise wrong_type
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
                raise wrong_type
        try:
            if kind is bool:
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                        raise ValueError(value)
                    value = low in ("1", "true", "yes", "on")
                elif isinstance(value, (bool, int)) and value in (0, 1):
                    value = bool(value)
                else:
                    raise ValueError(value)
            elif kind is int and isinstance(value, numbers.Integral):
                value = int(value)
            elif kind in (int, float):
                try:
                    as_float = float(value)
                except OverflowError:  # an integer too large for a float
                    as_float = math.inf
                if not math.isfinite(as_float):
                    if self.choices is not None:
                        raise ConfigError(f"'{self.name}' must be one of {', '.join(map(str, self.choices))}; "
                                          f"got {shown}.")
                    raise ConfigError(
                        f"'{self.name}' must be a finite number in {self._range_text()}; got {shown}. {self.help}"
                    )
                if kind is int:
                    text = value.strip() if isinstance(value, str) else ""
                    if text.lstrip("+-").isdigit():   # exact, also beyond float precision
                        value = int(text)
                    elif as_float != int(as_float):
                        raise ValueError(value)
                    else:
                        value = int(as_float)
                else:
                    value = as_float
            else:
                value = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise wrong_type from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"'{self.name}' must be one of {', '.join(map(str, self.choices))}; got {shown}."
            )
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ConfigError(
                f"'{self.name}' must lie in {self._range_text()}; got {_show(value)}. {self.help}"
            )
        return value


def resolve(params: Sequence[Param], given: Mapping[str, Any] | None, *, owner: str) -> dict[str, Any]:
    """Fill defaults and validate ``given`` against the declaration.

    Raises:
        ConfigError: a name that ``owner`` does not declare, or a bad value.
    """
    given = dict(given or {})
    known = {p.name: p for p in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(
            f"{owner} has no setting {', '.join(map(repr, unknown))}. "
            f"Known settings: {', '.join(known) or 'none'}."
        )
    return {p.name: p.coerce(given[p.name]) if p.name in given else p.default for p in params}


@dataclass(frozen=True)
class Registry:
    """A name → spec table with a friendly error for unknown names."""

    kind: str
    items: dict[str, Any] = field(default_factory=dict)

    def register(self, name: str, spec: Any) -> Any:
        if name in self.items:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self.items[name] = spec
        return spec

    def get(self, name: str) -> Any:
        try:
            return self.items[name]
        except KeyError:
            raise ConfigError(
                f"Unknown {self.kind} '{name}'. Choose one of: {', '.join(self.items)}."
            ) from None

    def names(self) -> list[str]:
        return list(self.items)

    def __contains__(self, name: object) -> bool:
        return name in self.items

    def __iter__(self):
        return iter(self.items.values())
