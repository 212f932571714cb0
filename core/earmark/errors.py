"""One error family for everything a person can get wrong.

Every message says what was wrong *and* what to do about it, so the CLI and the dashboard can show
``str(error)`` as it is, without a traceback.
"""

from __future__ import annotations


class EarmarkError(Exception):
    """Base class: a problem the user can fix. ``str(e)`` is a sentence meant for a person."""


class AudioError(EarmarkError):
    """The clip could not be read or is not usable (empty, undecodable, NaN, too long...)."""


class ClipTooLong(AudioError):
    """The clip is longer than the limit and no segment was chosen; choosing a segment fixes it."""


class ConfigError(EarmarkError):
    """An unknown name or an out-of-range setting (model, transform, explainer, hyperparameter)."""


class DataError(EarmarkError):
    """A data set folder or manifest is missing or malformed."""


class ModelError(EarmarkError):
    """A model cannot be loaded or does not fit the Earmark model contract."""


class NumericalError(EarmarkError):
    """A result is not finite (NaN or Inf): it is never reported as a success."""


class MapError(NumericalError):
    """An explanation whose map cannot be trusted: values that are not finite, or nothing to listen to."""
