"""Static figures (matplotlib, headless) for the CLI and for PNG export. No Streamlit here."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .explanation import Explanation  # noqa: E402
from .transforms import Transform  # noqa: E402


def _image(transform: Transform, v: torch.Tensor, length: int) -> np.ndarray:
    return transform.to_image(v.detach().float().cpu()[None], length=length)[0].numpy()


def _extent(transform: Transform, length: int) -> tuple[list[float], list[float], tuple[str, ...] | None]:
    ax = transform.axes(length)
    t = ax.times.numpy()
    dt = (t[1] - t[0]) if t.size > 1 else length / transform.sample_rate
    return [float(t[0] - dt / 2), float(t[-1] + dt / 2)], ax.freq_edges.numpy().tolist(), ax.row_labels


def explanation_figure(transform: Transform, wave: torch.Tensor, explanation: Explanation, *,
                       title: str = "", log_freq: bool = False) -> plt.Figure:
    """Three aligned panels: power spectrogram, saliency and uncertainty, with s and Hz axes.

    Args:
        transform: the explanation's domain.
        wave: (L,) the explained waveform.
        explanation: its saliency and uncertainty (map space).
        log_freq: log-scaled frequency axis (rows with a positive lower edge).
    """
    length = wave.shape[-1]
    power = transform.power_image(wave.detach().float().cpu()[None])[0].numpy()
    panels = [
        ("Power (dB)", 10 * np.log10(power + 1e-10), "magma"),
        (f"Saliency — {explanation.method}", _image(transform, explanation.saliency, length), "RdBu_r"),
        ("Uncertainty", _image(transform, explanation.uncertainty, length), "viridis"),
    ]
    (t0, t1), edges, labels = _extent(transform, length)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True, sharey=True)
    for ax, (name, img, cmap) in zip(axes, panels):
        t_edges = np.linspace(t0, t1, img.shape[1] + 1)
        kwargs = {}
        if cmap == "RdBu_r":
            lim = float(np.abs(img).max()) or 1.0
            kwargs = {"vmin": -lim, "vmax": lim}
        mesh = ax.pcolormesh(t_edges, np.asarray(edges), img, cmap=cmap, shading="flat", **kwargs)
        fig.colorbar(mesh, ax=ax, shrink=0.85)
        ax.set_title(name)
        ax.set_xlabel("Time (s)")
        if log_freq and edges[1] > 0:
            ax.set_yscale("symlog", linthresh=max(edges[1], 1.0))
    axes[0].set_ylabel("Frequency (Hz)")
    if labels:
        centres = (np.asarray(edges[1:]) + np.asarray(edges[:-1])) / 2
        axes[0].set_yticks(centres, labels)
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 120) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
