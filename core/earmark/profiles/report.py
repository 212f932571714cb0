"""What ``earmark profile`` writes: ``profile.json``, ``report.md``, figures and listening WAVs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch


def _pct(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}%"


def _effect_cell(flag: dict) -> str:
    e = flag.get("effect")
    if not e:
        return "not measured"
    text = (f"acc {e['accuracy_before']:.2f}→{e['accuracy_after']:.2f}, p {e['score_before']:.2f}→{e['score_after']:.2f} "
            f"(Δ {e['score_change']:+.3f} [{e['score_change_ci'][0]:+.3f}, {e['score_change_ci'][1]:+.3f}], n={e['clips']})")
    if "band_all_time" in e:
        w = e["band_all_time"]
        text += (f"; whole clip: acc →{w['accuracy_after']:.2f}, p →{w['score_after']:.2f} "
                 f"(Δ {w['score_change']:+.3f} [{w['score_change_ci'][0]:+.3f}, {w['score_change_ci'][1]:+.3f}])")
    return text


def markdown(result) -> str:
    """The shortcut report: data, flags with measured effects, agreement, per-class top bands, listening."""
    g = result.grid
    lines = ["# Earmark class profiles", ""]
    lines.append(f"- model: `{result.model}`; domain: `{result.transform}`; explainers: "
                 + ", ".join(f"`{e}`" for e in result.explainers))
    lines.append(f"- **data the profile was computed on**: {result.description}")
    lines.append(f"- classes by the **{result.by}** label; clips per class: "
                 + ", ".join(f"{k}: {len(v)}" for k, v in result.clips.items()))
    lines.append(f"- grid: {g.n_bands} bands ({g.band_names[0]} … {g.band_names[-1]}) × {g.n_times} time bins "
                 f"over {g.duration:g} s; shares per clip (|relevance| and energy each sum to 1), mean over the class's "
                 "clips with 95 % bootstrap intervals; maps of mask-sampling explainers (FreqRISE, RELAX) are "
                 "centred on their typical (median) cell first")
    lines.append("- a profile shows what the model uses **in these clips**: a cue absent from them (a beep only the "
                 "training recordings carried) cannot receive relevance here; the *sensitivity* column adds a tone "
                 "in the flagged band to other classes' clips to ask what the band would do")
    lines.append("")
    lines.append(f"## Shortcut flags ({len(result.flags)}, strongest first)")
    lines.append("")
    if result.flags:
        lines.append("| # | class | explainer | kind | band | time | relevance | energy | effect of removing it | sensitivity | confirmed |")
        lines.append("|---:|---|---|---|---|---|---:|---:|---|---|---|")
        for i, f in enumerate(result.flags, 1):
            band = f"{f['band_hz'][0]:g}–{f['band_hz'][1]:g} Hz"
            span = "all" if f["time_s"] is None else f"{f['time_s'][0]:g}–{f['time_s'][1]:g} s"
            s = f.get("sensitivity")
            sens = "—" if not s else f"{s['called_class_before']:.0%}→{s['called_class_after']:.0%} of {s['clips']} others"
            conf = "**yes**" if f["confirmed"] else ("no" if f.get("effect") else "unconfirmed")
            lines.append(f"| {i} | {f['class']} | {f['explainer']} | {'+'.join(f['kind'])} | {band} | {span} | "
                         f"{_pct(f['relevance_share'])} | {_pct(f['energy_share'])} | {_effect_cell(f)} | {sens} | {conf} |")
        lines.append("")
        lines.append("Effect: the band/span removed from the class's clips (STFT band-stop), then re-scored: accuracy "
                     "(share called the class) and mean class probability p, Δ with its 95 % bootstrap interval. "
                     "Confirmed = p drops by ≥ 0.05 (or accuracy by ≥ 0.10), the interval excludes 0, and at least 5 clips "
                     "were measured.")
    else:
        lines.append("No (band, time, class) receives relevance far beyond its energy, and no class leans on silence "
                     "or on the first/last frames.")
    if len(result.explainers) > 1:
        lines += ["", "## Agreement of the explainers (Spearman ρ of the band profiles, per class)", ""]
        pairs = sorted({p for v in result.agreement.values() for p in v})
        lines.append("| class | " + " | ".join(p.replace("|", " vs ") for p in pairs) + " |")
        lines.append("|---|" + "---:|" * len(pairs))
        for label, v in result.agreement.items():
            lines.append(f"| {label} | " + " | ".join("—" if v.get(p) is None else f"{v[p]:.2f}" for p in pairs) + " |")
    lines += ["", "## Where each class listens (top 3 bands by relevance share; energy share in brackets)", ""]
    lines.append("| class | n | correct | " + " | ".join(result.explainers) + " |")
    lines.append("|---|---:|---:|" + "---|" * len(result.explainers))
    for label in result.clips:
        cells = []
        for e in result.explainers:
            s = result.classes[e][label]
            r = torch.tensor(s["band"]["mean"])
            en = s["band_energy"]["mean"]
            top = torch.argsort(r, descending=True)[:3].tolist()
            cells.append("; ".join(f"{g.band_names[b]} {_pct(r[b])} ({_pct(en[b])})" for b in top))
        s0 = result.classes[result.explainers[0]][label]
        lines.append(f"| {label} | {s0['n']} | {s0['correct']} | " + " | ".join(cells) + " |")
    if result.prototypes:
        lines += ["", "## Listening", "",
                  "Per class under `listen/<class>/`: the prototypes (clips with the most concentrated relevance of "
                  f"`{result.explainers[0]}`), each with `-keep` (the class's mean band relevance as a gain) and the "
                  "first with `-remove` (one minus it).", ""]
        for label, names in result.prototypes.items():
            lines.append(f"- {label}: " + ", ".join(f"`{n}`" for n in names))
    if result.failures:
        lines += ["", f"## Failures ({len(result.failures)}; retried on the next run)"] + [f"- {f}" for f in result.failures[:20]]
    lines += ["", "## Figures", "", "![band × class](profile_heatmap.png)", "", "![class curves](profile_curves.png)"]
    return "\n".join(lines) + "\n"


def plot_heatmap(result, path: Path) -> Path:
    """Band × class heat maps: relevance share per explainer, and the energy share (the first explainer's clips)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result.clips)
    panels = [(e, "band") for e in result.explainers] + [(result.explainers[0], "band_energy")]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 + 2.6 * len(panels), 0.35 * result.grid.n_bands + 1.6),
                             squeeze=False)
    for ax, (e, key) in zip(axes[0], panels):
        m = torch.tensor([result.classes[e][l][key]["mean"] for l in labels]).T      # (nb, classes)
        vmax = float(m.abs().max()) or 1.0
        im = ax.imshow(m.numpy(), aspect="auto", origin="lower", cmap="RdBu_r" if key == "band" else "magma",
                       vmin=-vmax if key == "band" else 0, vmax=vmax)
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=90 if max(map(len, labels)) > 3 else 0)
        ax.set_yticks(range(result.grid.n_bands), result.grid.band_names, fontsize=6)
        ax.set_title(f"{e}: relevance share" if key == "band" else "energy share", fontsize=9)
        ax.set_xlabel("class")
        fig.colorbar(im, ax=ax, fraction=0.05)
        for f in result.flags:
            if f["explainer"] == e and key == "band" and f["band"] is not None:
                ax.add_patch(plt.Rectangle((labels.index(f["class"]) - 0.5, f["band"] - 0.5), 1, 1, fill=False,
                                           edgecolor="lime", linewidth=1.6))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(result, path: Path, *, max_classes: int = 4) -> Path:
    """Per class (flagged ones first): relevance per band with its interval against energy, and per time bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flagged = list(dict.fromkeys(f["class"] for f in result.flags))
    order = flagged + [l for l in result.clips if l not in flagged]
    show = order[:max_classes]
    g = result.grid
    centres = ((g.band_edges[1:] + g.band_edges[:-1]) / 2).numpy()
    tc = ((g.time_edges[1:] + g.time_edges[:-1]) / 2).numpy()
    fig, axes = plt.subplots(len(show), 3, figsize=(14, 2.4 * len(show)), squeeze=False)
    for i, label in enumerate(show):
        for e in result.explainers:
            s = result.classes[e][label]
            axes[i][0].plot(centres, s["band"]["mean"], marker=".", label=e)
            axes[i][0].fill_between(centres, s["band"]["low"], s["band"]["high"], alpha=0.25)
            axes[i][1].plot(tc, s["time"]["mean"], label=e)
            axes[i][1].fill_between(tc, s["time"]["low"], s["time"]["high"], alpha=0.25)
            axes[i][2].plot(s["onset_offsets_s"], s["onset"]["mean"], label=e)
            axes[i][2].fill_between(s["onset_offsets_s"], s["onset"]["low"], s["onset"]["high"], alpha=0.25)
        s = result.classes[result.explainers[0]][label]
        axes[i][0].plot(centres, s["band_energy"]["mean"], "k--", label="energy share")
        axes[i][1].plot(tc, s["time_energy"]["mean"], "k--", label="energy")
        axes[i][2].plot(s["onset_offsets_s"], s["onset_energy"]["mean"], "k--", label="energy")
        axes[i][0].set_ylabel(f"class {label}\nshare")
        axes[i][0].set_xscale("symlog", linthresh=500)
    axes[0][0].set_title("per band (95 % interval)")
    axes[0][1].set_title("per time bin (95 % interval)")
    axes[-1][0].set_xlabel("Hz")
    axes[-1][1].set_xlabel("s")
    axes[0][2].set_title("relative to the onset (±1.96 SE)")
    axes[-1][2].set_xlabel("s after the onset")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result, out: Path, *, model=None, clips=None, figures: bool = True) -> None:
    """``profile.json``, ``report.md``, figures and (with ``clips``) listening WAVs into ``out``."""
    out = Path(out)
    if clips is not None and result.prototypes:
        from .listen import write_listening

        result.settings["listening"] = write_listening(result, clips, out,
                                                       sample_rate=int(model.card.sample_rate))
    if figures:
        result.paths["heatmap"] = plot_heatmap(result, out / "profile_heatmap.png")
        result.paths["curves"] = plot_curves(result, out / "profile_curves.png")
    result.paths["json"] = out / "profile.json"
    result.paths["json"].write_text(json.dumps(result.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")
    result.paths["markdown"] = out / "report.md"
    result.paths["markdown"].write_text(markdown(result), encoding="utf-8")


__all__ = ["markdown", "plot_curves", "plot_heatmap", "write_outputs"]
