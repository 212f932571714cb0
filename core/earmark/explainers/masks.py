"""Random masks for the sampling explainers (FreqRISE, RELAX), drawn on a transform's image grid.

Every generator here returns ``(N, F, T)`` masks on the *image grid* of a transform (rows = frequency
bands or wavelet levels, columns = time), with 1 = keep the cell and 0 = replace it by the baseline.
:func:`to_map_space` converts them to the transform's map space with ``transform.from_image``, which
is what :meth:`earmark.probe.Probe.score` takes.

Two families:

* **smooth masks** (RISE / FreqRISE / RELAX's default, :func:`smooth_masks`): a Bernoulli(keep) draw
  on a coarse grid, upsampled (bilinear) to ``(grid + 1) · cell`` pixels, shifted at random by up to
  one cell and cropped to the image. Linear interpolation has weights summing to one, so every pixel
  keeps ``E[M] = keep`` exactly, whatever the shift.
* **block masks** (the RELAX spectrogram study's structured strategies, :func:`block_masks`): a
  Bernoulli(keep) draw per rectangular block with hard edges and a random offset of the block grid.
  Blocks spanning the whole frequency axis are *time stripes*, blocks spanning the whole time axis are
  *frequency stripes*, smaller rectangles are *time–frequency patches*. Every pixel is masked with
  probability exactly ``1 − keep``.

All draws come from the given ``torch.Generator`` and are made as whole tensors on ``device``; the same
generator state gives bit-identical masks.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from ..errors import ConfigError

Strategy = Literal["unstructured", "time", "frequency", "patches"]
STRATEGIES: tuple[str, ...] = ("unstructured", "time", "frequency", "patches")

#: Images with at most this many rows (DWT levels, few mel bands) get one grid row per image row.
FEW_ROWS = 16
#: Mask elements per chunk (32 MB of float32): chunk sizes depend on the image shape only, never on
#: the device, so a seed gives the same masks everywhere.
CHUNK_ELEMENTS = 2**23


def grid_for(image_shape: tuple[int, int], cells: int) -> tuple[int, int]:
    """Coarse grid ``(rows, cols)`` with about ``cells`` cells that follows the image's aspect.

    A 1-D image (``F == 1`` or ``T == 1``: time or Fourier domain) gets a 1-D grid of
    ``min(cells, length)`` cells. An image with at most :data:`FEW_ROWS` rows (DWT levels) gets one grid
    row per image row and ``cells / rows`` columns. Otherwise ``rows / cols ≈ F / T`` and
    ``rows · cols ≈ cells``.

    Args:
        image_shape: ``(F, T)`` of the image grid.
        cells: wanted number of cells (≥ 1).

    Returns:
        ``(gf, gt)`` with ``1 ≤ gf ≤ F`` and ``1 ≤ gt ≤ T``.

    Example:
        >>> grid_for((129, 126), 200), grid_for((4001, 1), 200), grid_for((6, 4003), 200)
        ((14, 14), (200, 1), (6, 33))
    """
    f, t = int(image_shape[0]), int(image_shape[1])
    cells = max(1, int(cells))
    if t == 1:
        return min(cells, f), 1
    if f == 1:
        return 1, min(cells, t)
    if f <= FEW_ROWS:
        gf = min(f, cells)
    else:
        gf = min(f, max(1, round(math.sqrt(cells * f / t))))
    gt = min(t, max(1, round(cells / gf)))
    return gf, gt


def chunk_size(image_shape: tuple[int, int], *, limit: int = 1000) -> int:
    """Masks per chunk for an image of ``image_shape``: about :data:`CHUNK_ELEMENTS` values, at most ``limit``."""
    return max(1, min(limit, CHUNK_ELEMENTS // max(1, image_shape[0] * image_shape[1])))


def _shifts(n: int, cell: tuple[int, int], *, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Random offsets (n, 1) in ``[0, cell_f)`` and ``[0, cell_t)``, one pair per mask."""
    dy = torch.randint(0, max(1, cell[0]), (n, 1), generator=generator, device=device)
    dx = torch.randint(0, max(1, cell[1]), (n, 1), generator=generator, device=device)
    return dy, dx


Sampler = Literal["bernoulli", "antithetic", "sobol"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)


class CellDraws:
    """Where the uniform numbers behind a batch of masks come from (variance reduction).

    * ``bernoulli`` (the papers): independent draws; the masks use the generator directly, exactly as
      without a sampler (the same seed gives the same masks as before this option existed).
    * ``antithetic``: masks come in pairs from ``u`` and ``1 − u`` with the same shift, so the second of a
      pair keeps exactly the cells the first drops (for ``p = 0.5``; in general it is the mirrored draw).
    * ``sobol``: a scrambled Sobol sequence (``torch.quasirandom.SobolEngine``, seeded from the
      generator) over the grid cells and the two shifts: every cell is kept in close to exactly the
      expected share of the masks, and pairs of cells are balanced too.

    Calling it gives ``(cells (n, dims), shifts (n, 2))`` uniforms in [0, 1); the Sobol engine carries
    over from chunk to chunk (the sequence continues), antithetic pairs are made within each chunk.
    """

    def __init__(self, kind: str, *, generator: torch.Generator, device=None):
        if kind not in SAMPLERS:
            raise ConfigError(f"Unknown mask sampler '{kind}'. Use one of: {', '.join(SAMPLERS)}.")
        self.kind, self.generator = kind, generator
        self.device = torch.device(device) if device is not None else generator.device
        self._engine = None

    def __call__(self, n: int, dims: int) -> tuple[Tensor, Tensor]:
        g, dev = self.generator, self.device
        if self.kind == "sobol":
            if self._engine is None:
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device))
                self._engine = torch.quasirandom.SobolEngine(dims + 2, scramble=True, seed=seed)
            u = self._engine.draw(n).to(dev)
            return u[:, :dims], u[:, dims:]
        if self.kind == "antithetic":
            half = (n + 1) // 2
            u = torch.rand((half, dims), generator=g, device=dev)
            shifts = torch.rand((half, 2), generator=g, device=dev)
            cells = torch.stack([u, 1.0 - u], 1).reshape(-1, dims)[:n]
            return cells, shifts.repeat_interleave(2, 0)[:n]
        return torch.rand((n, dims), generator=g, device=dev), torch.rand((n, 2), generator=g, device=dev)


def _uniform_shifts(u: Tensor, cell: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """(n, 2) uniforms → integer offsets (n, 1) in ``[0, cell_f)`` and ``[0, cell_t)``."""
    cf, ct = max(1, cell[0]), max(1, cell[1])
    dy = (u[:, :1] * cf).long().clamp_max(cf - 1)
    dx = (u[:, 1:2] * ct).long().clamp_max(ct - 1)
    return dy, dx


def _resample_axis(grid: Tensor, dim: int, idx: Tensor) -> Tensor:
    """Read ``grid`` (N, A, B) along ``dim`` (1 or 2) at per-mask indices ``idx`` (N, K)."""
    shape = list(grid.shape)
    shape[dim] = idx.shape[1]
    idx = idx[:, :, None] if dim == 1 else idx[:, None, :]
    return torch.gather(grid, dim, idx.expand(shape))


def smooth_masks(n: int, image_shape: tuple[int, int], *, cells: int = 200, p: float = 0.5,
                 generator: torch.Generator, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, draws: CellDraws | None = None) -> Tensor:
    """RISE-style smooth random masks on an image grid.

    Bernoulli(keep = 1 − p) on the :func:`grid_for` grid, bilinearly upsampled (``align_corners=False``)
    to ``(gf + 1)·cf × (gt + 1)·ct`` pixels with cell size ``cf = ⌈F / gf⌉``, ``ct = ⌈T / gt⌉``, shifted
    by a random offset in ``[0, cf) × [0, ct)`` and cropped to ``(F, T)``; computed axis by axis for the
    cropped pixels only (``F.interpolate`` and a crop, to float round-off). An axis whose grid already has
    one cell per pixel (``gf == F``: DWT levels, few mel bands) is kept as drawn: no blending, no shift.

    Args:
        n: number of masks.
        image_shape: ``(F, T)``.
        cells: about how many coarse cells (see :func:`grid_for`).
        p: probability that a coarse cell is dropped, in [0, 1).
        generator: the random source (on ``device``).
        device: where to build the masks (default: the generator's device).
        dtype: floating dtype of the result.
        draws: a :class:`CellDraws` (antithetic or Sobol cells); ``None`` = plain Bernoulli draws.

    Returns:
        (n, F, T) masks in [0, 1]; each pixel has expectation ``1 − p``.
    """
    device = torch.device(device) if device is not None else generator.device
    f, t = int(image_shape[0]), int(image_shape[1])
    gf, gt = grid_for((f, t), cells)
    cf, ct = math.ceil(f / gf), math.ceil(t / gt)
    if draws is None or draws.kind == "bernoulli":
        grid = (torch.rand((n, 1, gf, gt), generator=generator, device=device) >= p).to(dtype)
        shift_u = None
    else:
        cell_u, shift_u = draws(n, gf * gt)
        grid = (cell_u.view(n, 1, gf, gt) >= p).to(dtype)
    # An axis with one grid cell per pixel (e.g. DWT levels) is neither interpolated nor shifted, so a
    # mask never blends neighbouring rows that are different things (wavelet levels).
    cell = (1 if gf == f else cf, 1 if gt == t else ct)
    dy, dx = (_shifts(n, cell, generator=generator, device=device) if shift_u is None
              else _uniform_shifts(shift_u, cell))
    # Bilinear up-sampling is separable: interpolate the grid along time, then along frequency, reading
    # only the cropped pixels (never the (gf + 1)·cf × (gt + 1)·ct image).
    masks = grid[:, 0]
    if gt != t:
        masks = _interp_axis(masks, 2, *_linear_taps(gt, t, ct, dx))
    if gf != f:
        masks = _interp_axis(masks, 1, *_linear_taps(gf, f, cf, dy))
    return masks


def _linear_taps(cells: int, out: int, cell: int, shift: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where ``out`` pixels starting at pixel ``shift`` (n, 1) of a linear up-sampling of ``cells`` values
    to ``(cells + 1)·cell`` pixels (``align_corners=False``, as ``F.interpolate``) read from: the two cell
    indices (n, out) and the weight of the second (n, out)."""
    scale = torch.tensor(cells / ((cells + 1) * cell), dtype=torch.float32, device=shift.device)
    src = ((shift + torch.arange(out, device=shift.device)).to(torch.float32) + 0.5) * scale - 0.5
    src = src.clamp_min(0)
    first = src.long()
    return first, (first + 1).clamp_max(cells - 1), src - first


#: Cells along an axis up to which its interpolation is a batched matrix product (fast for few cells);
#: above it, two gathers and a blend (the matrix would be mostly zeros).
MATMUL_CELLS = 16


def _interp_axis(grid: Tensor, dim: int, first: Tensor, second: Tensor, weight: Tensor) -> Tensor:
    """Linear interpolation of ``grid`` (n, A, B) along ``dim`` (1 or 2) at per-mask taps (n, K)."""
    cells = grid.shape[dim]
    weight = weight.to(grid.dtype)
    if dim == 1 and cells <= MATMUL_CELLS:
        matrix = torch.zeros((grid.shape[0], first.shape[1], cells), dtype=grid.dtype, device=grid.device)
        matrix.scatter_add_(2, first[:, :, None], (1 - weight)[:, :, None])
        matrix.scatter_add_(2, second[:, :, None], weight[:, :, None])
        return matrix @ grid
    w = weight[:, :, None] if dim == 1 else weight[:, None, :]
    return torch.lerp(_resample_axis(grid, dim, first), _resample_axis(grid, dim, second), w)


def block_masks(n: int, image_shape: tuple[int, int], *, block: tuple[int, int], fraction: float = 0.5,
                generator: torch.Generator, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32, draws: CellDraws | None = None) -> Tensor:
    """Binary masks made of ``block``-sized rectangles, each masked (0) with probability ``fraction``.

    The block grid is offset at random by up to one block along every axis the block does not span
    entirely, so block edges fall anywhere; along an axis the block spans (``block ≥ size``) the mask
    is constant.

    Args:
        n: number of masks.
        image_shape: ``(F, T)``.
        block: ``(rows, cols)`` of one block, each ≥ 1.
        fraction: probability that a block is masked, in [0, 1].
        generator, device, dtype, draws: as in :func:`smooth_masks`.

    Returns:
        (n, F, T) masks with values in {0, 1}; each pixel is 0 with probability ``fraction``.
    """
    device = torch.device(device) if device is not None else generator.device
    f, t = int(image_shape[0]), int(image_shape[1])
    bf, bt = max(1, min(int(block[0]), f)), max(1, min(int(block[1]), t))
    nf = 1 if bf >= f else math.ceil(f / bf) + 1
    nt = 1 if bt >= t else math.ceil(t / bt) + 1
    cell = (bf if nf > 1 else 1, bt if nt > 1 else 1)
    if draws is None or draws.kind == "bernoulli":
        keep = (torch.rand((n, nf, nt), generator=generator, device=device) >= fraction).to(dtype)
        dy, dx = _shifts(n, cell, generator=generator, device=device)
    else:
        cell_u, shift_u = draws(n, nf * nt)
        keep = (cell_u.view(n, nf, nt) >= fraction).to(dtype)
        dy, dx = _uniform_shifts(shift_u, cell)
    rows = (dy + torch.arange(f, device=device)) // bf                    # (n, F) block index per row
    cols = (dx + torch.arange(t, device=device)) // bt                    # (n, T)
    return _resample_axis(_resample_axis(keep, 1, rows), 2, cols)


def strategy_masks(n: int, image_shape: tuple[int, int], *, strategy: Strategy = "unstructured",
                   cells: int = 200, fraction: float = 0.5, generator: torch.Generator,
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                   draws: CellDraws | None = None) -> Tensor:
    """RELAX masking strategies on an image grid, each masking ``fraction`` of it on average.

    * ``unstructured``: :func:`smooth_masks` with drop probability ``fraction`` (RELAX's default masks).
    * ``time``: stripes of whole columns, ``⌈T / gt⌉`` columns wide (``gt`` columns of the
      :func:`grid_for` grid), constant along frequency.
    * ``frequency``: stripes of whole rows, ``⌈F / gf⌉`` rows high, constant along time.
    * ``patches``: ``⌈F / gf⌉ × ⌈T / gt⌉`` time–frequency rectangles.

    Args:
        n: number of masks.
        image_shape: ``(F, T)``.
        strategy: one of :data:`STRATEGIES`.
        cells: coarse grid size (see :func:`grid_for`); sets the stripe and patch sizes.
        fraction: expected masked fraction, in [0, 1).
        generator, device, dtype, draws: as in :func:`smooth_masks`.

    Returns:
        (n, F, T) masks in [0, 1] (1 = keep).

    Raises:
        ConfigError: unknown strategy, or stripes along an axis the image does not have (time stripes
            on the Fourier image, frequency stripes on the waveform).
    """
    f, t = int(image_shape[0]), int(image_shape[1])
    if strategy == "unstructured":
        return smooth_masks(n, (f, t), cells=cells, p=fraction, generator=generator, device=device, dtype=dtype,
                            draws=draws)
    if strategy not in STRATEGIES:
        raise ConfigError(f"Unknown masking strategy '{strategy}'. Use one of: {', '.join(STRATEGIES)}.")
    if strategy == "time" and t == 1:
        raise ConfigError("Time stripes need a domain with a time axis; this one has a single column "
                          "(Fourier). Use 'frequency' or 'unstructured' masks, or an STFT/mel domain.")
    if strategy == "frequency" and f == 1:
        raise ConfigError("Frequency stripes need a domain with a frequency axis; this one has a single row "
                          "(waveform). Use 'time' or 'unstructured' masks, or an STFT/mel/DWT domain.")
    gf, gt = grid_for((f, t), cells)
    cf, ct = math.ceil(f / gf), math.ceil(t / gt)
    block = {"time": (f, ct), "frequency": (cf, t), "patches": (cf, ct)}[strategy]
    return block_masks(n, (f, t), block=block, fraction=fraction, generator=generator, device=device, dtype=dtype,
                       draws=draws)


def to_map_space(transform, image_masks: Tensor, *, length: int) -> Tensor:
    """(N, F, T) image-grid masks of a ``length``-sample clip → (N, *M) map-space masks via
    ``transform.from_image``."""
    return transform.from_image(image_masks, length=length)


class WeightedMoments:
    """Streaming weighted mean and spread per cell (Chan et al.'s pairwise merge), chunk by chunk.

    For values ``v_n`` with weights ``w_n ≥ 0`` (broadcastable to the cell shape) it keeps
    ``W = Σ w``, ``mean = Σ w v / W`` and ``S = Σ w (v − mean)²`` without storing the draws; merging
    per-chunk statistics is numerically stable (no ``E[v²] − E[v]²`` cancellation).

    Args:
        shape: the cell shape ``M``.
        device, dtype: of the accumulators.
    """

    def __init__(self, shape: tuple[int, ...], *, device=None, dtype: torch.dtype = torch.float32):
        self.weight = torch.zeros(shape, device=device, dtype=dtype)
        self.mean = torch.zeros(shape, device=device, dtype=dtype)
        self.spread = torch.zeros(shape, device=device, dtype=dtype)
        self.weight_sq = torch.zeros(shape, device=device, dtype=dtype)

    def effective_count(self) -> Tensor:
        """(*M) Kish's effective number of draws ``(Σ w)² / Σ w²`` per cell (0 where no weight)."""
        return self.weight**2 / self.weight_sq.clamp_min(torch.finfo(self.weight_sq.dtype).tiny)

    def update(self, values: Tensor, weights: Tensor, *, consume: bool = False) -> None:
        """Add a chunk: ``values`` and ``weights`` broadcast to (B, *M).

        Unit weights (a 0-d tensor equal to 1, as FreqRISE passes) take a path with no weight arrays: the
        same arithmetic (``1·v = v``, ``Σ 1 = B``), so the same bits, in about half the memory passes.
        ``consume=True``: the caller no longer needs ``values``, so that path overwrites them (no copy).
        """
        if weights.ndim == 0 and values.ndim > 1 and bool(weights == 1):
            self._update_unit(values, consume=consume)
            return
        values, weights = torch.broadcast_tensors(values, weights)
        w_b = weights.sum(0)
        safe = w_b.clamp_min(torch.finfo(w_b.dtype).tiny)
        mean_b = (weights * values).sum(0) / safe
        s_b = (weights * (values - mean_b) ** 2).sum(0)
        self._merge(w_b, mean_b, s_b, (weights**2).sum(0))

    def _update_unit(self, values: Tensor, *, consume: bool = False) -> None:
        """:meth:`update` with every weight 1: ``w_b = B`` everywhere, the squared deviations in place."""
        b = torch.full((), values.shape[0], dtype=self.weight.dtype, device=self.weight.device)
        mean_b = values.sum(0) / b
        deviations = values.sub_(mean_b) if consume else values - mean_b
        self._merge(b, mean_b, deviations.square_().sum(0), b)

    def _merge(self, w_b: Tensor, mean_b: Tensor, s_b: Tensor, w_sq_b: Tensor) -> None:
        """Merge a chunk's weight, mean, squared deviations and squared weights into the running ones."""
        total = self.weight + w_b
        safe_total = total.clamp_min(torch.finfo(total.dtype).tiny)
        delta = mean_b - self.mean
        self.spread = self.spread + s_b + delta**2 * self.weight * w_b / safe_total
        self.mean = self.mean + delta * w_b / safe_total
        self.weight = total
        self.weight_sq = self.weight_sq + w_sq_b


class RunningMean:
    """A streaming weighted mean per cell, ``Σ w v / Σ w``, kept as two running sums.

    For estimates that need the mean only (the split halves, a second class's map): one matrix product
    per chunk instead of :class:`WeightedMoments`' element-wise passes. ``values`` and ``weights`` are
    given as the chunk's (B, *M) arrays or per-draw scalars (B, 1, ..) or a 0-d weight.
    """

    def __init__(self, shape: tuple[int, ...], *, device=None, dtype: torch.dtype = torch.float32):
        self.shape = tuple(shape)
        self.total = torch.zeros(shape, device=device, dtype=dtype)
        self.weight = torch.zeros(shape, device=device, dtype=dtype)

    @property
    def mean(self) -> Tensor:
        return self.total / self.weight.clamp_min(torch.finfo(self.weight.dtype).tiny)

    def add(self, total: Tensor, weight: float | Tensor) -> None:
        """Add sums computed by the caller: ``Σ w v`` (*M) and ``Σ w`` (scalar or (*M))."""
        self.total += total
        self.weight += weight

    def update(self, values: Tensor, weights: Tensor, rows: Tensor | None = None) -> None:
        """Add the draws of a chunk (``rows`` (K, B): a 0/1 or weighting matrix selecting the draws that
        belong to this mean; ``None`` = all)."""
        b = values.shape[0]
        sel = torch.ones((1, b), dtype=self.total.dtype, device=self.total.device) if rows is None else rows
        sel = sel.to(self.total.dtype)
        per_draw_v, per_draw_w = values[0].numel() == 1, weights.ndim == 0 or weights[0].numel() == 1
        if per_draw_v and not per_draw_w:          # RELAX: a scalar per draw, weighted by full masks
            w = weights.reshape(b, -1)
            self.total += ((sel * values.reshape(1, b)) @ w).reshape(self.shape)
            self.weight += (sel @ w).reshape(self.shape)
            return
        if weights.ndim == 0:                      # one weight for every draw
            self.total += ((sel @ values.reshape(b, -1)) * weights).reshape(self.shape)
            self.weight += sel.sum() * weights
            return
        v, w = torch.broadcast_tensors(values, weights)
        self.total += (sel @ (v * w).reshape(b, -1)).reshape(self.shape)
        self.weight += (sel @ w.reshape(b, -1)).reshape(self.shape)


#: Masks in the first chunks of a sampling run, then :data:`STEADY_CHUNK` per chunk: a first estimate comes
#: after 25 masks (well under a second on a CPU), and every multiple of 200 masks is a chunk end (where
#: ``stop="auto"`` compares estimates). Fixed, so a seed gives the same masks on every device, and a run
#: of ``n`` masks draws exactly the first ``n`` masks of a longer run.
RAMP = (25, 25, 50, 100)
STEADY_CHUNK = 200


def chunk_schedule(n_masks: int, image_shape: tuple[int, int]) -> list[int]:
    """Masks per chunk for a run of ``n_masks``: :data:`RAMP`, then :data:`STEADY_CHUNK`, each at most
    :func:`chunk_size` (memory), the last one cut to the total.

    Example:
        >>> chunk_schedule(700, (129, 126))
        [25, 25, 50, 100, 200, 200, 100]
    """
    cap = chunk_size(image_shape)
    sizes, done, i = [], 0, 0
    while done < n_masks:
        b = min(RAMP[i] if i < len(RAMP) else STEADY_CHUNK, cap, n_masks - done)
        sizes.append(b)
        done, i = done + b, i + 1
    return sizes


def mask_chunks(probe, n_masks: int, draw, *, progress=None):
    """Draw ``n_masks`` image-grid masks in chunks (:func:`chunk_schedule`) and yield them in map space.

    The one loop under the sampling explainers: chunk sizes depend on the image shape only, so a seed
    gives the same masks on every device, and a shorter run is a prefix of a longer one. A caller may stop
    iterating after any chunk (``stop="auto"``).

    Args:
        probe: the clip, model and domain (:class:`~earmark.probe.Probe`).
        n_masks: total number of masks.
        draw: ``draw(b, image_shape) -> (b, F, T)`` masks on the image grid.
        progress: the caller's ``progress(fraction, stage)``; each chunk gets its share.

    Yields:
        ``(masks (b, *M), chunk_progress)`` — ``chunk_progress`` maps the chunk's own 0→1 onto the total.
    """
    from ..probe import sub_progress

    image_shape = tuple(probe.transform.image_shape(probe.length))
    start = 0
    for b in chunk_schedule(n_masks, image_shape):
        yield (to_map_space(probe.transform, draw(b, image_shape), length=probe.length),
               sub_progress(progress, start / n_masks, (start + b) / n_masks))
        start += b


# ---- cells where masking changes nothing -------------------------------------------------------------
#: A map cell is inert when every coefficient it covers differs from the replacement value by at most
#: this share of the clip's largest coefficient magnitude (float32 round-off of exact zeros is ~1e-7).
INERT_RTOL = 1e-6
#: Inert cells sit this share of the map's largest magnitude below its lowest live cell.
INERT_BELOW = 1e-6
#: How mask methods report inert cells: ``"none"`` = no importance (below every other cell, the
#: default), ``"raw"`` = the method's own value there (what the papers' maps show).
Inert = Literal["none", "raw"]
INERT_CHOICES: tuple[str, ...] = get_args(Inert)
INERT_HELP = ("cells whose coefficients equal the replacement value (e.g. zero padding), where masking "
              "changes nothing: 'none' gives them no importance (ranked below every other cell), 'raw' keeps "
              "the method's own value there (the paper's map; the raw map is always in extras['raw_saliency'])")


def inert_cells(probe, baseline="zero", *, rtol: float = INERT_RTOL) -> Tensor:
    """(*M) bool: cells of ``probe``'s map where masking cannot change the input.

    A cell is inert when ``pool(|z − b|²) ≤ (rtol · max|z|)²`` — every coefficient lifted into it already
    equals the replacement value ``b`` (for the zero baseline: the silent frames of zero padding). For a
    mel band that means all of its STFT bins.

    Args:
        probe: the clip, model and domain.
        baseline: the replacement value the method uses (:data:`earmark.probe.BASELINES` or a tensor).
    """
    from ..probe import baseline_coeffs

    z = probe.coeffs
    diff = (z - baseline_coeffs(z, baseline)).abs() ** 2
    power = probe.transform.pool(diff[None].real)[0]
    scale = float(z.abs().max())
    return power <= (rtol * scale) ** 2 if scale > 0 else torch.ones_like(power, dtype=torch.bool)


def without_inert(saliency: Tensor, uncertainty: Tensor, inert: Tensor, extras: dict[str, Tensor],
                  mode: str = "none") -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Give inert cells no importance — 0 for a positive map, else just below its lowest live value — and no uncertainty.

    Args:
        saliency, uncertainty: (*M) the method's maps.  inert: (*M) bool from :func:`inert_cells`.
        extras: the method's extras; ``raw_saliency`` (*M) and ``inert`` (*M, 0/1) are added.
        mode: ``"none"`` (apply) or ``"raw"`` (leave the maps as computed; extras still added).

    Returns:
        (saliency, uncertainty, extras).
    """
    extras = {**extras, "raw_saliency": saliency, "inert": inert.to(saliency.dtype)}
    if mode == "raw" or not bool(inert.any()):
        return saliency, uncertainty, extras
    live = saliency[~inert]
    if live.numel() and float(live.min()) > 0:   # a positive map stays non-negative: 0 ranks below every live cell
        floor = saliency.new_zeros(())
    elif live.numel():   # just below every live cell (and ≤ 0), so rankings put inert cells last, even after ties at 0
        floor = live.min() - INERT_BELOW * live.abs().max().clamp_min(1e-12)
    else:
        floor = saliency.new_zeros(())
    return (torch.where(inert, floor, saliency), torch.where(inert, torch.zeros_like(uncertainty), uncertainty),
            extras)
