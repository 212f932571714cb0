"""Grad-CAM (Selvaraju et al. 2017) for spectrogram models, placed in the STFT, mel or wavelet domain.

``captum:LayerGradCam`` runs Captum's ``LayerGradCam`` on a convolution of the model over its own
time–frequency input: the class score's gradient with respect to the layer's output, averaged over the
layer's grid, weights its channels; the weighted sum (with a ReLU, as in the paper) is the map on the
layer's grid. Earmark then

1. **upsamples** it (bilinear, as Captum's ``LayerAttribution.interpolate``) to the grid of the model's own
   spectrogram, the input of its first ``Conv2d`` (e.g. melcnn-digits: 64 mel bands × 126 frames);
2. **places** that grid in hertz and seconds, read from the model's torchaudio front end (a
   ``Spectrogram`` or ``MelSpectrogram`` submodule: its sample rate, FFT size, hop and mel filters), and
3. **maps** it onto the chosen domain's display grid: each of the domain's rows takes the mean of the model
   rows whose centre frequency falls inside the row's band (a mel band, an STFT bin, a wavelet level's
   octave), or the value interpolated at the row's centre when none does; columns are interpolated at the
   domain's frame times. ``transform.from_image`` brings the grid to map space.

Domains: STFT, mel and DWT, whose cells have both a time and a frequency; the time and Fourier domains have
one of the two axes only, and a localisation in both has no faithful place there (refused with a sentence).
Models: listed only for a model with a ``Conv2d`` whose input is the spectrogram of a torchaudio front end
inside the model (the bundled melcnn-digits, the synthetic time–frequency CNN, any such ``nn.Module``).

Uncertainty: the standard deviation, per cell, of the map over ``n_draws`` copies of the clip with a small
Gaussian noise added (σ = ``noise_level``·(max − min)), all in the same batched pass, as for saliency.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ModelError
from ..params import Param
from ..probe import Probe, ProgressFn, no_progress
from .base import Attribution, ExplainerSpec, draw_std
from .captum_family import READOUT, captum_attr, hookable
from .saliency import noise_std

DOMAINS = ("stft", "mel", "dwt")

PARAMS = (
    Param("layer", "last", "convolution whose activations are weighted: the last Conv2d (coarse, the paper's "
          "choice) or the first (fine)", choices=("last", "first")),
    Param("relu", True, "keep only positive evidence (the paper's ReLU); off shows evidence against too"),
    Param("n_draws", 8, "noisy copies for the uncertainty map (std of the map over them)", low=2, high=256, step=1),
    Param("noise_level", 0.01, "noise std for the uncertainty draws, as a fraction of the clip's max − min",
          low=0.0, high=1.0, step=0.001),
    READOUT,
)


def _front_ends() -> tuple[type, ...]:
    import torchaudio

    return torchaudio.transforms.MelSpectrogram, torchaudio.transforms.Spectrogram


def front_end(model: nn.Module) -> nn.Module | None:
    """The model's first torchaudio ``MelSpectrogram`` or ``Spectrogram`` submodule (a mel one's inner
    ``Spectrogram`` is part of it), or ``None``."""
    kinds = _front_ends()
    for m in model.modules():
        if isinstance(m, kinds):
            return m
    return None


def why_not(model: nn.Module | None) -> str | None:
    """Why Grad-CAM cannot run on ``model`` (a sentence's predicate), or ``None`` when it can."""
    if model is None or not isinstance(model, nn.Module):
        return None                     # nothing to look at (a card alone): decided when the model is there
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return "needs a model with a Conv2d layer over a spectrogram, and this model has none."
    if front_end(model) is None:
        return ("needs to place the model's spectrogram in time and frequency, and this model computes it without "
                "a torchaudio Spectrogram or MelSpectrogram front end.")
    return None


@dataclass(frozen=True)
class ModelGrid:
    """Where the model's own spectrogram (its first ``Conv2d``'s input grid) lies: (F,) row centres in Hz,
    (T,) column centres in s, and whether the conv input is (time, frequency)."""

    freqs: Tensor
    times: Tensor
    transposed: bool


def model_grid(front: nn.Module, sample_rate: int, shape: tuple[int, int]) -> ModelGrid:
    """The grid of a conv input of spatial ``shape`` fed by the torchaudio module ``front``.

    Raises:
        ModelError: the conv input's grid is not the front end's (frequency × frames, either way round).
    """
    from ..transforms.base import frame_times

    mel_kind = _front_ends()[0]
    spec = front.spectrogram if isinstance(front, mel_kind) else front
    n_fft, hop = int(spec.n_fft), int(spec.hop_length)
    if isinstance(front, mel_kind):
        fb = front.mel_scale.fb.to(torch.float64)                          # (n_freqs, n_mels)
        bins = torch.linspace(0, float(front.sample_rate) / 2, fb.shape[0], dtype=torch.float64)
        freqs = (bins[:, None] * fb).sum(0) / fb.sum(0).clamp_min(1e-12)
        rate = int(front.sample_rate)
    else:
        rate = int(sample_rate)
        freqs = torch.fft.rfftfreq(n_fft, d=1 / rate).to(torch.float64)
    rows = freqs.numel()
    if shape[0] == rows:
        transposed, frames = False, shape[1]
    elif shape[1] == rows:
        transposed, frames = True, shape[0]
    else:
        raise ModelError(f"Grad-CAM cannot tell which axis of the model's first Conv2d input {tuple(shape)} is "
                         f"frequency: its front end gives {rows} rows.")
    times = frame_times(frames, hop, rate)
    if not bool(getattr(spec, "center", True)):
        times = times + int(spec.win_length) / 2 / rate
    return ModelGrid(freqs, times, transposed)


def _interp_matrix(points: Tensor, grid: Tensor) -> Tensor:
    """(P, G) weights of linear interpolation of a function on increasing ``grid`` at ``points`` (clamped)."""
    w = torch.zeros(len(points), len(grid), dtype=torch.float64)
    if len(grid) == 1:
        w[:, 0] = 1.0
        return w
    p = points.clamp(grid[0], grid[-1])
    hi = torch.searchsorted(grid, p).clamp(1, len(grid) - 1)
    lo = hi - 1
    frac = ((p - grid[lo]) / (grid[hi] - grid[lo]).clamp_min(1e-12)).clamp(0, 1)
    rows = torch.arange(len(p))
    w[rows, lo] += 1 - frac
    w[rows, hi] += frac
    return w


def row_matrix(model_freqs: Tensor, domain_freqs: Tensor, domain_edges: Tensor) -> Tensor:
    """(F_d, F_m) weights: the mean of the model rows inside each domain row's band, else interpolation."""
    inside = (model_freqs[None] >= domain_edges[:-1, None]) & (model_freqs[None] < domain_edges[1:, None])
    mean = inside.to(torch.float64) / inside.sum(1, keepdim=True).clamp_min(1)
    return torch.where(inside.any(1, keepdim=True), mean, _interp_matrix(domain_freqs, model_freqs))


def to_domain(cams: Tensor, grid: ModelGrid, probe: Probe) -> Tensor:
    """(N, F_m, T_m) maps on the model's grid → (N, *M) maps in the probe's domain."""
    axes = probe.transform.axes(probe.length)
    rows = row_matrix(grid.freqs, axes.freqs.to(torch.float64), axes.freq_edges.to(torch.float64))
    cols = _interp_matrix(axes.times.to(torch.float64), grid.times)
    img = torch.einsum("df,nft,st->nds", rows.to(cams), cams, cols.to(cams))
    return probe.transform.from_image(img, length=probe.length)


class _Score(nn.Module):
    """Waveforms (N, L) → (N,) class score through the probe (with its contrast); counts the passes."""

    def __init__(self, probe: Probe, model: nn.Module, readout: str):
        super().__init__()
        self.model, self._probe, self.readout = model, probe, readout

    def forward(self, waves: Tensor) -> Tensor:
        self._probe.forward_passes += waves.shape[0]
        self._probe.backward_passes += waves.shape[0] if torch.is_grad_enabled() else 0
        return self._probe.class_score(self.model(waves), self.readout)


def conv_layers(model: nn.Module, x: Tensor) -> tuple[list[nn.Conv2d], tuple[int, int]]:
    """The ``Conv2d`` layers of ``model`` in the order a forward pass on ``x`` calls them, and the spatial
    shape of the first one's input."""
    called: list[nn.Conv2d] = []
    shapes: list[tuple[int, int]] = []

    def hook(module, args):
        if module not in called:
            called.append(module)
            shapes.append(tuple(args[0].shape[-2:]))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not called:
        raise ModelError("Grad-CAM (Captum) needs a model with a Conv2d layer over a spectrogram, and this "
                         "model's forward pass calls none.")
    return called, shapes[0]


def explain_gradcam(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                    layer: str = "last", relu: bool = True, n_draws: int = 8, noise_level: float = 0.01,
                    readout: str = "logit") -> Attribution:
    """Grad-CAM of the explained class (minus the contrast's) at the model's first or last ``Conv2d``.

    Returns:
        Attribution with saliency (*M) the map of the clean clip, uncertainty (*M) its std over ``n_draws``
        noisy copies, extras ``cam`` (F_m, T_m) the map on the model's own spectrogram grid and
        ``layer_grid`` (2,) the layer's grid size.
    """
    report = progress or no_progress
    reason = why_not(probe.model)
    if reason:
        raise ModelError(f"Grad-CAM (Captum) {reason}")
    model = hookable(probe)
    layers, shape = conv_layers(model, probe.x)
    probe.forward_passes += 1                      # the pass that found the layers
    grid = model_grid(front_end(model), probe.transform.sample_rate, shape)
    x = probe.x
    noise = torch.randn((n_draws, x.shape[-1]), generator=generator, device=x.device, dtype=x.dtype)
    waves = torch.cat([x, x + noise * noise_std(x, noise_level)])
    method = captum_attr().LayerGradCam(_Score(probe, model, readout), layers[-1 if layer == "last" else 0])
    report(0.0, "Grad-CAM")
    with torch.enable_grad():
        cam = method.attribute(waves.detach().requires_grad_(True), relu_attributions=bool(relu))
    layer_grid = torch.tensor(cam.shape[-2:])
    cam = F.interpolate(cam.detach().to(torch.float32), size=shape, mode="bilinear", align_corners=False)[:, 0]
    if grid.transposed:
        cam = cam.transpose(-1, -2)
    maps = to_domain(cam, grid, probe)
    report(1.0, "Grad-CAM")
    return Attribution(maps[0], draw_std(maps[1:]), {"cam": cam[0], "layer_grid": layer_grid})


SPEC = ExplainerSpec(
    name="captum:LayerGradCam",
    title="Grad-CAM (Captum LayerGradCam, spectrogram models)",
    fn=explain_gradcam,
    params=PARAMS,
    family="gradient",
    contrastive=True,
    domains=DOMAINS,
    default_transform="mel",
    uncertainty="Standard deviation of the Grad-CAM map over small input-noise draws (σ = noise_level·(max − min)).",
    reference="Selvaraju et al. 2017, Grad-CAM; Kokhlikyan et al. 2020, Captum",
    budget=("n_draws",),
    passes=lambda p: 2 * (1 + int(p["n_draws"])) + 1,
    model_check=why_not,
)
