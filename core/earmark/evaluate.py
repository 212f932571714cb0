"""``earmark evaluate``: explainers × domains × metrics over a data set or a synthetic task.

The unit of work is one (clip, explainer, domain): explain the clip's *true* class, then score the map
with the metrics of :mod:`earmark.metrics` in the map's own domain. Each finished unit is appended to
``results.jsonl`` at once (flushed to disk), keyed by the clip, the explainer, the domain and a hash of
every setting that changes the result; a rerun with the same settings skips what is there, so an
interrupted evaluation resumes where it stopped and nothing is recomputed. At the end the rows of this
run are written as ``results.csv``, ``summary.md`` (mean ± std per explainer × domain, the n used, the
budgets) and ``curves.png`` (mean deletion / insertion curves).

Example:
    >>> report = run_evaluation(model, clips, explainers=["ig"], transforms=["stft"], out="runs/e1")  # doctest: +SKIP
    >>> print(report.markdown)                                                                        # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from .engines import LocalEngine, Unit, Work, WorkerLost
from .errors import ConfigError, DataError
from .faults import check_regular_or_absent, os_error_sentence
from .explainers import EXPLAINERS
from .metrics import METRICS, MetricOptions, select_metrics
from .params import resolve
from .transforms import TRANSFORMS, get_transform
from .workflow import evaluate_one

#: ``progress(done, total, eta_seconds or None, label)`` — called after every unit of work.
EvalProgress = Callable[[int, int, "float | None", str], None]

RESULTS_FILE = "results.jsonl"
ID_COLUMNS = ("clip", "label", "target", "predicted", "correct", "explainer", "transform", "settings")
COST_COLUMNS = ("seconds", "forward_passes", "backward_passes")


# ---- settings ----------------------------------------------------------------------------------

def parse_overrides(items: Iterable[str] | None) -> dict[str, dict[str, str]]:
    """``["freqrise.n_masks=1000", "stft.n_fft=256"]`` → ``{"freqrise": {"n_masks": "1000"}, ...}``.

    Raises:
        ConfigError: an item not of the form ``NAME.SETTING=VALUE``.
    """
    out: dict[str, dict[str, str]] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        owner, dot, setting = key.strip().partition(".")
        if not sep or not dot or not owner or not setting:
            raise ConfigError(f"--set expects EXPLAINER.SETTING=VALUE (or TRANSFORM.SETTING=VALUE), got '{item}'; "
                              "e.g. --set freqrise.n_masks=1000.")
        out.setdefault(owner, {})[setting.strip()] = value.strip()
    return out


def split_overrides(overrides: Mapping[str, Mapping[str, Any]]) -> tuple[dict, dict]:
    """Separate explainer settings from transform settings; unknown owners are an error."""
    explainer, transform = {}, {}
    for owner, values in overrides.items():
        if owner in EXPLAINERS:
            explainer[owner] = dict(values)
        elif owner in TRANSFORMS:
            transform[owner] = dict(values)
        else:
            raise ConfigError(f"--set names '{owner}', which is neither an explainer ({', '.join(EXPLAINERS.names())}) "
                              f"nor a transform ({', '.join(TRANSFORMS.names())}).")
    return explainer, transform


def explainer_settings(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The explainer's full, validated settings (defaults filled in)."""
    return resolve(EXPLAINERS.get(name).params, given, owner=f"Explainer '{name}'")


def budget_notes(settings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per explainer setting that differs from the paper's default, reductions flagged."""
    notes = []
    for name, values in settings.items():
        for p in EXPLAINERS.get(name).params:
            v = values.get(p.name, p.default)
            if v == p.default:
                continue
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            tag = " — **reduced budget**" if numeric and v < p.default and p.name.startswith(("n_", "steps", "restarts")) else ""
            notes.append(f"{name}: {p.name} = {v} (default {p.default}){tag}")
    return notes


def settings_id(payload: Mapping[str, Any]) -> str:
    """A short stable hash of every setting that changes a row's numbers."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def clip_seed(seed: int, name: str) -> int:
    """Per-clip seed: reproducible, independent of the order clips are processed in."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


# ---- one unit of work --------------------------------------------------------------------------

# ---- the results file --------------------------------------------------------------------------

def row_key(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (str(row["clip"]), str(row["explainer"]), str(row["transform"]), str(row["settings"]))


def read_results(path: str | Path) -> dict[tuple[str, str, str, str], dict]:
    """Rows already in a JSONL results file, by key.

    A torn last line (from a kill), a line of bytes that are not UTF-8 (a disk or copy fault) or any
    other line that is not a JSON object is skipped, and its unit is computed again.
    """
    path = Path(path)
    rows: dict = {}
    if not path.exists():
        return rows
    for raw in path.read_bytes().split(b"\n"):
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict) and {"clip", "explainer", "transform", "settings"} <= row.keys():
            rows[row_key(row)] = row
    return rows


def holds_metrics(row: Mapping[str, Any], metrics: Sequence[str]) -> bool:
    """Whether a stored row was scored with every metric requested now.

    Metric draws are seeded per metric, not per run, so a row scored with more metrics than asked for
    now is reused as is; one scored with fewer is recomputed. Rows list the metrics they were asked
    for (``metrics_asked``); older rows without the list are judged by their columns.
    """
    if "metrics_asked" in row:
        return set(metrics) <= set(row["metrics_asked"])
    return all(m in row for m in metrics if not METRICS.get(m).requires)


def append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append one row and force it to disk, so an interruption loses at most the unit in progress.

    Raises:
        DataError: the disk is full, the folder read-only, ... (the rows before this one are kept).
    """
    try:
        _append(path, row)
    except OSError as exc:
        raise DataError(f"Could not write a row to {path.name}: {os_error_sentence(exc)}; the rows already "
                        "there are kept, and the same command resumes once that is fixed.") from None


def _append(path: Path, row: Mapping[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        if fh.tell() > 0:  # a torn line from a kill must not swallow this row
            with path.open("rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    fh.write("\n")
        fh.write(json.dumps(row, default=_jsonable) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return str(obj)


# ---- the run -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalReport:
    """What an evaluation produced.

    Attributes:
        rows: one dict per (clip, explainer, domain) of this run, in plan order.
        computed: units computed now (the rest came from the results file).
        skipped: explainer × domain pairs that cannot run (unsupported domain), as sentences.
        failures: units that raised, as sentences (they are retried on the next run).
        markdown: the summary table.  paths: files written.
    """

    rows: list[dict]
    computed: int
    skipped: list[str]
    failures: list[str]
    markdown: str
    paths: dict[str, Path] = field(default_factory=dict)


def run_evaluation(model, clips, *, explainers: Sequence[str], transforms: Sequence[str], out: str | Path,
                   metrics: Sequence[str] | None = None, seed: int = 0,
                   overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   options: MetricOptions = MetricOptions(), batch_size: int | None = None,
                   progress: EvalProgress | None = None, title: str = "", engine=None,
                   model_source: str | None = None) -> EvalReport:
    """Run explainers × domains × metrics over ``clips`` and write the results into ``out``.

    Args:
        model: the classifier (its card gives rate, length, labels).
        clips: a data set from :func:`earmark.data.datasets.open_dataset` (iterates ``(name, wave, label)``;
            ``true_mask(name, transform)`` gives the ground truth where there is one).
        explainers: explainer names.  transforms: domain names.
        out: output folder (created); holds ``results.jsonl`` across runs.
        metrics: metric names (default: the default set of :func:`earmark.metrics.select_metrics`).
        seed: base seed (each clip gets its own from it and its name).
        overrides: ``{explainer or transform: {setting: value}}`` (e.g. reduced budgets).
        options: metric settings.  batch_size: items per model call (default: sized to the device).
        progress: ``progress(done, total, eta_s, label)``.
        title: a line describing the data for the report.
        engine: where units are computed (:mod:`earmark.engines`; default: this process). Rows are
            appended by this function as the engine yields them, whichever engine it is.
        model_source: the name or path that rebuilds ``model`` in a worker (default: its card's name).

    Returns:
        :class:`EvalReport`.

    Raises:
        ConfigError: unknown names or bad settings (checked before any work starts).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(metrics) if metrics is not None else select_metrics(None)
    for m in metrics:
        METRICS.get(m)
    ex_over, tr_over = split_overrides(overrides or {})
    settings = {e: explainer_settings(e, ex_over.get(e)) for e in explainers}
    card = model.card
    domains = {t: get_transform(t, card.sample_rate, **tr_over.get(t, {})) for t in transforms}
    plan, skipped = [], []
    for e in explainers:
        spec = EXPLAINERS.get(e)
        unfit = spec.model_check(model) if spec.model_check is not None else None   # e.g. Grad-CAM, no CNN
        if unfit:
            skipped.append(f"{e}: {spec.title} {unfit}")
            continue
        for t in transforms:
            if spec.supports(t):
                plan.append((e, t))
            else:
                skipped.append(f"{e} × {t}: {spec.title} works in {', '.join(spec.domains or ())} only")
    ids = {
        (e, t): settings_id({"model": card.name, "explainer": e, "params": settings[e], "transform": t,
                             "transform_settings": domains[t].settings, "options": asdict(options),
                             "seed": seed})
        for e, t in plan
    }
    results_path = out / RESULTS_FILE
    check_regular_or_absent(results_path)   # a folder or a FIFO there: one sentence (a FIFO would hang)
    done = read_results(results_path)
    total = len(clips) * len(plan)
    report = progress or (lambda *a: None)
    rows: list[tuple[int, dict]] = []
    todo: list[Unit] = []
    for c, item in enumerate(clips):
        name, wave, label = item[0], item[1], int(item[2])
        for p, (e, t) in enumerate(plan):
            order = c * len(plan) + p
            key = (name, e, t, ids[(e, t)])
            if key in done and holds_metrics(done[key], metrics):
                rows.append((order, done[key]))
                continue
            truth = clips.true_mask(name, domains[t]) if hasattr(clips, "true_mask") else None
            cells = clips.cell_scorer(name, domains[t]) if hasattr(clips, "cell_scorer") else None
            todo.append(Unit(order, name, label, wave, e, t, clip_seed(seed, name), truth, cells))
    finished = len(rows)
    report(finished, total, None, f"{finished} reused from {results_path.name}" if finished else "starting")
    work = Work(model=model, model_source=model_source or card.name,
                transforms={t: dict(domains[t].settings) for t in transforms},
                params=settings, metrics=list(metrics), options=options, batch_size=batch_size)
    finished_rows, failures = run_units(
        todo, work, engine=engine, total=total, results_path=results_path, progress=report,
        row_of=lambda unit, row: {"clip": unit.clip, "label": unit.label, "explainer": unit.explainer,
                                  "transform": unit.transform, "settings": ids[(unit.explainer, unit.transform)],
                                  "metrics_asked": sorted(metrics), **row},
        label=lambda unit: f"{unit.clip} · {unit.explainer} × {unit.transform}")
    rows += [(unit.order, row) for unit, row in finished_rows]
    computed = len(finished_rows)
    rows = [r for _, r in sorted(rows, key=lambda pair: pair[0])]
    order = {(e, t): i for i, (e, t) in enumerate(plan)}
    rows.sort(key=lambda r: order[(r["explainer"], r["transform"])])  # grouped by explainer × domain, clip order
    markdown = summary_markdown(rows, metrics=metrics, plan=plan, notes=budget_notes(settings), skipped=skipped,
                                failures=failures, title=title or getattr(clips, "description", ""),
                                model=card.name, seed=seed, options=options)
    paths = {"results": results_path, "csv": out / "results.csv", "markdown": out / "summary.md"}
    write_csv(paths["csv"], rows, metrics)
    paths["markdown"].write_text(markdown, encoding="utf-8")
    png = plot_curves(rows, out / "curves.png", plan=plan)
    if png is not None:
        paths["curves"] = png
    return EvalReport(rows, computed, skipped, failures, markdown, paths)


def run_units(todo: Sequence[Unit], work: Work, *, engine=None, total: int, results_path: Path | None,
              row_of: Callable[[Unit, dict], dict], label: Callable[[Unit], str],
              progress: Callable | None = None, on_row: Callable[[dict], None] | None = None,
              ) -> tuple[list[tuple[Unit, dict]], list]:
    """The one loop under :func:`run_evaluation` and :func:`earmark.profiles.profile`: run ``todo`` on the
    engine, append each finished row (``row_of(unit, answer)``) to ``results_path`` at once (so a run that is
    stopped resumes from the file), and report ``progress(finished, total, eta_s, text)``.

    Args:
        total: units in the whole run; those not in ``todo`` were reused from the file.

    Returns:
        ``(unit, row)`` of every unit that finished, and the failures (one sentence each).

    Raises:
        DataError: a Ray worker was lost; the sentence names the rows kept and how to compute the rest.
    """
    report = progress or (lambda *a: None)
    reused = total - len(todo)
    finished, failures, done = reused, [], []
    started = time.perf_counter()
    try:
        for unit, row, failure in (engine or LocalEngine()).run(todo, work):
            finished += 1
            if failure is not None:
                failures.append(failure)
            else:
                row = row_of(unit, row)
                if results_path is not None:
                    append_row(results_path, row)
                done.append((unit, row))
                if on_row is not None:
                    on_row(row)
            attempted = finished - reused
            report(finished, total, (time.perf_counter() - started) / attempted * (len(todo) - attempted), label(unit))
    except WorkerLost as exc:
        kept = reused + len(done)   # each already on disk
        name = results_path.name if results_path is not None else "the run"
        raise DataError(f"{exc}, so the run stopped: {name} keeps {kept} of the {total} rows "
                        f"({len(done)} finished in this run); run the same command again to compute the other "
                        f"{total - kept}.") from None
    return done, failures


# ---- outputs -----------------------------------------------------------------------------------

def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> None:
    """One line per (clip, explainer, domain): identity, cost and every scalar metric."""
    columns = list(ID_COLUMNS) + list(COST_COLUMNS) + list(metrics)
    columns += [c for c in ("completeness_gap", "completeness_relative") if any(c in r for r in rows)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, population std and count of the finite values (NaN, 0 when there are none)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return float("nan"), 0.0, 0
    t = torch.tensor(finite, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False)), len(finite)


def summary_markdown(rows: Sequence[Mapping[str, Any]], *, metrics: Sequence[str], plan: Sequence[tuple[str, str]],
                     notes: Sequence[str] = (), skipped: Sequence[str] = (), failures: Sequence[str] = (),
                     title: str = "", model: str = "", seed: int = 0,
                     options: MetricOptions = MetricOptions()) -> str:
    """Mean ± std of every metric per explainer × domain, with n, the settings and the budgets."""
    shown = [m for m in metrics if any(m in r for r in rows)]
    arrows = {m: METRICS.get(m).arrow for m in shown}
    clips = sorted({r["clip"] for r in rows})
    lines = ["# Earmark evaluation", ""]
    lines.append(f"- model: `{model}`; data: {title or 'clips'}; clips evaluated: {len(clips)}; seed {seed}")
    lines.append(f"- explained class: the true label; curves: {options.steps} steps, baseline 0, "
                 f"ranking by {'|saliency|' if options.absolute else 'signed saliency'}; "
                 f"I/D/FF/Fid-In at the top {options.fraction:.0%}")
    lines.append("- ↑ higher is better, ↓ lower is better; cells: mean ± std over clips (n = clips with a value)")
    lines.append("")
    header = ["explainer", "domain", "n", "s / clip"] + [f"{m} {arrows[m]}" for m in shown]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for e, t in plan:
        group = [r for r in rows if r["explainer"] == e and r["transform"] == t]
        if not group:
            continue
        secs, _, _ = mean_std([r.get("seconds") for r in group])
        cells = [e, t, str(len(group)), f"{secs:.3g}"]
        for m in shown:
            mu, sd, k = mean_std([r.get(m) for r in group])
            cells.append("—" if k == 0 else f"{mu:.3f} ± {sd:.3f}" + (f" (n={k})" if k != len(group) else ""))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("## Budgets")
    lines += [f"- {n}" for n in notes] or ["- every explainer at its paper defaults"]
    if skipped:
        lines += ["", "## Not run"] + [f"- {s}" for s in skipped]
    if failures:
        lines += ["", f"## Failures ({len(failures)}; retried on the next run)"] + [f"- {f}" for f in failures[:20]]
    lines += ["", "## Metrics"] + [f"- `{m}` ({METRICS.get(m).category}, {arrows[m]}): {METRICS.get(m).describe(options)}" for m in shown]
    return "\n".join(lines) + "\n"


def plot_curves(rows: Sequence[Mapping[str, Any]], path: Path, *, plan: Sequence[tuple[str, str]]) -> Path | None:
    """Mean deletion (top) and insertion (bottom) curves, one column per domain, one line per explainer."""
    with_curves = [r for r in rows if "deletion_curve" in r]
    if not with_curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = list(dict.fromkeys(t for _, t in plan if any(r["transform"] == t for r in with_curves)))
    explainers = list(dict.fromkeys(e for e, _ in plan))
    fig, axes = plt.subplots(2, len(domains), figsize=(3.6 * len(domains), 6.4), squeeze=False, sharey=True)
    for j, t in enumerate(domains):
        for e in explainers:
            group = [r for r in with_curves if r["explainer"] == e and r["transform"] == t]
            if not group:
                continue
            x = torch.tensor(group[0]["curve_fractions"]) * 100
            for i, kind in enumerate(("deletion_curve", "insertion_curve")):
                mean = torch.tensor([r[kind] for r in group], dtype=torch.float64).mean(0)
                axes[i][j].plot(x.numpy(), mean.numpy(), label=f"{e} (n={len(group)})")
        axes[0][j].set_title(f"{t}: deletion")
        axes[1][j].set_title(f"{t}: insertion")
        axes[1][j].set_xlabel("cells removed / inserted (%)")
    for i in range(2):
        axes[i][0].set_ylabel("true-class probability")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["EvalReport", "append_row", "budget_notes", "clip_seed", "evaluate_one", "parse_overrides",
           "read_results", "run_evaluation", "settings_id", "summary_markdown", "write_csv"]
