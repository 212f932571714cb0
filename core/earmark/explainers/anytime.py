"""Anytime results: estimates published while a sampling or mask method runs, and ``stop="auto"``.

An explainer whose spec says ``anytime=True`` takes ``on_partial`` and ``stop``:

* ``on_partial(saliency, done, total, convergence)`` is called after every chunk of masks (sampling
  methods) or every optimisation step (mask methods) with the current estimate ``saliency`` (*M) on the
  device (a copy the caller may keep), ``done`` and ``total`` masks or steps, and ``convergence``: the
  top-10 % overlap (Jaccard index of the cell sets) between this estimate and the one
  :data:`SAMPLING_WINDOW` masks / :data:`STEP_WINDOW` steps earlier, or ``None`` before there is one.
  The last call carries the final saliency, bit for bit. Listening changes nothing: the same seed gives
  the same result with or without a listener.
* ``stop="budget"`` (the papers' protocol) spends the whole budget; ``stop="auto"`` ends early when the
  estimate has converged, and never spends more than the budget:

  - sampling: at a chunk end where the top-10 % set is stable (Jaccard ≥ :data:`JACCARD_MIN` against the
    estimate :data:`SAMPLING_WINDOW` masks earlier) **and** the Monte-Carlo standard error is small
    against the map's spread (median standard error ≤ :data:`SE_RATIO_MAX` × the map's standard
    deviation over cells), after at least :data:`MIN_MASKS` masks;
  - mask optimisation: when the loss has flattened — over the last :data:`STEP_WINDOW` steps the
    (5-step mean) loss fell by less than :data:`LOSS_FLAT` of what it has fallen since the start — and
    the top-10 % set of the mask is stable (Jaccard ≥ :data:`STEP_JACCARD_MIN` against the mask
    :data:`STEP_WINDOW` steps earlier), after at least :data:`MIN_STEPS` steps. The bar is lower than
    for sampling: a learned mask keeps only ~5 % of the cells, so the edge of its top 10 % drifts slowly
    among near-zero cells long after the kept cells are settled (on FSDD clips its overlap over 50
    steps stays at 0.86–0.90 from step 150 to 300, while I, D and the AUCs no longer move).

Since ``auto`` only ends a run at a chunk end or a step, its result is exactly the ``budget`` run's
estimate at that point (same masks, same steps).

Sampling methods also take ``stop_at_stability`` (:func:`stability_param`): a target for the map's
**split-half stability** (:class:`SplitHalves`: the top-10 % overlap between two halves of the run's masks,
on the live cells). At a chunk end after :data:`MIN_MASKS` masks where the figure reaches the target, the
run ends; the figure the rule read is the one the result carries (``extras["stability_top10"]``) and the
app prints under the map, computed once from the same state. 0 (the API's default) turns it off. The app
starts at :data:`STABLE_TOP10` = 0.8, the level at which the text under the map says "stable": the run
ends when the map can be called stable, and a map that never gets there (a model with no structure to
find) spends its whole budget and says "still noisy".
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Literal, get_args

import torch
from torch import Tensor

from ..params import Param
from .masks import RunningMean

#: ``on_partial(saliency (*M), done, total, convergence)``.
PartialFn = Callable[[Tensor, int, int, "float | None"], None]

Stop = Literal["budget", "auto"]
STOPS: tuple[str, ...] = get_args(Stop)

#: The share of cells whose set is compared between estimates.
TOP_FRACTION = 0.10
#: Masks between the two sampling estimates compared.
SAMPLING_WINDOW = 200
#: Steps between the two mask estimates (and losses) compared.
STEP_WINDOW = 50
#: Jaccard index of the top-10 % sets needed to call an estimate stable.
JACCARD_MIN = 0.95
#: The same for a mask optimisation (see the module docstring).
STEP_JACCARD_MIN = 0.85
#: Median Monte-Carlo standard error allowed, as a share of the map's spread over cells.
SE_RATIO_MAX = 0.5
#: ``auto`` never stops a sampling run before this many masks, nor an optimisation before this many steps.
MIN_MASKS = 400
MIN_STEPS = 100
#: Share of the loss's total fall that the last :data:`STEP_WINDOW` steps may still gain and count as flat.
LOSS_FLAT = 0.01
#: Steps averaged to read the loss (Adam's loss jitters from step to step).
LOSS_SMOOTH = 5


def stop_param(what: str) -> Param:
    """The declared ``stop`` setting of a sampling (``what="masks"``) or mask method (``"steps"``)."""
    return Param("stop", "budget", f"'budget' spends all {what} (the paper's protocol); 'auto' stops when the "
                 f"map has converged, never after the budget", choices=STOPS)


def stability_param() -> Param:
    """The declared ``stop_at_stability`` setting of a sampling method (see the module docstring)."""
    return Param("stop_at_stability", 0.0, "end the run once two halves of its masks agree on at least this share "
                 "of the top-10 % cells (the stability figure shown under the map); 0 = off, spend the budget",
                 low=0.0, high=1.0, step=0.05)


def top_cells(saliency: Tensor, fraction: float = TOP_FRACTION) -> Tensor:
    """(*M) → (K,) sorted flat indices of the ``fraction`` largest cells (at least one).

    Cells tied at the map's minimum are left out (a mask clamped to 0 over most cells has no top 10 %
    among them; picking some of the ties would make the overlap jitter between equal maps), unless the
    whole map is constant.
    """
    flat = saliency.detach().flatten()
    k = max(1, int(round(fraction * flat.numel())))
    idx = torch.topk(flat, k, sorted=False).indices
    low = flat.min()
    if bool((flat[idx] > low).any()):
        idx = idx[flat[idx] > low]
    return torch.sort(idx).values


def jaccard(a: Tensor, b: Tensor) -> float:
    """Jaccard index |a ∩ b| / |a ∪ b| of two index sets (1-D integer tensors without repeats)."""
    inter = int(torch.isin(a, b).sum())
    union = a.numel() + b.numel() - inter
    return inter / union if union else 1.0


def se_ratio(saliency: Tensor, std_error: Tensor) -> float:
    """Median Monte-Carlo standard error over cells, as a share of the map's standard deviation over cells."""
    spread = float(saliency.detach().float().std())
    if not spread > 0:
        return float("inf")
    return float(std_error.detach().float().median()) / spread


class _Tracker:
    """Past estimates (at most ``window`` behind) to compare the current one with."""

    def __init__(self, window: int):
        self.window = window
        self.past: deque[tuple[int, Tensor]] = deque()

    def convergence(self, done: int, saliency: Tensor) -> float | None:
        """Jaccard of the top cells now vs. the latest estimate at least ``window`` earlier (``None`` if none)."""
        top = top_cells(saliency)
        while len(self.past) >= 2 and self.past[1][0] <= done - self.window:
            self.past.popleft()
        value = jaccard(top, self.past[0][1]) if self.past and self.past[0][0] <= done - self.window else None
        self.past.append((done, top))
        return value


class SamplingMonitor:
    """Publishes a sampling run's estimates and decides ``stop="auto"``; inert when nobody asked for either.

    The run calls :meth:`update` after every chunk and stops when it returns ``True``; the final estimate
    is published by :func:`earmark.explainers.explain` from the result (see :meth:`extras`).

    Args:
        total: the mask budget.  stop: ``"budget"`` or ``"auto"``.  on_partial: the caller's listener.
        present: turns the running estimate into the map the result will show (e.g. inert cells set to
            no importance), for the listener only; the stop rule reads the running estimate itself.
        halves: the run's :class:`SplitHalves` (updated before :meth:`update`), read by
            ``stop_at_stability`` and :meth:`stability`.  live: bool (*M) cells the figure is computed on.
        stop_at_stability: end the run at a chunk end where the halves' top-10 % overlap reaches it (0 = off).
    """

    def __init__(self, total: int, *, stop: Stop = "budget", on_partial: PartialFn | None = None,
                 present: Callable[[Tensor], Tensor] = lambda s: s, halves: "SplitHalves | None" = None,
                 live: Tensor | None = None, stop_at_stability: float = 0.0):
        self.total, self.stop, self.on_partial, self.present = int(total), stop, on_partial, present
        self.halves, self.live, self.target = halves, live, float(stop_at_stability)
        self.active = on_partial is not None or stop == "auto" or self.target > 0
        self.tracker = _Tracker(SAMPLING_WINDOW)
        self.done = 0
        self.convergence: float | None = None
        self.reason = "budget"          # what ended the run: "budget", "auto" or "stability"
        self._figures: tuple[int, dict[str, Tensor]] | None = None

    def update(self, done: int, estimate: Callable[[], Tensor], std_error: Callable[[], Tensor]) -> bool:
        """After a chunk (``done`` masks so far): publish ``estimate()``; ``True`` = ``auto`` ends the run here."""
        self.done = done
        if not self.active:
            return False
        saliency = estimate()
        self.convergence = self.tracker.convergence(done, saliency)
        stop = (self.stop == "auto" and done < self.total and done >= MIN_MASKS and self.convergence is not None
                and self.convergence >= JACCARD_MIN and se_ratio(saliency, std_error()) <= SE_RATIO_MAX)
        if stop:
            self.reason = "auto"
        elif self.target > 0 and self.halves is not None and MIN_MASKS <= done < self.total:
            stop = float(self.stability()["stability_top10"]) >= self.target
            self.reason = "stability" if stop else self.reason
        if self.on_partial is not None and done < self.total and not stop:
            self.on_partial(self.present(saliency).detach().clone(), done, self.total, self.convergence)
        return stop

    def stability(self) -> dict[str, Tensor]:
        """The halves' figures now (:meth:`SplitHalves.figures` on the live cells), computed once per state:
        the stop rule and the result read the same numbers. Empty without halves."""
        if self.halves is None:
            return {}
        if self._figures is None or self._figures[0] != self.halves.seen:
            self._figures = (self.halves.seen, self.halves.figures(self.live))
        return self._figures[1]

    def extras(self, device=None) -> dict[str, Tensor]:
        """``budget_used``, ``budget_total`` and ``convergence`` (NaN when unknown) for the result's extras,
        the stability figures with halves, and ``stability_target`` when the stability rule was on."""
        out = {**budget_extras(self.done, self.total, self.convergence, device=device), **self.stability()}
        if self.target > 0:
            out["stability_target"] = torch.tensor(self.target, device=device, dtype=torch.float64)
        return out


class StepMonitor:
    """The same for a mask optimisation: publish ``estimate(masks)`` per step; ``auto`` when the loss is flat.

    Args:
        total: the step budget.  stop: ``"budget"`` or ``"auto"``.  on_partial: the listener.
        estimate: masks (R, *M) → saliency (*M) for the stop rule.
        present: saliency → the map the result will show, for the listener (as :class:`SamplingMonitor`).
    """

    def __init__(self, total: int, *, stop: Stop = "budget", on_partial: PartialFn | None = None,
                 estimate: Callable[[Tensor], Tensor] = lambda m: m.mean(0),
                 present: Callable[[Tensor], Tensor] = lambda s: s):
        self.total, self.stop, self.on_partial, self.estimate = int(total), stop, on_partial, estimate
        self.present = present
        self.active = on_partial is not None or stop == "auto"
        self.tracker = _Tracker(STEP_WINDOW)
        self.losses: list[float] = []
        self.done = 0
        self.convergence: float | None = None

    def loss_flat(self) -> bool:
        """The last :data:`STEP_WINDOW` steps gained less than :data:`LOSS_FLAT` of the total fall so far."""
        n = len(self.losses)
        if n < STEP_WINDOW + LOSS_SMOOTH:
            return False
        first = sum(self.losses[:LOSS_SMOOTH]) / LOSS_SMOOTH
        now = sum(self.losses[n - LOSS_SMOOTH:]) / LOSS_SMOOTH
        before = sum(self.losses[n - STEP_WINDOW - LOSS_SMOOTH:n - STEP_WINDOW]) / LOSS_SMOOTH
        fallen = first - now
        return fallen > 0 and (before - now) <= LOSS_FLAT * fallen

    def step(self, done: int, masks: Tensor, loss: Tensor) -> bool:
        """After step ``done`` (masks (R, *M), mean loss): publish; ``True`` = ``auto`` ends the optimisation."""
        self.done = done
        if not self.active:
            return False
        self.losses.append(float(loss))
        saliency = self.estimate(masks.detach())
        self.convergence = self.tracker.convergence(done, saliency)
        stop = (self.stop == "auto" and done < self.total and done >= MIN_STEPS and self.convergence is not None
                and self.convergence >= STEP_JACCARD_MIN and self.loss_flat())
        if self.on_partial is not None and done < self.total and not stop:
            self.on_partial(self.present(saliency).detach().clone(), done, self.total, self.convergence)
        return stop

    def extras(self, device=None) -> dict[str, Tensor]:
        """As :meth:`SamplingMonitor.extras`, in steps."""
        return budget_extras(self.done, self.total, self.convergence, device=device)


def budget_extras(done: int, total: int, convergence: float | None, *, device=None) -> dict[str, Tensor]:
    """Scalar extras every anytime result carries: masks/steps used, the budget, the last convergence."""
    return {"budget_used": torch.tensor(int(done), device=device),
            "budget_total": torch.tensor(int(total), device=device),
            "convergence": torch.tensor(float("nan") if convergence is None else float(convergence), device=device)}


__all__ = ["JACCARD_MIN", "PartialFn", "SamplingMonitor", "SplitHalves", "StepMonitor", "STOPS", "Stop",
           "budget_extras", "jaccard", "se_ratio", "stability_param", "stability_text", "stop_param", "top_cells"]


# ---- split-half stability ------------------------------------------------------------------------------
#: Top-10 % overlap between the two halves' maps at or above which a map is called stable on screen.
STABLE_TOP10 = 0.8


def rank_agreement(a: Tensor, b: Tensor) -> float:
    """Spearman correlation of two equal-size 1-D tensors (ranks by sort order; NaN if one is constant)."""
    if a.numel() < 2:
        return float("nan")
    ra = torch.empty_like(a, dtype=torch.float64)
    rb = torch.empty_like(b, dtype=torch.float64)
    ra[a.argsort()] = torch.arange(a.numel(), dtype=torch.float64, device=a.device)
    rb[b.argsort()] = torch.arange(b.numel(), dtype=torch.float64, device=b.device)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denom if denom > 0 else float("nan")


def top_overlap(a: Tensor, b: Tensor, fraction: float = TOP_FRACTION) -> float:
    """Share of ``a``'s top ``fraction`` cells that are also among ``b``'s (maps of equal size, any shape;
    the two top sets are equally large, so the share is the same read either way)."""
    a, b = a.detach().flatten(), b.detach().flatten()
    k = max(1, int(round(fraction * a.numel())))
    ta, tb = torch.topk(a, k).indices, torch.topk(b, k).indices
    return int(torch.isin(ta, tb).sum()) / k


class SplitHalves:
    """The run's draws split into two halves (alternate pairs of masks, so antithetic pairs stay together),
    each with its own streaming mean: two independent estimates of the same map from the same run.

    Their agreement on the live cells — Spearman and top-10 % overlap — is the map's **stability**: how
    much of the structure on screen would survive another seed at half the budget (a conservative figure
    for the whole run). It costs two extra moment updates per chunk, no model call.
    """

    def __init__(self, shape: tuple[int, ...], *, device=None, dtype: torch.dtype = torch.float32):
        self.halves = (RunningMean(shape, device=device, dtype=dtype), RunningMean(shape, device=device, dtype=dtype))
        self.seen = 0

    def update(self, values: Tensor, weights: Tensor) -> None:
        """Add a chunk (the same ``values`` and ``weights`` as the run's own moments, broadcast to (B, *M)):
        each half's sums in one matrix product over the chunk's draws."""
        b = values.shape[0]
        half = ((torch.arange(b, device=values.device) + self.seen) // 2) % 2
        for h, means in enumerate(self.halves):
            means.update(values, weights, rows=(half == h)[None])
        self.seen += b

    def figures(self, live: Tensor | None = None) -> dict[str, Tensor]:
        """``stability_spearman`` and ``stability_top10`` (0-d tensors; NaN before both halves have draws)
        between the halves' maps on ``live`` cells (bool (*M); ``None`` = all)."""
        a, b = (m.mean.detach().flatten().double() for m in self.halves)
        if live is not None and bool(live.any()):
            keep = live.flatten()
            a, b = a[keep], b[keep]
        ok = self.seen >= 4 and a.numel() > 1
        rho = rank_agreement(a, b) if ok else float("nan")
        top = top_overlap(a, b) if ok else float("nan")
        dev = self.halves[0].mean.device
        return {"stability_spearman": torch.tensor(rho, device=dev), "stability_top10": torch.tensor(top, device=dev)}


def stability_text(extras: dict) -> str:
    """The stability figure in words ("" when the result has none)."""
    if "stability_top10" not in extras:
        return ""
    top, rho = float(extras["stability_top10"]), float(extras.get("stability_spearman", float("nan")))
    if top != top:
        return ""
    if top >= STABLE_TOP10:
        return f"stable: top-10 % cells agree at {top:.2f} between two halves of the run (Spearman {rho:.2f})"
    return (f"still noisy: top-10 % cells agree at {top:.2f} between two halves of the run (Spearman {rho:.2f}); "
            "more masks or steps make it steadier")
