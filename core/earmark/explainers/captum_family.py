"""The Captum family in any domain: ``captum:<Class>`` explainers on ``model ∘ synthesize``.

Captum (Kokhlikyan et al. 2020) attributes a model's output to its *input*. Earmark hands it a module whose
input is a domain's coefficients (gradient methods) or a mask on the domain's display grid (perturbation
methods), so every Captum method explains in the time, Fourier, STFT, mel or wavelet domain:

* **gradient methods** (``DeepLift``, ``GradientShap``, ``NoiseTunnel``) run on
  :class:`CoefficientModule`, ``z ↦ f_c(synthesize(z))``. Complex coefficients are given to Captum as their
  real and imaginary parts (``torch.view_as_real``, a trailing axis of 2); the two parts' attributions are
  added per coefficient (``Re(conj(Δz)·g)``, as for IG) or, for gradient magnitudes, combined as
  ``√(a_re² + a_im²)`` (= Earmark's ``|g|``). Coefficient maps are pooled into map space (mel bands add
  their bins).
* **perturbation methods** (``Occlusion``, ``FeatureAblation``, ``KernelShap``, ``Lime``,
  ``ShapleyValueSampling``) run on :class:`GridMaskModule`, a mask ``m`` on the transform's display grid
  (frequency rows × time columns; for the DWT, levels × time) ↦ the class score of the clip with the map
  cells under ``m = 0`` replaced by a reference's coefficients. Features are blocks of that grid
  (``cells`` of them, the domain's cells as features through Captum's ``feature_mask``), so a wavelet
  feature never straddles two levels. The grid attribution is brought back to map space by
  ``transform.from_image``.

Every method reads the class score through the probe, so ``contrast=B`` explains "A rather than B".
Randomness (GradientShap's draws, NoiseTunnel's noise, KernelShap's and Lime's coalitions, Shapley
permutations) comes from Captum's use of the global generator: each run forks the global state and seeds it
from the explicit ``generator``, so the same seed gives the same map and the caller's global state is
untouched. Batching: ``internal_batch_size`` / ``nt_samples_batch_size`` / ``perturbations_per_eval`` are
the probe's batch size.

Uncertainty: the spread (population std) of the maps obtained from three references — the zero clip,
Gaussian noise and the blurred clip, as for IG (``baselines="zero"`` skips it) — for every method but
NoiseTunnel, whose uncertainty is VarGrad (the variance of the per-draw maps over the same noise draws).

Where Captum's definitions differ from Earmark's methods of the same name: see ``docs/guide/methods.md``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..method_passes import PASSES
from ..params import Param
from ..probe import Probe, ProgressFn, no_progress
from .base import Attribution, ExplainerSpec, draw_std
from .ig import reference_waves

INSTALL = "needs Captum, which is not installed; install it with `pip install 'earmark[captum]'`."


def captum_attr():
    """``captum.attr``, or a one-sentence :class:`ConfigError` when Captum is not installed."""
    try:
        import captum.attr as attr
    except ImportError:
        raise ConfigError(f"The captum:* explainers {INSTALL}") from None
    return attr


# ---- the modules Captum sees ---------------------------------------------------------------------------
class _Counted(nn.Module):
    """Counts items through ``forward`` into the probe's pass counters and the progress (which may cancel)."""

    def __init__(self, probe: Probe, progress: ProgressFn | None, total: int, stage: str, *, backward: bool):
        super().__init__()
        self._probe, self._progress = probe, progress or no_progress
        self._total, self._stage, self._backward, self._done = max(total, 1), stage, backward, 0

    def _count(self, n: int, *, backward: bool | None = None) -> None:
        self._done += n
        self._probe.forward_passes += n
        if self._backward if backward is None else backward:
            self._probe.backward_passes += n
        self._progress(min(self._done / self._total, 1.0), self._stage)


class CoefficientModule(_Counted):
    """``(N, *S)`` real coefficients, or ``(N, *S, 2)`` real/imaginary parts of complex ones → ``(N,)``
    class score ``f_c(synthesize(z))`` (minus the contrast class's score when the probe has one).

    Args:
        probe: the clip, domain and explained class.
        model: the network (a private copy for methods that hook its layers, e.g. DeepLift).
        readout: ``"logit"`` (default), ``"log_prob"`` or ``"prob"`` of the explained class.
    """

    def __init__(self, probe: Probe, model: nn.Module, *, readout: str = "logit", progress: ProgressFn | None = None,
                 total: int = 1, stage: str = "captum"):
        super().__init__(probe, progress, total, stage, backward=True)
        self.model = model                       # a child module: DeepLift finds its non-linearities
        self.readout = readout
        self.complex = probe.coeffs.is_complex()

    def forward(self, z: Tensor) -> Tensor:
        self._count(z.shape[0], backward=torch.is_grad_enabled() and z.requires_grad)
        coeffs = torch.view_as_complex(z.contiguous()) if self.complex else z
        return self._probe.class_score(self.model(self._probe.waves(coeffs)), self.readout)


class GridMaskModule(_Counted):
    """``(N, F, T)`` masks on the display grid → ``(N,)`` class score of the clip with the map cells under
    ``m = 0`` replaced by ``reference`` (coefficients (*S)) and those under ``m = 1`` kept."""

    def __init__(self, probe: Probe, reference: Tensor, *, readout: str = "logit", progress: ProgressFn | None = None,
                 total: int = 1, stage: str = "captum"):
        super().__init__(probe, progress, total, stage, backward=False)
        self.reference = reference
        self.readout = readout

    def forward(self, grid: Tensor) -> Tensor:
        self._count(grid.shape[0])
        probe = self._probe
        masks = probe.transform.from_image(grid, length=probe.length)
        with torch.no_grad():
            logits = probe.model(probe.waves(probe.apply_masks(masks, self.reference)))
        return probe.class_score(logits, self.readout)


# ---- shared pieces ------------------------------------------------------------------------------------
def real_view(z: Tensor) -> Tensor:
    """(N, *S) coefficients → what Captum sees: the same (real) or (N, *S, 2) real and imaginary parts."""
    return torch.view_as_real(z).contiguous() if z.is_complex() else z


def combine_parts(attr: Tensor, probe: Probe, how: str) -> Tensor:
    """Captum's attribution on :func:`real_view` coordinates → (N, *S) real per-coefficient attribution.

    ``how="sum"``: ``a_re + a_im`` (additive methods: the two parts' contributions add);
    ``"norm"``: ``√(a_re² + a_im²)`` (gradient magnitudes: the modulus of the complex gradient).
    """
    if not probe.coeffs.is_complex():
        return attr
    return attr.sum(-1) if how == "sum" else attr.pow(2).sum(-1).sqrt()


def grid_groups(shape: tuple[int, int], cells: int, *, device=None) -> Tensor:
    """(F, T) feature ids: about ``cells`` rectangular blocks of a display grid, rows and columns split in
    proportion to the grid's shape; a grid of at most 8 rows (Fourier bins aside: wavelet levels) keeps every
    row apart, so no block straddles two levels."""
    f, t = shape
    rows = f if f <= 8 else max(1, min(f, cells, round(math.sqrt(cells * f / t))))
    cols = max(1, min(t, round(cells / rows)))
    r = torch.arange(f, device=device) * rows // f
    c = torch.arange(t, device=device) * cols // t
    return r[:, None] * cols + c[None, :]


def references(probe: Probe, generator: torch.Generator, choice: str, *, noise_scale: float,
               blur_ms: float) -> Tensor:
    """(K, *S) reference coefficients: zero, noise and blurred clip (K = 3), or the zero clip only."""
    waves = reference_waves(probe.x, generator=generator, noise_scale=noise_scale,
                            blur_samples=blur_ms * 1e-3 * probe.transform.sample_rate)
    return probe.transform.analyze(waves[:1] if choice == "zero" else waves).detach()


@contextlib.contextmanager
def seeded_global_rng(generator: torch.Generator, device: torch.device):
    """Fork the global random state and seed it from ``generator`` (Captum draws from the global one)."""
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def hookable(probe: Probe) -> nn.Module:
    """A copy of the model that a method may hook (DeepLIFT, LRP): the loaded model is shared between users.

    A model that cannot be copied (it holds a lock, a file handle...) is used as it is: hooks then go on its
    layers (not on the model object, which refuses them) for the duration of one attribution.
    """
    model = probe.model
    import copy

    try:
        return model.private_copy() if hasattr(model, "private_copy") else copy.deepcopy(model)
    except (TypeError, RuntimeError, copy.Error):
        return model


def spread(maps: Tensor) -> Tensor:
    """(K, *M) maps → (*M) population std over the references (zeros for one)."""
    return draw_std(maps, correction=0)


REFERENCE_PARAMS = (
    Param("baselines", "zero+noise+blur", "references: zero, Gaussian noise and the blurred clip (their spread is "
          "the uncertainty), or the zero clip only (a third of the cost, no uncertainty)",
          choices=("zero+noise+blur", "zero")),
    Param("noise_scale", 0.1, "std of the noise reference, relative to the clip's RMS", low=0.0, high=2.0, step=0.01),
    Param("blur_ms", 4.0, "std of the Gaussian blur of the blurred reference, in ms", low=0.1, high=50.0, step=0.1),
)
READOUT = Param("readout", "logit", "class score explained: logit, log-probability or probability",
                choices=("logit", "log_prob", "prob"))


# ---- gradient methods ------------------------------------------------------------------------------------
def explain_deeplift(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                     baselines: str = "zero+noise+blur", noise_scale: float = 0.1, blur_ms: float = 4.0,
                     readout: str = "logit") -> Attribution:
    """DeepLIFT (Rescale rule) of ``f_c ∘ synthesize`` over the coefficients, one reference per batch item.

    Returns:
        saliency (*M) from the zero reference (signed), uncertainty (*M) the spread over references, extras
        ``completeness_gap`` (K,) Captum's convergence delta (Σ attribution − (f(z) − f(z0))) per reference.
    """
    attr_mod = captum_attr()
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    k = refs.shape[0]
    module = CoefficientModule(probe, hookable(probe), readout=readout, progress=progress, total=2 * k,
                               stage="DeepLIFT")
    inputs = real_view(probe.coeffs[None].expand(k, *probe.coeffs.shape))
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")   # "hooks set on non-linearities"
        attr, delta = attr_mod.DeepLift(module).attribute(inputs.clone().requires_grad_(True),
                                                          baselines=real_view(refs), return_convergence_delta=True)
    maps = probe.transform.pool(combine_parts(attr.detach(), probe, "sum"))
    return Attribution(maps[0], spread(maps), {"completeness_gap": delta.detach().reshape(-1)})


def explain_gradient_shap(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                          n_samples: int = 50, stdevs: float = 0.0, baselines: str = "zero+noise+blur",
                          noise_scale: float = 0.1, blur_ms: float = 4.0, readout: str = "logit") -> Attribution:
    """GradientSHAP: expected gradient × (input − reference) at random points between a reference and the
    (noised) input; ``stdevs`` is the input noise as a fraction of the coefficients' std.

    Returns:
        saliency (*M) the mean over references (GradientSHAP with the references as the baseline
        distribution), uncertainty (*M) the spread of the per-reference maps.
    """
    attr_mod = captum_attr()
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    k = refs.shape[0]
    module = CoefficientModule(probe, probe.model, readout=readout, progress=progress, total=k * n_samples,
                               stage="GradientSHAP")
    inputs = real_view(probe.coeffs[None])
    sigma = float(stdevs * inputs.std())
    method = attr_mod.GradientShap(module)
    maps = []
    with torch.enable_grad(), seeded_global_rng(generator, probe.device):
        for ref in refs:
            attr = method.attribute(inputs, baselines=real_view(ref[None]), n_samples=n_samples, stdevs=sigma)
            maps.append(probe.transform.pool(combine_parts(attr.detach(), probe, "sum")))
    maps = torch.cat(maps)
    return Attribution(maps.mean(0), spread(maps), {"noise_std": torch.tensor(sigma)})


NT_BASES = ("Saliency", "InputXGradient", "IntegratedGradients")


def explain_noise_tunnel(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                         base: str = "Saliency", nt_type: str = "smoothgrad", nt_samples: int = 25,
                         noise_level: float = 0.1, n_steps: int = 50, readout: str = "logit") -> Attribution:
    """Captum's NoiseTunnel around ``base`` in the coefficients: noise of std ``noise_level·(max − min)`` of
    the (real-view) coefficients is added in the chosen domain (in the time domain this is SmoothGrad's σ).

    Returns:
        saliency (*M) the ``nt_type`` aggregate, uncertainty (*M) VarGrad over the same draws, extras
        ``noise_std`` ().
    """
    attr_mod = captum_attr()
    inputs = real_view(probe.coeffs[None])
    sigma = float(noise_level * (inputs.amax() - inputs.amin()))
    per_draw = n_steps if base == "IntegratedGradients" else 1
    module = CoefficientModule(probe, probe.model, readout=readout, progress=progress,
                               total=2 * nt_samples * per_draw, stage="NoiseTunnel")
    inner = getattr(attr_mod, base)(module)
    kwargs = {"abs": True} if base == "Saliency" else {}
    if base == "IntegratedGradients":
        kwargs.update(n_steps=n_steps, method="riemann_middle", internal_batch_size=probe.batch_size(backward=True))
    tunnel = attr_mod.NoiseTunnel(inner)
    batch = max(1, probe.batch_size(backward=True) // per_draw)
    state = torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device)
    out = []
    for kind in (nt_type, "vargrad"):            # the same noise draws for both
        replay = torch.Generator(device=generator.device).manual_seed(int(state))
        with torch.enable_grad(), seeded_global_rng(replay, probe.device):
            attr = tunnel.attribute(inputs, nt_type=kind, nt_samples=nt_samples, nt_samples_batch_size=batch,
                                    stdevs=sigma, **kwargs)
        how = "norm" if base == "Saliency" and kind != "vargrad" else "sum"
        out.append(probe.transform.pool(combine_parts(attr.detach(), probe, how))[0])
    return Attribution(out[0], out[1].clamp_min(0), {"noise_std": torch.tensor(sigma)})


# ---- perturbation methods on the display grid -------------------------------------------------------------
def _grid_run(probe: Probe, generator: torch.Generator, progress: ProgressFn | None, refs: Tensor, stage: str,
              per_ref: int, readout: str, make: Callable[[nn.Module], object],
              call: Callable[[object, Tensor], Tensor]) -> Attribution:
    """``call(make(module), ones_grid)`` once per reference on a :class:`GridMaskModule`; maps to map space.

    Returns:
        saliency (*M) from the first (zero) reference, uncertainty (*M) the spread over references.
    """
    shape = probe.transform.image_shape(probe.length)
    ones = torch.ones((1, *shape), device=probe.device)
    k = refs.shape[0]
    maps = []
    for i, ref in enumerate(refs):
        module = GridMaskModule(probe, ref, progress=_slice(progress, i, k), total=per_ref, stage=stage,
                                readout=readout)
        with torch.no_grad(), seeded_global_rng(generator, probe.device):
            grid = call(make(module), ones)
        maps.append(probe.transform.from_image(grid.detach().to(torch.float32), length=probe.length))
    maps = torch.cat(maps)
    return Attribution(maps[0], spread(maps))


def _slice(progress: ProgressFn | None, i: int, k: int) -> ProgressFn:
    outer = progress or no_progress
    return lambda f, stage="": outer((i + min(max(f, 0.0), 1.0)) / k, stage)


def _features(probe: Probe, cells: int) -> Tensor:
    shape = probe.transform.image_shape(probe.length)
    return grid_groups(shape, cells, device=probe.device)[None]


def explain_occlusion(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                      window: float = 0.1, stride: float = 0.05, baselines: str = "zero+noise+blur",
                      noise_scale: float = 0.1, blur_ms: float = 4.0, readout: str = "logit") -> Attribution:
    """Occlusion: a window of ``window`` × each grid axis slides by ``stride`` × the axis; each cell gets the
    mean score drop of the windows covering it (grids of ≤ 8 rows: one row at a time)."""
    shape = probe.transform.image_shape(probe.length)
    win = tuple(1 if (n <= 8 and n > 1) else max(1, round(n * window)) for n in shape)
    step = tuple(1 if (n <= 8 and n > 1) else max(1, min(w, round(n * stride))) for n, w in zip(shape, win))
    count = math.prod((n - w) // s + 1 + (1 if (n - w) % s else 0) for n, w, s in zip(shape, win, step))
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    batch = probe.batch_size(backward=False)
    return _grid_run(probe, generator, progress, refs, "occlusion", count + 1, readout, captum_attr().Occlusion,
                     lambda m, x: m.attribute(x, sliding_window_shapes=win, strides=step, baselines=0.0,
                                              perturbations_per_eval=batch))


def explain_feature_ablation(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                             cells: int = 64, baselines: str = "zero+noise+blur", noise_scale: float = 0.1,
                             blur_ms: float = 4.0, readout: str = "logit") -> Attribution:
    """Feature ablation: each of ``cells`` grid blocks replaced by the reference alone; its score drop."""
    features = _features(probe, cells)
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    batch = probe.batch_size(backward=False)
    n = int(features.max()) + 2
    return _grid_run(probe, generator, progress, refs, "feature ablation", n, readout, captum_attr().FeatureAblation,
                     lambda m, x: m.attribute(x, baselines=0.0, feature_mask=features, perturbations_per_eval=batch))


def explain_kernel_shap(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                        cells: int = 64, n_samples: int = 500, baselines: str = "zero+noise+blur",
                        noise_scale: float = 0.1, blur_ms: float = 4.0, readout: str = "logit") -> Attribution:
    """KernelSHAP over ``cells`` grid blocks from ``n_samples`` coalitions (Shapley kernel weights)."""
    features = _features(probe, cells)
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    batch = probe.batch_size(backward=False)
    return _grid_run(probe, generator, progress, refs, "KernelSHAP", n_samples, readout, captum_attr().KernelShap,
                     lambda m, x: m.attribute(x, baselines=0.0, feature_mask=features, n_samples=n_samples,
                                              perturbations_per_eval=batch))


def explain_lime(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                 cells: int = 64, n_samples: int = 500, alpha: float = 0.01, baselines: str = "zero+noise+blur",
                 noise_scale: float = 0.1, blur_ms: float = 4.0, readout: str = "logit") -> Attribution:
    """LIME over ``cells`` grid blocks: a Lasso (``alpha``; 0 = least squares) fitted to ``n_samples`` random
    coalitions weighted by Captum's exponential cosine kernel."""
    attr_mod = captum_attr()
    from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression

    features = _features(probe, cells)
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    batch = probe.batch_size(backward=False)

    def make(module):
        fitted = SkLearnLasso(alpha=alpha) if alpha > 0 else SkLearnLinearRegression()
        return attr_mod.Lime(module, interpretable_model=fitted)

    return _grid_run(probe, generator, progress, refs, "LIME", n_samples, readout, make,
                     lambda m, x: m.attribute(x, baselines=0.0, feature_mask=features, n_samples=n_samples,
                                              perturbations_per_eval=batch))


def explain_shapley_sampling(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                             cells: int = 64, n_samples: int = 25, baselines: str = "zero+noise+blur",
                             noise_scale: float = 0.1, blur_ms: float = 4.0, readout: str = "logit") -> Attribution:
    """Shapley value sampling over ``cells`` grid blocks: ``n_samples`` random feature orderings."""
    features = _features(probe, cells)
    refs = references(probe, generator, baselines, noise_scale=noise_scale, blur_ms=blur_ms)
    batch = probe.batch_size(backward=False)
    n = n_samples * (int(features.max()) + 2)
    return _grid_run(probe, generator, progress, refs, "Shapley sampling", n, readout,
                     captum_attr().ShapleyValueSampling,
                     lambda m, x: m.attribute(x, baselines=0.0, feature_mask=features, n_samples=n_samples,
                                              perturbations_per_eval=batch))


# ---- registration ---------------------------------------------------------------------------------------
CELLS = Param("cells", 64, "features: blocks of the display grid (rows × time; wavelet levels kept apart)",
              low=2, high=4096, step=1, log=True)
REFERENCE_NOTE = "the map over the zero, noise and blurred-clip references (dependence on the reference)"
CAPTUM = "Kokhlikyan et al. 2020, Captum"


def _spec(cls: str, title: str, fn, params, family, reference, uncertainty=None, **kw) -> ExplainerSpec:
    return ExplainerSpec(name=f"captum:{cls}", title=f"{title} (Captum)", fn=fn, params=tuple(params), family=family,
                         contrastive=True, uncertainty=uncertainty or f"Standard deviation of {REFERENCE_NOTE}.",
                         reference=f"{reference}; {CAPTUM}", passes=PASSES[f"captum:{cls}"],
                         budget=tuple(p.name for p in params if p.name in ("n_samples", "n_steps", "nt_samples")),
                         **kw)


SPECS = (
    _spec("DeepLift", "DeepLIFT", explain_deeplift, (*REFERENCE_PARAMS, READOUT), "gradient",
          "Shrikumar et al. 2017, Learning important features through propagating activation differences"),
    _spec("GradientShap", "GradientSHAP", explain_gradient_shap, (
        Param("n_samples", 50, "random points per reference (Captum's default: 5)", low=1, high=1000, step=1),
        Param("stdevs", 0.0, "input noise std, as a fraction of the coefficients' std", low=0.0, high=2.0, step=0.01),
        *REFERENCE_PARAMS, READOUT), "gradient", "Lundberg & Lee 2017, A unified approach to interpreting model predictions",
        uncertainty="Standard deviation of the GradientSHAP map over the zero, noise and blurred-clip references "
                    "(the saliency is their mean)."),
    _spec("NoiseTunnel", "NoiseTunnel", explain_noise_tunnel, (
        Param("base", "Saliency", "attribution averaged over the noise", choices=NT_BASES),
        Param("nt_type", "smoothgrad", "smoothgrad (mean), smoothgrad_sq (mean of squares)",
              choices=("smoothgrad", "smoothgrad_sq")),
        Param("nt_samples", 25, "noisy copies", low=2, high=500, step=1),
        Param("noise_level", 0.1, "noise std as a fraction of the coefficients' max − min", low=0.0, high=1.0,
              step=0.001),
        Param("n_steps", 50, "path points when the base is IntegratedGradients", low=4, high=512, step=1),
        READOUT), "gradient", "Smilkov et al. 2017 (SmoothGrad); Adebayo et al. 2018 (VarGrad)",
        uncertainty="VarGrad: the variance, per cell, of the base attribution over the same noise draws."),
    _spec("Occlusion", "Occlusion", explain_occlusion, (
        Param("window", 0.1, "occluding window, as a fraction of each grid axis", low=0.001, high=1.0, step=0.001),
        Param("stride", 0.05, "window step, as a fraction of each grid axis", low=0.001, high=1.0, step=0.001),
        *REFERENCE_PARAMS, READOUT), "sampling", "Zeiler & Fergus 2014, Visualizing and understanding CNNs"),
    _spec("FeatureAblation", "Feature ablation", explain_feature_ablation, (CELLS, *REFERENCE_PARAMS, READOUT),
          "sampling", "Captum FeatureAblation (leave-one-feature-out)"),
    _spec("KernelShap", "KernelSHAP", explain_kernel_shap, (
        CELLS, Param("n_samples", 500, "coalitions sampled (Captum's default: 25)", low=10, high=20000, step=1,
                     log=True), *REFERENCE_PARAMS, READOUT),
          "sampling", "Lundberg & Lee 2017, A unified approach to interpreting model predictions"),
    _spec("Lime", "LIME", explain_lime, (
        CELLS, Param("n_samples", 500, "random coalitions (Captum's default: 50)", low=10, high=20000, step=1,
                     log=True),
        Param("alpha", 0.01, "Lasso penalty of the surrogate (Captum's default; 0 = least squares)", low=0.0,
              high=10.0, step=0.001),
        *REFERENCE_PARAMS, READOUT), "sampling",
          "Ribeiro et al. 2016, \"Why should I trust you?\""),
    _spec("ShapleyValueSampling", "Shapley value sampling", explain_shapley_sampling, (
        CELLS, Param("n_samples", 25, "random feature orderings", low=1, high=1000, step=1),
        *REFERENCE_PARAMS, READOUT), "sampling", "Castro et al. 2009, Polynomial calculation of the Shapley value"),
)
