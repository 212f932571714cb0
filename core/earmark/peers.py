"""``earmark bench --peers``: Earmark's explainers side by side with the leanest implementations of the same
estimators, at equal passes, quiet and with CPU-burning processes beside them.

The peers ship inside Earmark so that anyone can rerun the comparison:

* **minimal IG** — the ten-line batched Integrated Gradients: every path point in one batch, one forward
  and one ``autograd.grad`` of the summed target logit with respect to the coefficients only (no parameter
  gradients), the midpoint rule from the zero baseline. Earmark's ``ig`` at ``baselines="zero",
  spacing="uniform"`` estimates the same integral (it also scores f(x) and f(0) for its completeness
  check, so the peer gets those two points too: equal passes).
* **minimal SmoothGrad** — the noisy copies in one batch, one gradient call, ``mean |g|``.
* **plain FreqRISE** — :func:`earmark.bench.freqrise_reference`, the paper's estimator in batches of 500.

Each pair runs interleaved (Earmark, peer, peer, Earmark, ...) so that a change in the machine's load
hits both; the median of the repetitions is reported. ``burners`` starts that many processes that spin
on a core for the duration of a condition, so the table shows what a shared machine does to each.
Quality: the Spearman correlation of each map with a long reference map of the same estimator (IG at
512 steps; FreqRISE at 10× the masks) over the live cells, so "faster" is never bought with a worse map.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from .bench import _sync, freqrise_reference
from .device import model_device
from .explainers import explain
from .metrics.randomisation import spearman
from .threads import current_budget

#: The peer of each Earmark explainer that has one.
PEER_METHODS = ("ig", "smoothgrad", "freqrise")


def minimal_ig(model, wave: torch.Tensor, transform, target: int, *, n_steps: int) -> torch.Tensor:
    """Integrated Gradients from the zero baseline in ``transform``'s coefficients, all ``n_steps`` path
    points in one batch (midpoint rule), pooled into map space. The leanest correct implementation."""
    z = transform.analyze(wave.reshape(1, -1))[0].detach()
    alphas = (torch.arange(n_steps, device=z.device, dtype=z.real.dtype) + 0.5) / n_steps
    points = (alphas.view((-1,) + (1,) * z.ndim) * z[None]).requires_grad_(True)
    out = model(transform.synthesize(points, wave.shape[-1]))[:, target].sum()
    (g,) = torch.autograd.grad(out, points)
    attribution = (z.conj() * g.mean(0)).real if z.is_complex() else z * g.mean(0)
    return transform.pool(attribution[None])[0]


def minimal_smoothgrad(model, wave: torch.Tensor, transform, target: int, *, n_samples: int,
                       noise_level: float = 0.1, generator: torch.Generator) -> torch.Tensor:
    """SmoothGrad (``mean_k |g_k|``) with every noisy copy in one batch and one gradient call."""
    x = wave.reshape(1, -1)
    sigma = noise_level * (x.max() - x.min())
    noisy = x + sigma * torch.randn((n_samples, x.shape[-1]), generator=generator, device=x.device)
    points = transform.analyze(noisy).detach().requires_grad_(True)
    out = model(transform.synthesize(points, x.shape[-1]))[:, target].sum()
    (g,) = torch.autograd.grad(out, points)
    return transform.pool(g.abs()).mean(0)


@dataclass(frozen=True)
class PeerRow:
    """One method × domain × condition: median seconds of Earmark and of its peer at equal passes.

    Attributes:
        method, peer, transform: what ran.  burners: CPU-burning processes beside it.
        passes: model passes each made.  earmark_s, peer_s: median wall seconds over the repetitions.
        speedup: peer_s / earmark_s (above 1: Earmark faster).  earmark_quality, peer_quality: Spearman of
        each map with the long reference over the live cells (:func:`live_cells`).  repeats: repetitions.
    """

    method: str
    peer: str
    transform: str
    burners: int
    passes: str
    earmark_s: float
    peer_s: float
    speedup: float
    earmark_quality: float
    peer_quality: float
    repeats: int


@contextmanager
def cpu_burners(count: int) -> Iterator[list[subprocess.Popen]]:
    """``count`` processes that each spin on a core until the block ends (a busy shared machine)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(max(0, count))]
    try:
        time.sleep(0.5 if procs else 0.0)               # let the scheduler see them
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=10)


def _timed(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[float, torch.Tensor]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _pair(method: str, model, wave, transform, target: int, size: int, seed: int):
    """(Earmark's call, the peer's call, peer name, passes text) at equal passes."""
    if method not in PEER_METHODS:
        raise ValueError(f"no peer for {method!r}; peers exist for {', '.join(PEER_METHODS)}")
    ours_settings = {"ig": {"n_steps": size, "baselines": "zero", "spacing": "uniform"},
                     "smoothgrad": {"n_samples": size}, "freqrise": {"n_masks": size}}[method]

    def ours():
        return explain(model, wave, transform, target, method=method, seed=seed, **ours_settings).saliency

    def peer():
        gen = torch.Generator(device=wave.device).manual_seed(seed)
        if method == "ig":
            return minimal_ig(model, wave, transform, target, n_steps=size + 2)
        if method == "smoothgrad":
            return minimal_smoothgrad(model, wave, transform, target, n_samples=size, generator=gen)
        return freqrise_reference(model, wave, transform, target, n_masks=size, generator=gen)

    name, passes = {"ig": ("minimal batched IG", f"{size + 2} fwd+bwd"),
                    "smoothgrad": ("minimal batched SmoothGrad", f"{size} fwd+bwd"),
                    "freqrise": ("FreqRISE paper estimator (batch 500)", f"{size} fwd")}[method]
    return ours, peer, name, passes


def live_cells(model, wave: torch.Tensor, transform, target: int) -> torch.Tensor:
    """(*M) bool: the map cells where masking can change the input (not the zero padding's inert cells).

    Quality is compared on these only: Earmark ranks inert cells below every live one, the paper's estimator
    gives them whatever the masks gave, and neither says anything about the model there.
    """
    from .explainers.masks import inert_cells
    from .probe import Probe

    return ~inert_cells(Probe(model, transform, wave, target=target), "zero")


def _reference_map(method: str, model, wave, transform, target: int, size: int, seed: int) -> torch.Tensor:
    """A long run of the same estimator, the yardstick of both maps' quality."""
    if method == "ig":
        return explain(model, wave, transform, target, method="ig", seed=seed, n_steps=512, baselines="zero",
                       spacing="uniform").saliency
    if method == "smoothgrad":
        return explain(model, wave, transform, target, method="smoothgrad", seed=seed + 1, n_samples=10 * size).saliency
    return explain(model, wave, transform, target, method="freqrise", seed=seed + 1, n_masks=min(30000, 10 * size),
                   sampler="bernoulli", estimator="plain").saliency


def run_peers(model, wave: torch.Tensor, *, transforms: Sequence, methods: Sequence[str] = PEER_METHODS,
              sizes: dict[str, int] | None = None, burners: Sequence[int] = (0, 1, 2), repeats: int = 3,
              seed: int = 0, progress: Callable[[str], None] | None = None) -> tuple[list[PeerRow], dict[str, Any]]:
    """Time every method against its peer in every domain, quiet and beside ``burners`` CPU burners.

    Args:
        transforms: built :class:`~earmark.transforms.Transform` objects.
        sizes: passes per method (defaults: IG 50 steps, SmoothGrad 25 copies, FreqRISE 3,000 masks).

    Returns:
        rows and meta (thread budget, device, repeats).
    """
    say = progress or (lambda line: None)
    sizes = {"ig": 50, "smoothgrad": 25, "freqrise": 3000, **(sizes or {})}
    device = model_device(model)
    wave = wave.to(device)
    with torch.no_grad():
        target = int(model(wave.reshape(1, -1))[0].argmax())
    refs: dict[tuple[str, str], torch.Tensor] = {}
    live: dict[str, torch.Tensor] = {}
    rows: list[PeerRow] = []
    for count in burners:
        with cpu_burners(count):
            for transform in transforms:
                for method in methods:
                    size = int(sizes[method])
                    ours, peer, peer_name, passes = _pair(method, model, wave, transform, target, size, seed)
                    ours(), peer()                                                   # warm both
                    t_ours, t_peer = [], []
                    for rep in range(repeats):
                        order = (ours, peer) if rep % 2 == 0 else (peer, ours)
                        for fn in order:
                            seconds, out = _timed(fn, device)
                            (t_ours if fn is ours else t_peer).append(seconds)
                            if fn is ours:
                                map_ours = out
                            else:
                                map_peer = out
                    key = (method, transform.name)
                    if key not in refs:
                        refs[key] = _reference_map(method, model, wave, transform, target, size, seed)
                    if transform.name not in live:
                        live[transform.name] = live_cells(model, wave, transform, target)
                    keep = live[transform.name]
                    mo, mp = statistics.median(t_ours), statistics.median(t_peer)
                    row = PeerRow(method, peer_name, transform.name, count, passes, mo, mp, mp / mo,
                                  spearman(map_ours[keep], refs[key][keep]), spearman(map_peer[keep], refs[key][keep]),
                                  repeats)
                    rows.append(row)
                    say(f"{method} × {transform.name}, {count} burner(s): Earmark {mo:.3f} s, peer {mp:.3f} s "
                        f"(×{row.speedup:.2f})")
    meta = {"threads": current_budget().describe(), "torch_threads": torch.get_num_threads(),
            "device": str(device), "repeats": repeats, "sizes": sizes, "target": target}
    return rows, meta


def peers_markdown(rows: Sequence[PeerRow], meta: dict[str, Any]) -> str:
    """The peer table, with Earmark's slowdown under one burner relative to its quiet time."""
    lines = ["## Peers: Earmark against the leanest implementation of each estimator", "",
             f"- {meta.get('threads')}; device {meta.get('device')}; median of {meta.get('repeats')} interleaved "
             "repetitions; speed-up = peer s / Earmark s (above 1: Earmark faster); quality = Spearman with a long "
             "reference map of the same estimator, over the live cells (not the zero padding's inert ones)", "",
             "| method | peer | domain | burners | passes | Earmark s | peer s | speed-up | quality Earmark | "
             "quality peer |", "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.method} | {r.peer} | {r.transform} | {r.burners} | {r.passes} | {r.earmark_s:.3f} | "
                     f"{r.peer_s:.3f} | {r.speedup:.2f} | {r.earmark_quality:.3f} | {r.peer_quality:.3f} |")
    quiet = {(r.method, r.transform): r.earmark_s for r in rows if r.burners == 0}
    slow = [(r, r.earmark_s / quiet[(r.method, r.transform)]) for r in rows
            if r.burners == 1 and (r.method, r.transform) in quiet]
    if slow:
        lines += ["", "Earmark's time beside one burner, relative to its quiet time: "
                  + ", ".join(f"{r.method} × {r.transform} ×{s:.2f}" for r, s in slow) + "."]
    return "\n".join(lines) + "\n"


def peer_rows_json(rows: Sequence[PeerRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
