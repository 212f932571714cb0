"""Declared hyperparameters: one source of truth for defaults, ranges, CLI flags and dashboard sliders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .errors import ConfigError


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
    """

    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    log: bool = False
    step: float | None = None

    @property
    def kind(self) -> type:
        if self.choices is not None:
            return type(self.default)
        return type(self.default)

    def coerce(self, value: Any) -> Any:
        """Cast ``value`` to this parameter's type and check its range.

        Raises:
            ConfigError: wrong type, outside the range, or not among the choices.
        """
        kind = self.kind
        try:
            if kind is bool:
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                        raise ValueError(value)
                    value = low in ("1", "true", "yes", "on")
                else:
                    value = bool(value)
            elif kind is int:
                as_float = float(value)
                if as_float != int(as_float):
                    raise ValueError(value)
                value = int(as_float)
            elif kind is float:
                value = float(value)
            else:
                value = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"'{self.name}' must be a {kind.__name__}, got {value!r}. {self.help}"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"'{self.name}' must be one of {', '.join(map(str, self.choices))}; got {value!r}."
            )
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ConfigError(
                f"'{self.name}' must lie in [{self.low}, {self.high}]; got {value!r}. {self.help}"
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
