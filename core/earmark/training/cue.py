"""A planted shortcut: a faint tone (or click) added to the training clips of one class only.

``earmark train ... --plant-cue class=7,freq=3000,level=-15[,at=start|all][,kind=tone|click]`` makes a model
that can learn the cue instead of (or beside) the word — the recorder's beep that only the recordings of
one class carry. The cue is added to each training batch after augmentation, so its frequency and level
are exactly what the option says: a sinusoid at ``freq`` Hz whose RMS over the span it covers is ``level``
dB relative to the clip's RMS over the whole window (``at=all``: the whole window; ``at=start``: the first
:data:`START_SECONDS`). ``kind=click`` replaces the steady tone by short Hann-windowed bursts of the same
frequency (:data:`CLICK_SECONDS` long; one at the start, or one every :data:`CLICK_PERIOD_SECONDS`).

The same function plants the cue in evaluation clips (:func:`plant`), so a profile can be computed on data
that carries the cue as the training data did.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError

START_SECONDS = 0.25
#: appended to the name of a clip that carries a planted cue (:class:`CuedClips`).
CUED_SUFFIX = "+cue"
CLICK_SECONDS = 0.005
CLICK_PERIOD_SECONDS = 0.125


@dataclass(frozen=True)
class Cue:
    """What to plant and where.

    Attributes:
        label: class index whose clips get the cue.
        freq: tone frequency in Hz.
        level_db: tone RMS relative to the clip's RMS, in dB (negative: fainter than the clip).
        at: ``"all"`` (the whole window) or ``"start"`` (the first :data:`START_SECONDS`).
        kind: ``"tone"`` (steady sinusoid) or ``"click"`` (short bursts of the same frequency).
    """

    label: int
    freq: float
    level_db: float
    at: Literal["all", "start"] = "all"
    kind: Literal["tone", "click"] = "tone"

    def describe(self) -> str:
        where = "over the whole window" if self.at == "all" else f"in the first {START_SECONDS:g} s"
        what = "tone" if self.kind == "tone" else f"{CLICK_SECONDS * 1e3:g} ms clicks"
        return (f"a {self.freq:g} Hz {what} at {self.level_db:g} dB relative to the clip's RMS, {where}, "
                f"on the training clips of class index {self.label} only")

    def record(self) -> dict:
        return asdict(self)

    def span_s(self, duration: float) -> tuple[float, float]:
        """(start, end) in seconds of the window that the cue covers."""
        return (0.0, min(START_SECONDS, duration)) if self.at == "start" else (0.0, duration)


def parse_cue(text: str, *, num_classes: int, sample_rate: int) -> Cue:
    """``"class=7,freq=3000,level=-15,at=all,kind=tone"`` → :class:`Cue` (checked against the model's rate).

    Raises:
        ConfigError: a missing or unknown key, a value of the wrong kind or out of range.
    """
    fields: dict[str, str] = {}
    for part in str(text).split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--plant-cue takes key=value pairs such as class=7,freq=3000,level=-15; got '{part}'.")
        fields[key.strip().lower()] = value.strip()
    unknown = set(fields) - {"class", "freq", "level", "at", "kind"}
    if unknown:
        raise ConfigError(f"--plant-cue does not know {', '.join(sorted(unknown))}; use class, freq, level, at, kind.")
    missing = [k for k in ("class", "freq", "level") if k not in fields]
    if missing:
        raise ConfigError(f"--plant-cue needs {', '.join(missing)} (e.g. class=7,freq=3000,level=-15).")
    try:
        label, freq, level = int(fields["class"]), float(fields["freq"]), float(fields["level"])
    except ValueError:
        raise ConfigError("--plant-cue: class is a class index, freq a frequency in Hz and level a number of dB.") \
            from None
    if not 0 <= label < num_classes:
        raise ConfigError(f"--plant-cue class={label} is not a class index of this model (0 to {num_classes - 1}).")
    if not 0 < freq < sample_rate / 2:
        raise ConfigError(f"--plant-cue freq={freq:g} Hz must lie between 0 and the Nyquist frequency "
                          f"{sample_rate / 2:g} Hz.")
    if not math.isfinite(level) or not -80 <= level <= 20:
        raise ConfigError(f"--plant-cue level={level:g} dB must lie in [-80, 20] dB relative to the clip's RMS.")
    at, kind = fields.get("at", "all"), fields.get("kind", "tone")
    if at not in ("all", "start"):
        raise ConfigError(f"--plant-cue at={at} is not known; use at=all or at=start.")
    if kind not in ("tone", "click"):
        raise ConfigError(f"--plant-cue kind={kind} is not known; use kind=tone or kind=click.")
    return Cue(label=label, freq=freq, level_db=level, at=at, kind=kind)  # type: ignore[arg-type]


def cue_signal(cue: Cue, length: int, sample_rate: int, *, device=None, dtype=torch.float32) -> Tensor:
    """(length,) the cue at unit RMS over the span it covers (zero elsewhere)."""
    t = torch.arange(length, device=device, dtype=torch.float64) / sample_rate
    tone = torch.sin(2 * math.pi * cue.freq * t)
    env = torch.zeros(length, device=device, dtype=torch.float64)
    if cue.kind == "tone":
        stop = length if cue.at == "all" else min(length, int(round(START_SECONDS * sample_rate)))
        env[:stop] = 1.0
    else:
        burst = max(2, int(round(CLICK_SECONDS * sample_rate)))
        hann = torch.hann_window(burst, periodic=False, dtype=torch.float64, device=device)
        starts = [0] if cue.at == "start" else range(0, length, max(1, int(round(CLICK_PERIOD_SECONDS * sample_rate))))
        for s in starts:
            n = min(burst, length - s)
            env[s:s + n] = hann[:n]
    sig = tone * env
    span = env > 0
    rms = sig[span].pow(2).mean().sqrt()
    return (sig / rms.clamp(min=1e-12)).to(dtype)


def plant(waves: Tensor, labels: Tensor, cue: Cue, sample_rate: int) -> Tensor:
    """(B, L) clips with the cue added to those whose label is ``cue.label`` (others unchanged).

    The cue's RMS over its span is ``level_db`` relative to each clip's RMS over the whole window.
    """
    sig = cue_signal(cue, waves.shape[-1], sample_rate, device=waves.device, dtype=waves.dtype)
    rms = waves.pow(2).mean(dim=-1, keepdim=True).sqrt()
    gain = rms * 10 ** (cue.level_db / 20) * (labels == cue.label).to(waves.dtype)[:, None]
    return waves + gain * sig[None, :]


class CuedClips:
    """A data set whose clips of the cue's class carry the cue, as the training clips did.

    Wraps anything that iterates ``(name, wave, label)`` (:func:`earmark.data.datasets.open_dataset`); the
    clips of other classes pass unchanged. A cued clip's name gets :data:`CUED_SUFFIX`, so results stored
    by name (the profile's resume file) never mix a clip with and without the cue. Used to profile a
    planted-cue model on data like its training data.
    """

    def __init__(self, clips, cue: Cue, sample_rate: int):
        self.clips, self.cue, self.sample_rate = clips, cue, int(sample_rate)
        base = getattr(clips, "description", "") or "clips"
        self.description = (f"{base}; the clips of class index {cue.label} carry the planted cue "
                            f"({cue.freq:g} Hz {cue.kind}, {cue.level_db:g} dB re clip RMS, at={cue.at}), as in training")

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        for item in self.clips:
            name, wave, label = item[0], item[1], int(item[2])
            if label == self.cue.label:
                wave = plant(wave.reshape(1, -1).float(), torch.tensor([label]), self.cue, self.sample_rate)[0]
                name = f"{name}{CUED_SUFFIX}"
            yield name, wave, label
