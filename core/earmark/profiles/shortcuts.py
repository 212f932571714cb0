"""Shortcut flags on class profiles, and their effects measured by intervention.

A flag is a (class, band, time span) the model's relevance points at beyond what the sound explains:

* ``band`` — a band whose relevance share is high (its bootstrap interval above 0, at least
  :data:`MIN_SHARE` × the uniform share) and at least :data:`RATIO` × its energy share; ``one-class`` is
  added when the other classes give that band at most a third of it (a narrow band in one class only).
* ``edge`` — the first or last :data:`EDGE_SHARE` of the clip holds at least :data:`EDGE_MIN` of the
  relevance and :data:`RATIO` × its energy.
* ``silence`` — time bins that are silent (below −30 dB of the clip's loudest bin) hold at least
  :data:`EDGE_MIN` of the relevance.

Each flag is then *measured*: the band/span is removed from the class's clips (a band-stop in the STFT: the
bins of the band, in the frames of the span, set to zero; silence is filled with faint white noise) and the
clips are re-scored. ``effect`` gives the accuracy and the mean class probability before and after, with a
bootstrap interval on the change (for a band flag with a time span, also ``band_all_time``: the band removed
over the whole clip); ``confirmed`` is true when the probability drops by at least
:data:`MIN_DROP` (or the accuracy by :data:`MIN_ACC_DROP`), the interval excludes 0 and at least
:data:`MIN_CLIPS` clips were measured. For band flags the
*sensitivity* view adds a tone at the band's strongest frequency in the class's clips (−20 dB re the clip's RMS) to clips of the other classes
and reports how often they are then called this class: what adding the band would do, the question to ask
when the profiled clips may not carry the cue at all. The ``energy`` explainer's relevance *is* the energy,
so it cannot raise a band flag: it is the control.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from .grid import mean_ci

RATIO = 3.0
MIN_SHARE = 1.5
EDGE_SHARE = 0.1
EDGE_MIN = 0.15
SPAN_MASS = 0.8
MIN_DROP = 0.05
MIN_ACC_DROP = 0.1
#: fewer clips than this cannot confirm a flag (a bootstrap interval over 2 clips means little).
MIN_CLIPS = 5
SENSITIVITY_DB = -20.0
SILENCE_FILL_DB = -30.0


# ---- detection ----------------------------------------------------------------------------------

def _span(row: Tensor, mass: float = SPAN_MASS) -> tuple[int, int]:
    """Shortest run of bins [start, stop) that holds ``mass`` of the row's positive relevance."""
    pos = row.clamp(min=0)
    total = float(pos.sum())
    n = row.numel()
    if total <= 0:
        return 0, n
    csum = torch.cat([torch.zeros(1, dtype=pos.dtype), pos.cumsum(0)])
    best = (0, n)
    for start in range(n):
        stop = int(torch.searchsorted(csum, csum[start] + mass * total - 1e-12))
        if stop <= n and stop - start < best[1] - best[0]:
            best = (start, max(stop, start + 1))
    return best


def find_flags(result) -> list[dict[str, Any]]:
    """Every flag of every explainer in ``result`` (a :class:`~earmark.profiles.ClassProfiles`), strongest
    first; ``effect`` is ``None`` and ``confirmed`` false until :func:`measure_flags` runs."""
    grid = result.grid
    nb, nt = grid.n_bands, grid.n_times
    nyq = float(grid.band_edges[-1])
    full = [round(float(grid.band_edges[0]), 1), round(nyq, 1)]
    flags = []
    for e in result.explainers:
        stats = result.classes[e]
        labels = list(stats)
        bands = {l: torch.tensor(stats[l]["band"]["mean"]) for l in labels}
        for label in labels:
            s = stats[label]
            R, lo = bands[label], torch.tensor(s["band"]["low"])
            E = torch.tensor(s["band_energy"]["mean"])
            others = [bands[o] for o in labels if o != label]
            other = torch.stack(others).median(0).values if others else torch.zeros(nb)
            for b in range(nb):
                r, en = float(R[b]), float(E[b])
                if not (float(lo[b]) > 0 and r >= MIN_SHARE / nb and r >= RATIO * en):
                    continue
                kinds = ["band"]
                if others and r >= 3 * max(float(other[b]), 0.25 / nb):
                    kinds.append("one-class")
                row = torch.tensor(s["grid"][b])
                start, stop = _span(row)
                span = None if (stop - start) >= 0.75 * nt else grid.span_s(start, stop)
                flags.append(_flag(e, label, s["index"], kinds, b, grid.band_hz(b), span, r, en, r - en,
                                   f"{r:.1%} of the relevance on {grid.band_names[b]}, which holds {en:.1%} of the "
                                   f"energy" + (f"; other classes give it {float(other[b]):.1%}" if "one-class" in kinds else "")))
            k = max(1, int(round(EDGE_SHARE * nt)))
            t_mean, t_low = torch.tensor(s["time"]["mean"]), torch.tensor(s["time"]["low"])
            t_en = torch.tensor(s["time_energy"]["mean"])
            for where, sl in (("first", slice(0, k)), ("last", slice(nt - k, nt))):
                r, en = float(t_mean[sl].sum()), float(t_en[sl].sum())
                if float(t_low[sl].sum()) > 0 and r >= EDGE_MIN and r >= RATIO * en:
                    span = grid.span_s(sl.start, sl.stop)
                    flags.append(_flag(e, label, s["index"], ["edge"], None, full, span, r, en, r - en,
                                       f"{r:.1%} of the relevance in the {where} {span[1] - span[0]:.2g} s, which hold "
                                       f"{en:.1%} of the energy"))
            r, r_lo = s["silence"]["mean"][0], s["silence"]["low"][0]
            en = s["silence_energy"]["mean"][0]
            if r_lo > 0 and r >= EDGE_MIN and r >= RATIO * en:
                flags.append(_flag(e, label, s["index"], ["silence"], None, full, None, r, en, r - en,
                                   f"{r:.1%} of the relevance on silent frames ({s['silent_share_of_time']:.0%} of "
                                   "the time), which hold almost no energy"))
    flags.sort(key=lambda f: -f["strength"])
    return flags


def _flag(explainer, label, index, kinds, band, band_hz, time_s, rel, energy, strength, reason) -> dict:
    return {"class": label, "class_index": int(index), "explainer": explainer, "kind": kinds,
            "band": band, "band_hz": band_hz, "time_s": time_s, "relevance_share": round(rel, 5),
            "energy_share": round(energy, 5), "strength": round(strength, 5), "reason": reason,
            "effect": None, "confirmed": False}


# ---- interventions ------------------------------------------------------------------------------

def stft_size(sample_rate: int) -> int:
    """FFT size of the interventions: the power of two nearest 32 ms."""
    return 2 ** max(4, round(math.log2(0.032 * sample_rate)))


def band_stop(waves: Tensor, sample_rate: int, band_hz: Sequence[float], time_s: Sequence[float] | None = None
              ) -> Tensor:
    """(B, L) → (B, L) with the STFT bins of ``band_hz`` in the frames of ``time_s`` set to zero.

    The band is widened by the Hann window's main-lobe half-width (2 bins) on each side, so a tone just inside
    an edge is removed with its leakage. A band narrower than one bin removes the bin nearest its centre. The
    Hann STFT (32 ms, hop ¼) is inverted by overlap-add to the same length, so a band-stop over nothing
    returns the clip.
    """
    n_fft = stft_size(sample_rate)
    hop = n_fft // 4
    window = torch.hann_window(n_fft, device=waves.device, dtype=waves.dtype)
    z = torch.stft(waves, n_fft, hop, window=window, center=True, return_complex=True)   # (B, F, T)
    freqs = torch.fft.rfftfreq(n_fft, 1 / sample_rate).to(waves.device)
    lobe = 2 * sample_rate / n_fft
    lo, hi = float(band_hz[0]), float(band_hz[1])
    fmask = (freqs >= lo - lobe) & (freqs <= hi + lobe)
    if not bool(fmask.any()):
        fmask[int((freqs - (lo + hi) / 2).abs().argmin())] = True
    times = torch.arange(z.shape[-1], device=waves.device) * hop / sample_rate
    tmask = torch.ones_like(times, dtype=torch.bool) if time_s is None else \
        (times >= float(time_s[0])) & (times <= float(time_s[1]))
    keep = ~(fmask[:, None] & tmask[None, :])
    return torch.istft(z * keep, n_fft, hop, window=window, center=True, length=waves.shape[-1])


def fill_silence(waves: Tensor, *, generator: torch.Generator, level_db: float = SILENCE_FILL_DB,
                 frame: int = 256) -> Tensor:
    """(B, L) → (B, L): silent frames (below −30 dB of the loudest frame) filled with white noise at
    ``level_db`` re the clip's RMS — the padding is no longer digital silence."""
    b, length = waves.shape
    pad = (-length) % frame
    x = torch.nn.functional.pad(waves, (0, pad)).reshape(b, -1, frame)
    energy = x.pow(2).mean(-1)
    silent = energy < 1e-3 * energy.max(-1, keepdim=True).values
    rms = waves.pow(2).mean(-1).sqrt()
    noise = torch.randn(x.shape, generator=generator, dtype=waves.dtype).to(waves.device)
    noise = noise * (rms * 10 ** (level_db / 20))[:, None, None] * silent[..., None]
    return (x + noise).reshape(b, -1)[:, :length]


def add_tone(waves: Tensor, sample_rate: int, freq: float, level_db: float = SENSITIVITY_DB) -> Tensor:
    """(B, L) → (B, L) plus a sinusoid at ``freq`` Hz, ``level_db`` re each clip's RMS."""
    t = torch.arange(waves.shape[-1], device=waves.device, dtype=torch.float64) / sample_rate
    tone = (math.sqrt(2) * torch.sin(2 * math.pi * freq * t)).to(waves.dtype)
    rms = waves.pow(2).mean(-1, keepdim=True).sqrt()
    return waves + rms * 10 ** (level_db / 20) * tone


@torch.no_grad()
def class_probs(model, waves: Tensor, *, batch_size: int | None = None) -> Tensor:
    """(B, L) → (B, C) softmax probabilities, in batches, on the model's device, returned on the CPU."""
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    size = batch_size or 64
    return torch.cat([torch.softmax(model(waves[i:i + size].to(dev)).float(), -1).cpu()
                      for i in range(0, waves.shape[0], size)])


def measure(model, waves: Tensor, class_index: int, changed: Tensor, *, seed: int = 0,
            batch_size: int | None = None) -> dict[str, Any]:
    """Effect of an intervention on clips of one class: accuracy (share called ``class_index``) and mean
    probability of the class before and after, with a bootstrap interval on the mean change.

    Args:
        waves: (n, L) the class's clips.  changed: (n, L) the same clips after the intervention.
    """
    before, after = class_probs(model, waves, batch_size=batch_size), class_probs(model, changed, batch_size=batch_size)
    p0, p1 = before[:, class_index], after[:, class_index]
    hit0 = (before.argmax(-1) == class_index).double()
    hit1 = (after.argmax(-1) == class_index).double()
    mean, low, high = mean_ci((p1 - p0).double(), generator=torch.Generator().manual_seed(int(seed)))
    effect = {"clips": int(waves.shape[0]),
              "accuracy_before": round(float(hit0.mean()), 4), "accuracy_after": round(float(hit1.mean()), 4),
              "accuracy_change": round(float(hit1.mean() - hit0.mean()), 4),
              "score_before": round(float(p0.mean()), 4), "score_after": round(float(p1.mean()), 4),
              "score_change": round(float(mean), 4), "score_change_ci": [round(float(low), 4), round(float(high), 4)]}
    return effect


def is_confirmed(effect: dict) -> bool:
    """The intervention cost the class: probability down by ≥ :data:`MIN_DROP` (or accuracy by
    ≥ :data:`MIN_ACC_DROP`) and the interval on the change excludes 0."""
    drop = effect["score_change"] <= -MIN_DROP or effect["accuracy_change"] <= -MIN_ACC_DROP
    return bool(drop and effect["score_change_ci"][1] < 0 and effect.get("clips", MIN_CLIPS) >= MIN_CLIPS)


def intervene(flag: dict, waves: Tensor, sample_rate: int, *, seed: int = 0) -> tuple[Tensor, str]:
    """The flag's intervention applied to (n, L) clips, and a sentence saying what was done."""
    if "silence" in flag["kind"]:
        changed = fill_silence(waves, generator=torch.Generator().manual_seed(int(seed)))
        return changed, f"silent frames filled with white noise at {SILENCE_FILL_DB:g} dB re the clip's RMS"
    changed = band_stop(waves, sample_rate, flag["band_hz"], flag["time_s"])
    lo, hi = flag["band_hz"]
    span = "the whole clip" if flag["time_s"] is None else f"{flag['time_s'][0]:g}–{flag['time_s'][1]:g} s"
    lobe = 2 * sample_rate / stft_size(sample_rate)
    return changed, (f"STFT band-stop {lo:g}–{hi:g} Hz (± {lobe:g} Hz main lobe) over {span} "
                     f"(n_fft {stft_size(sample_rate)})")


def _loudest_in_band(waves: Tensor, sample_rate: int, band_hz: Sequence[float]) -> float:
    """Frequency (Hz) of the class clips' strongest rFFT bin inside the band (its centre when it is empty)."""
    spectrum = torch.fft.rfft(waves.double(), dim=-1).abs().pow(2).mean(0)
    freqs = torch.fft.rfftfreq(waves.shape[-1], 1 / sample_rate).to(spectrum.dtype)
    inside = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    if not bool(inside.any()):
        return (band_hz[0] + band_hz[1]) / 2
    return float(freqs[inside][spectrum[inside].argmax()])


def measure_flags(result, model, clips, *, seed: int = 0, max_clips: int | None = 50,
                  batch_size: int | None = None) -> None:
    """Fill in ``effect``, ``confirmed`` and (band flags) ``sensitivity`` of every flag of ``result``,
    in place. The same (class, band, span) measured once serves every explainer that flagged it."""
    wanted = {f["class"] for f in result.flags}
    limit = max_clips or 10**9
    members = {label: result.clips[label][:limit] for label in result.clips}
    needed = {n for label in wanted for n in members.get(label, [])}
    others_pool = [n for label, names in members.items() for n in names[:max(1, limit // max(1, len(members) - 1))]]
    needed |= set(others_pool)
    waves: dict[str, Tensor] = {}
    for item in clips:
        if item[0] in needed:
            waves[item[0]] = item[1].reshape(-1).float()
    rate = int(model.card.sample_rate)
    cache: dict = {}
    for flag in result.flags:
        label, c = flag["class"], flag["class_index"]
        names = [n for n in members.get(label, []) if n in waves]
        key = (label, tuple(flag["band_hz"]), tuple(flag["time_s"] or ()), "silence" in flag["kind"])
        if key not in cache:
            if not names:
                cache[key] = (None, None)
                continue
            x = torch.stack([waves[n] for n in names])
            changed, how = intervene(flag, x, rate, seed=seed)
            effect = measure(model, x, c, changed, seed=seed, batch_size=batch_size)
            effect["intervention"] = how
            if "band" in flag["kind"] and flag["time_s"] is not None:   # the band over the whole clip, too
                whole = measure(model, x, c, band_stop(x, rate, flag["band_hz"]), seed=seed, batch_size=batch_size)
                effect["band_all_time"] = {k: whole[k] for k in ("clips", "accuracy_after", "accuracy_change",
                                                                 "score_after", "score_change", "score_change_ci")}
            sens = None
            if "band" in flag["kind"]:
                rest = [n for n in others_pool if n in waves and n not in set(result.clips.get(label, []))][:limit]
                if rest:
                    y = torch.stack([waves[n] for n in rest])
                    centre = _loudest_in_band(x, rate, flag["band_hz"])
                    p0 = class_probs(model, y, batch_size=batch_size).argmax(-1)
                    p1 = class_probs(model, add_tone(y, rate, centre), batch_size=batch_size).argmax(-1)
                    sens = {"clips": len(rest), "added": f"tone at {centre:.0f} Hz, {SENSITIVITY_DB:g} dB re clip RMS",
                            "called_class_before": round(float((p0 == c).double().mean()), 4),
                            "called_class_after": round(float((p1 == c).double().mean()), 4)}
            cache[key] = (effect, sens)
        effect, sens = cache[key]
        flag["effect"] = effect
        flag["confirmed"] = effect is not None and (is_confirmed(effect) or (
            "band_all_time" in effect and is_confirmed(effect["band_all_time"])))
        if sens is not None:
            flag["sensitivity"] = sens


__all__ = ["add_tone", "band_stop", "class_probs", "fill_silence", "find_flags", "intervene", "is_confirmed",
           "measure", "measure_flags", "stft_size"]
