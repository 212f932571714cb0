"""Class profiles: what a model relies on for each class across a data set, and a shortcut detector.

One map explains one clip; a profile reads many. :func:`profile` explains every clip of a data set with one
or more explainers (the evaluation's units, resume file and engines: local or Ray), reduces each map to a
band × time grid (:mod:`.grid`) beside the clip's own energy on the same grid, and aggregates per class
(true or predicted):

* relevance share per frequency band and per time bin (absolute, and relative to the clip's onset), each
  with a bootstrap interval over the class's clips, beside the class's **energy** share on the same grid;
* the agreement of the explainers (rank correlation of their band profiles, per class);
* shortcut flags (:mod:`.shortcuts`) — a band used far beyond its energy share, reliance on silence or on
  the first/last frames — each measured by intervention (remove the band/span from the class's clips and
  re-score); a flag without a measured effect is unconfirmed;
* listening (:mod:`.listen`): per class the prototypes (clips with the most concentrated relevance) and a
  class-level keep/remove filter (the class's mean band relevance as a mask) for any clip.

Each (clip, explainer) row is appended to ``OUT/profile_units.jsonl`` the moment it is computed, keyed by
a hash of every setting that changes it, so an interrupted run resumes and ends equal to an uninterrupted
one. Maps are explained for the clip's true class (``by="true"``) or for the class the model predicts
(``by="predicted"``), and grouped by the same class.

Example:
    >>> result = profile(model, clips, explainer=["ig", "freqrise"], transform="stft", out="runs/p")  # doctest: +SKIP
    >>> result.flags[0]["class"], result.flags[0]["band_hz"]                                        # doctest: +SKIP
    ('7', [2588.8, 3004.4])
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..errors import ConfigError
from .grid import Grid, make_grid, mean_ci, spearman

UNITS_FILE = "profile_units.jsonl"
#: a time bin is silent when its energy is below this share of the clip's loudest bin (−30 dB).
SILENCE_RATIO = 1e-3
#: the onset is the first time bin whose energy reaches this share of the clip's loudest bin (−10 dB).
ONSET_RATIO = 0.1
#: prototypes: share of the grid's cells whose |relevance| measures concentration.
TOP_CELLS = 0.1


@dataclass(frozen=True)
class ProfileOptions:
    """How maps are reduced and grouped (part of every unit's key).

    Attributes:
        by: ``"true"`` (explain and group by the true class) or ``"predicted"``.
        bands: ``auto``, ``rows``, ``mel`` or ``octave`` (:func:`earmark.profiles.grid.make_grid`).
        n_bands: mel bands on a fine grid.  n_times: time bins at most.
    """

    by: str = "true"
    bands: str = "auto"
    n_bands: int = 16
    n_times: int = 32

    def __post_init__(self):
        if self.by not in ("true", "predicted"):
            raise ConfigError(f"by is 'true' or 'predicted', not '{self.by}'.")


def _rounded(t: torch.Tensor) -> list:
    """Nested lists of 7-significant-digit floats: what is written is exactly what is aggregated."""
    t = t.detach().to("cpu", torch.float64)
    if t.dim() <= 1:
        return [float(f"{v:.7g}") for v in t.reshape(-1).tolist()]
    return [_rounded(v) for v in t]


def profile_unit(model, unit, work, transform) -> dict[str, Any]:
    """One (clip, explainer): explain the target class and reduce map and energy to the profile grid.

    The ``compute`` of :class:`earmark.engines.Work` for profiles (module level, so Ray workers can run it).
    """
    from ..explainers import explain

    opts: ProfileOptions = work.options
    wave = unit.wave.reshape(-1)
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        probs = torch.softmax(model(wave[None].to(dev)).float(), -1)[0].cpu()
    predicted = int(probs.argmax())
    target = int(unit.label) if opts.by == "true" else predicted
    started = time.perf_counter()
    exp = explain(model, wave, transform, target, method=unit.explainer, seed=unit.seed,
                  batch_size=work.batch_size, **work.params[unit.explainer])
    length = int(wave.shape[-1])
    grid = make_grid(transform, length, bands=opts.bands, n_bands=opts.n_bands, n_times=opts.n_times)
    image = transform.to_image(exp.saliency.detach()[None].float(), length=length)
    energy = transform.power_image(wave[None].to(exp.saliency.device).float())
    return {"target": target, "predicted": predicted, "correct": predicted == int(unit.label),
            "prob_target": float(f"{float(probs[target]):.7g}"),
            "seconds": round(time.perf_counter() - started, 4),
            "relevance": _rounded(grid.reduce(image)[0]), "energy": _rounded(grid.reduce(energy)[0])}


# ---- the result ---------------------------------------------------------------------------------

@dataclass
class ClassProfiles:
    """Profiles of one data set for one model, domain and grouping, for one or more explainers.

    Attributes:
        labels: class names.  explainers: explainer names (``energy`` is a model-free control).
        grid: the band × time grid.  by: ``true`` / ``predicted``.  transform: domain name.
        description: which data the profile was computed on.  model: the model's name.
        classes: ``{explainer: {label: statistics}}`` (see :func:`aggregate`).
        agreement: ``{label: {"a|b": rank correlation of band profiles}}``.
        clips: ``{label: [clip names]}`` in data-set order.  rows: ``{explainer: [row]}``.
        flags: shortcut flags, strongest first (:mod:`.shortcuts`).  prototypes: ``{label: [clip names]}``.
        computed: units computed by this call (the rest came from the units file).  failures: sentences.
        paths: files written.
    """

    labels: tuple[str, ...]
    explainers: tuple[str, ...]
    grid: Grid
    by: str
    transform: str
    description: str
    model: str
    classes: dict
    agreement: dict
    clips: dict
    rows: dict
    flags: list = field(default_factory=list)
    prototypes: dict = field(default_factory=dict)
    computed: int = 0
    failures: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def band_profile(self, label: str, explainer: str | None = None) -> torch.Tensor:
        """(n_bands,) mean relevance share per band of class ``label``."""
        return torch.tensor(self.classes[explainer or self.explainers[0]][label]["band"]["mean"])

    def peak_band(self, label: str, explainer: str | None = None) -> int:
        """Index of the band with the largest mean relevance share for class ``label``."""
        return int(self.band_profile(label, explainer).argmax())

    def to_dict(self) -> dict:
        """JSON-ready: grid, per-class statistics, agreement, flags, prototypes, settings."""
        return {
            "model": self.model, "data": self.description, "transform": self.transform, "by": self.by,
            "explainers": list(self.explainers), "labels": list(self.labels),
            "bands": {"edges_hz": [round(float(v), 2) for v in self.grid.band_edges],
                      "names": list(self.grid.band_names)},
            "times": {"edges_s": [round(float(v), 5) for v in self.grid.time_edges], "duration_s": self.grid.duration},
            "flags": self.flags, "agreement": self.agreement, "prototypes": self.prototypes,
            "clips_per_class": {k: len(v) for k, v in self.clips.items()},
            "classes": self.classes, "settings": self.settings, "failures": self.failures,
        }


def _stat(x: torch.Tensor, gen: torch.Generator) -> dict:
    mean, low, high = mean_ci(x, generator=gen)
    return {"mean": _rounded(mean), "low": _rounded(low), "high": _rounded(high)}


def _onset_bin(energy_time: torch.Tensor) -> int:
    peak = float(energy_time.max())
    if peak <= 0:
        return 0
    return int(torch.nonzero(energy_time >= ONSET_RATIO * peak)[0])


def aggregate(rows: Sequence[Mapping[str, Any]], *, labels: Sequence[str], grid: Grid, by: str = "true",
              seed: int = 0, centre: bool = False) -> tuple[dict, dict, dict]:
    """Per-class statistics of one explainer's rows.

    Each clip's relevance grid is divided by its total |relevance| (signed shares, |shares| sum to 1) and
    its energy grid by its total energy, so every clip weighs the same. With ``centre`` (mask-sampling
    explainers such as FreqRISE, whose map is the mean score *when a cell is kept*) the typical cell's value
    (the median over the grid of each cell's mean) is subtracted first, so a cell that does not matter gets
    about 0 rather than the average score.

    Returns:
        ``(classes, clips, concentration)``: ``classes[label]`` holds ``band``, ``time``, ``onset``
        (relevance per band / time bin / time bin relative to the onset, each ``{mean, low, high}``), the same
        for energy (``band_energy``, ``time_energy``, ``onset_energy``), ``grid`` and ``grid_energy`` (mean
        shares, n_bands × n_times), ``silence`` and ``silence_energy`` (share in silent bins), ``onset_offsets_s``
        and ``n``; ``clips[label]`` the clip names; ``concentration[clip]`` the share of |relevance| in the top
        :data:`TOP_CELLS` of the clip's cells.
    """
    gen = torch.Generator().manual_seed(int(seed))
    nt = grid.n_times
    groups: dict[int, list] = {}
    for row in rows:
        key = int(row["label"]) if by == "true" else int(row["predicted"])
        groups.setdefault(key, []).append(row)
    classes, clips, concentration = {}, {}, {}
    dt = grid.duration / nt
    offsets = [round((k - (nt - 1)) * dt, 5) for k in range(2 * nt - 1)]
    for c in sorted(groups):
        group = groups[c]
        rel = torch.tensor([r["relevance"] for r in group], dtype=torch.float64)      # (n, nb, nt)
        en = torch.tensor([r["energy"] for r in group], dtype=torch.float64)
        if centre:      # subtract the typical (median) image cell's value; the grid sums cells: count them
            counts = grid.reduce(torch.ones(1, grid.rows.numel(), grid.cols.numel())).clamp(min=1)
            typical = (rel / counts).flatten(1).median(1).values[:, None, None]
            rel = rel - typical * counts
        rel = rel / rel.abs().sum((1, 2), keepdim=True).clamp(min=1e-30)
        en = en / en.sum((1, 2), keepdim=True).clamp(min=1e-30)
        en_t = en.sum(1)                                                                # (n, nt)
        silent = en_t < SILENCE_RATIO * en_t.max(-1, keepdim=True).values
        onset_rel = torch.full((len(group), 2 * nt - 1), float("nan"), dtype=torch.float64)
        onset_en = onset_rel.clone()
        for i in range(len(group)):
            o = _onset_bin(en_t[i])
            onset_rel[i, nt - 1 - o:2 * nt - 1 - o] = rel[i].sum(0)
            onset_en[i, nt - 1 - o:2 * nt - 1 - o] = en_t[i]
        flat = rel.abs().reshape(len(group), -1)
        k = max(1, int(round(TOP_CELLS * flat.shape[1])))
        conc = flat.topk(k, dim=1).values.sum(1)
        for r, v in zip(group, conc):
            concentration[str(r["clip"])] = float(v)
        covered = ~torch.isnan(onset_rel).all(0)
        label = str(labels[c])
        classes[label] = {
            "index": c, "n": len(group), "correct": sum(bool(r["correct"]) for r in group),
            "band": _stat(rel.sum(2), gen), "band_energy": _stat(en.sum(2), gen),
            "time": _stat(rel.sum(1), gen), "time_energy": _stat(en_t, gen),
            "onset_offsets_s": [o for o, keep in zip(offsets, covered.tolist()) if keep],
            "onset": _nan_stat(onset_rel[:, covered]), "onset_energy": _nan_stat(onset_en[:, covered]),
            "grid": _rounded(rel.mean(0)), "grid_energy": _rounded(en.mean(0)),
            "silence": _stat((rel.sum(1) * silent).sum(1), gen),
            "silence_energy": _stat((en_t * silent).sum(1), gen),
            "silent_share_of_time": round(float(silent.double().mean()), 4),
        }
        clips[label] = [str(r["clip"]) for r in group]
    return classes, clips, concentration


def _nan_stat(x: torch.Tensor) -> dict:
    """Mean ± 1.96 standard errors over the clips that cover each offset (t-style interval)."""
    ok = ~torch.isnan(x)
    n = ok.sum(0).clamp(min=1).double()
    filled = torch.where(ok, x, torch.zeros_like(x))
    mean = filled.sum(0) / n
    var = (torch.where(ok, x - mean, torch.zeros_like(x)) ** 2).sum(0) / (n - 1).clamp(min=1)
    half = 1.96 * (var / n).sqrt()
    return {"mean": _rounded(mean), "low": _rounded(mean - half), "high": _rounded(mean + half),
            "n": [int(v) for v in ok.sum(0)]}


def agreement(classes: Mapping[str, Mapping[str, Any]], explainers: Sequence[str]) -> dict:
    """``{label: {"a|b": Spearman ρ of the two explainers' band profiles}}`` for every pair."""
    out: dict = {}
    pairs = [(a, b) for i, a in enumerate(explainers) for b in explainers[i + 1:]]
    labels = [k for k in classes.get(explainers[0], {})] if explainers else []
    for label in labels:
        out[label] = {}
        for a, b in pairs:
            if label in classes[a] and label in classes[b]:
                rho = spearman(torch.tensor(classes[a][label]["band"]["mean"]),
                               torch.tensor(classes[b][label]["band"]["mean"]))
                out[label][f"{a}|{b}"] = None if rho != rho else round(rho, 4)
    return out


# ---- the run ------------------------------------------------------------------------------------

def profile(model, clips, *, explainer: str | Sequence[str] = "ig", transform: str = "stft", by: str = "true",
            out: str | Path | None = None, seed: int = 0, overrides: Mapping[str, Mapping[str, Any]] | None = None,
            bands: str = "auto", n_bands: int = 16, n_times: int = 32, batch_size: int | None = None,
            engine=None, model_source: str | None = None,
            progress: Callable[[int, int, "float | None", str], None] | None = None,
            intervene: bool = True, intervention_clips: int | None = 50, prototypes: int = 3,
            listen: bool = True, figures: bool = True, title: str = "",
            on_row: Callable[[dict], None] | None = None) -> ClassProfiles:
    """Class profiles of ``clips`` for ``model`` with each explainer, the shortcut flags and their effects.

    Args:
        model: the classifier.
        clips: a data set from :func:`earmark.data.datasets.open_dataset` (iterates ``(name, wave, label)``).
        explainer: one explainer name or several (``energy`` adds the model-free control).
        transform: the domain the maps are computed in.
        by: ``"true"`` or ``"predicted"``: which class is explained and grouped by.
        out: folder for the units file (resume), ``profile.json``, ``report.md``, figures and WAVs;
            ``None`` keeps everything in memory.
        seed: base seed (each clip's seed comes from it and its name; bootstrap and interventions too).
        overrides: ``{explainer or transform: {setting: value}}``.
        bands, n_bands, n_times: the grid (:func:`earmark.profiles.grid.make_grid`).
        batch_size: items per model call.  engine: :mod:`earmark.engines` engine (default: this process).
        model_source: name or path that rebuilds the model in a Ray worker (default: the card's name).
        progress: ``progress(done, total, eta_s, label)`` after every unit.
        intervene: measure each flag's effect (remove the band/span from the class's clips, re-score).
        intervention_clips: at most this many clips per class (and of other classes) per intervention.
        prototypes: clips per class with the most concentrated relevance.
        listen: write prototype and class-filter WAVs under ``out/listen``.  figures: write PNG figures.
        title: a line describing the data (default: the data set's description).
        on_row: ``on_row(row)`` with every (clip, explainer) row, reused or computed, as it becomes known
            (partial profiles: :func:`aggregate` the rows so far).

    Returns:
        :class:`ClassProfiles`.

    Raises:
        ConfigError: unknown names or bad settings (checked before any work starts).
    """
    from ..engines import Unit, Work
    from ..evaluate import (clip_seed, explainer_settings, read_results, run_units, settings_id,
                            split_overrides)
    from ..explainers import EXPLAINERS
    from ..transforms import get_transform

    names = [explainer] if isinstance(explainer, str) else list(explainer)
    if not names:
        raise ConfigError("Give at least one explainer.")
    opts = ProfileOptions(by=by, bands=bands, n_bands=int(n_bands), n_times=int(n_times))
    ex_over, tr_over = split_overrides(overrides or {})
    params = {e: explainer_settings(e, ex_over.get(e)) for e in names}
    card = model.card
    domain = get_transform(transform, card.sample_rate, **tr_over.get(transform, {}))
    for e in names:
        spec = EXPLAINERS.get(e)
        if not spec.supports(transform):
            raise ConfigError(f"{spec.title} works in {', '.join(spec.domains or ())}, not '{transform}'; "
                              "pick another domain or explainer.")
    if len(clips) == 0:
        raise ConfigError("The data set holds no clips to profile.")
    grid = make_grid(domain, int(card.num_samples), bands=bands, n_bands=n_bands, n_times=n_times)
    ids = {e: settings_id({"kind": "profile", "model": card.name, "explainer": e, "params": params[e],
                           "transform": transform, "transform_settings": domain.settings,
                           "options": asdict(opts), "seed": seed}) for e in names}
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    units_path = out_path / UNITS_FILE if out_path is not None else None
    done = read_results(units_path) if units_path is not None else {}
    rows: dict[str, list[tuple[int, dict]]] = {e: [] for e in names}
    todo = []
    order_of: dict[str, int] = {}
    for c, item in enumerate(clips):
        name, wave, label = item[0], item[1], int(item[2])
        order_of[name] = c
        for p, e in enumerate(names):
            key = (name, e, transform, ids[e])
            if key in done:
                rows[e].append((c, done[key]))
                if on_row is not None:
                    on_row(done[key])
            else:
                todo.append(Unit(c * len(names) + p, name, label, wave, e, transform, clip_seed(seed, name)))
    total = len(clips) * len(names)
    report = progress or (lambda *a: None)
    finished = total - len(todo)
    report(finished, total, None, f"{finished} reused from {UNITS_FILE}" if finished else "starting")
    work = Work(model=model, model_source=model_source or card.name, transforms={transform: dict(domain.settings)},
                params=params, metrics=[], options=opts, batch_size=batch_size, compute=profile_unit)
    finished_rows, failures = run_units(
        todo, work, engine=engine, total=total, results_path=units_path, progress=report, on_row=on_row,
        row_of=lambda unit, row: {"clip": unit.clip, "label": unit.label, "explainer": unit.explainer,
                                  "transform": unit.transform, "settings": ids[unit.explainer], **row},
        label=lambda unit: f"{unit.clip} · {unit.explainer}")
    for unit, row in finished_rows:
        rows[unit.explainer].append((order_of[unit.clip], row))
    computed = len(finished_rows)
    ordered = {e: [r for _, r in sorted(rows[e], key=lambda pair: pair[0])] for e in names}
    labels = tuple(card.labels)
    classes, clip_lists, concentration = {}, {}, {}
    for e in names:
        classes[e], clip_lists[e], concentration[e] = aggregate(ordered[e], labels=labels, grid=grid, by=by, seed=seed,
                                                                centre=EXPLAINERS.get(e).family == "sampling")
    first = names[0]
    protos = {label: sorted(members, key=lambda n: -concentration[first][n])[:prototypes]
              for label, members in clip_lists[first].items()}
    result = ClassProfiles(
        labels=labels, explainers=tuple(names), grid=grid, by=by, transform=transform,
        description=title or getattr(clips, "description", "") or "clips", model=card.name, classes=classes,
        agreement=agreement(classes, names), clips=clip_lists[first], rows=ordered, prototypes=protos,
        computed=computed, failures=failures,
        settings={"seed": seed, "params": params, "transform_settings": dict(domain.settings),
                  "options": asdict(opts), "intervention_clips": intervention_clips},
    )
    from .shortcuts import find_flags, measure_flags

    result.flags = find_flags(result)
    if intervene and result.flags:
        measure_flags(result, model, clips, seed=seed, max_clips=intervention_clips, batch_size=batch_size)
    if out_path is not None:
        from .report import write_outputs

        write_outputs(result, out_path, model=model, clips=clips if listen else None, figures=figures)
    return result


__all__ = ["ClassProfiles", "ProfileOptions", "aggregate", "agreement", "profile", "profile_unit"]
