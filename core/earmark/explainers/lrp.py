"""Layer-wise relevance propagation (Bach et al. 2015) in any domain, with zennit's rules.

Three steps, each conserving relevance (up to biases and stabilisers):

1. **Network** (zennit): the class logit ``f_c(x)`` (or ``f_A − f_B`` with a contrast) is propagated from the
   output to the input of the first layer with weights (a Conv or Linear) by a composite —
   ``EpsilonPlusFlat`` (ε for dense layers, z⁺ for convolutions, flat for the first layer) or
   ``EpsilonGammaBox`` (ε dense, γ convolutions, z^B for the first layer with the input's own bounds).
   Batch norms that follow convolutions in a ``Sequential`` are merged first (zennit's canonizer).
   Element-wise activations, pooling and averaging pass relevance on as their (conserving) gradient does.
2. **Front end** (virtual layers, back to the waveform ``x``):
   * a waveform model whose first layer sees ``g·x`` (a per-clip gain, e.g. AudioNet's soft-RMS level) passes
     the relevance on unchanged (a diagonal linear layer);
   * a magnitude-spectrogram model (a torchaudio ``Spectrogram(power=None)`` as ``model.spec``, then an
     element-wise function of each bin, e.g. the synthetic time–frequency CNN) carries each bin's relevance
     onto the samples as below;
   * a log-mel model (:class:`earmark.models.melcnn.LogMel` front end) carries the relevance of each
     (mel band, frame) through the log (element-wise) onto the STFT power bins by their share of the band's
     power, ``R_kt = Σ_m R_mt·fb_km·P_kt / Σ_k' fb_k'm·P_k't``, then from each bin onto the samples by their
     share of the bin's complex value, ``R_i = Σ_kt R_kt·Re(conj(S_kt)·A_kt,i·x_i)/|S_kt|²`` (LRP-0 over the
     STFT analysis).
3. **Domain** (the DFT-LRP construction of Vielhaben et al. 2024, generalised): the waveform is the output of a
   virtual linear layer ``x = W z`` on the domain's coefficients (``transform.synthesize``), and the ε-rule
   over it gives ``R_{z_j} = Σ_i Re(W_ij z_j)·R_i / (x_i + ε·sign x_i)``, computed as
   ``Re(conj(z) ⊙ Wᴴ(R/(x + ε)))`` by one backward pass through ``synthesize``. Coefficient relevance is pooled
   into map space (mel bands add their bins), so the sum is kept.

Conservation is reported: extras ``output`` (the explained score), ``relevance_sum`` (Σ map) and their
``conservation_gap``. With bias-free layers the gap is the stabilisers' (≤ 1e-3 relative, tested); biases
absorb or add relevance, so on the bundled models the gap is larger (measured in ``docs/guide/methods.md``).

Not supported: transformer models (attention and layer norm need AttnLRP's rules, LXT, whose licence restricts
use; it is not a dependency of Earmark); front ends other than a per-clip gain or a log-mel (their relevance
would need a rule of their own: refused with a sentence).

Uncertainty: the population std, per cell, between the maps of the two composites (how much the map depends
on the choice of rules); ``uncertainty="none"`` runs only the chosen one.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ModelError
from ..method_passes import PASSES
from ..params import Param
from ..probe import Probe, ProgressFn, attribution_from_grad, no_progress
from .base import Attribution, ExplainerSpec, draw_std
from .captum_family import hookable

COMPOSITES = ("EpsilonPlusFlat", "EpsilonGammaBox")
INSTALL = "LRP needs zennit, which is not installed; install it with `pip install 'earmark[lrp]'`."
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

PARAMS = (
    Param("composite", "EpsilonPlusFlat", "zennit's rule set: ε / z⁺ / flat, or ε / γ / z^B", choices=COMPOSITES),
    Param("epsilon", 1e-6, "ε of the dense layers' ε-rule", low=1e-9, high=1.0, log=True),
    Param("gamma", 0.25, "γ of the convolutions' γ-rule (EpsilonGammaBox)", low=0.0, high=10.0, step=0.05),
    Param("synthesis_eps", 1e-6, "ε of the virtual synthesis layer, relative to max |x|", low=0.0, high=0.1,
          log=False, step=1e-6),
    Param("uncertainty", "rules", "uncertainty map: spread between the two composites, or none (half the cost)",
          choices=("rules", "none")),
)


def _zennit():
    try:
        from zennit import canonizers, composites
    except ImportError:
        raise ConfigError(INSTALL) from None
    return composites, canonizers


def first_weighted(model: nn.Module) -> nn.Module:
    """The first Conv/Linear module (definition order), where zennit's first-layer rule applies."""
    for m in model.modules():
        if isinstance(m, WEIGHTED):
            return m
    raise ModelError("LRP needs a network of Conv and Linear layers; this model has none it can find.")


def network_relevance(model: nn.Module, x: Tensor, start: Tensor, *, composite: str, epsilon: float,
                      gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Relevance at the first weighted layer's input.

    Args:
        model: a hookable copy of the network (waveform (1, L) → logits (1, C)).
        x: (1, L) waveform.  start: (C,) output relevance weights (one-hot, or e_A − e_B).

    Returns:
        ``u`` (the first layer's input, detached), ``R_u`` (same shape), and the output score ``start·f(x)``.
    """
    composites, canonizers = _zennit()
    first = first_weighted(model)
    seen: dict[str, Tensor] = {}

    def keep(module, inputs):
        seen["u"] = inputs[0]

    handle = first.register_forward_pre_hook(keep)
    try:
        with torch.no_grad():
            model(x)                                           # the first layer's input range (for z^B)
        u0 = seen["u"]
        merge = [canonizers.SequentialMergeBatchNorm()]
        if composite == "EpsilonGammaBox":
            comp = composites.EpsilonGammaBox(low=u0.amin().item(), high=u0.amax().item(), epsilon=epsilon,
                                              gamma=gamma, canonizers=merge)
        else:
            comp = composites.EpsilonPlusFlat(epsilon=epsilon, canonizers=merge)
        with torch.enable_grad(), comp.context(model) as modified:
            xin = x.detach().clone().requires_grad_(True)
            out = modified(xin)
            weights = start.to(out)[None]
            (relevance,) = torch.autograd.grad(out, seen["u"], grad_outputs=(out.detach() * weights,))
        score = (out.detach() * weights).sum()
        return seen["u"].detach(), relevance.detach(), score
    finally:
        handle.remove()


def front_end_to_wave(model: nn.Module, x: Tensor, u: Tensor, relevance: Tensor) -> Tensor:
    """(1, L) relevance on the waveform from the relevance at the first layer's input (see module docstring).

    Raises:
        ModelError: a front end that is neither a per-clip gain nor a log-mel (one sentence).
    """
    flat = u.reshape(-1)
    if flat.numel() == x.numel():
        gain = (flat * x.reshape(-1)).sum() / x.pow(2).sum().clamp_min(1e-30)
        if torch.allclose(flat, gain * x.reshape(-1), rtol=1e-4, atol=1e-6 * float(flat.abs().max())):
            return relevance.reshape(1, -1)
    logmel = getattr(model, "logmel", None)
    if logmel is not None and hasattr(logmel, "mel"):
        return log_mel_to_wave(model, x, relevance)
    spec = getattr(model, "spec", None)
    if spec is not None and getattr(spec, "power", 0) is None and relevance.dim() == 4 and \
            relevance.shape[-2] == spec.n_fft // 2 + 1:
        return bins_to_wave(spec, x, relevance.reshape(1, *relevance.shape[-2:]))
    raise ModelError("LRP can carry relevance back to the waveform through a per-clip gain, a log-mel or a "
                     "magnitude-spectrogram front end; this model's first layer sees something else, so use IG "
                     "or DeepLIFT (captum:DeepLift).")


def _stft(spec, wave: Tensor) -> Tensor:
    """(1, L) → (1, K, T) complex STFT with a torchaudio ``Spectrogram``'s settings (differentiable)."""
    return torch.stft(wave, spec.n_fft, hop_length=spec.hop_length, win_length=spec.win_length,
                      window=spec.window.to(wave), center=spec.center, pad_mode=spec.pad_mode,
                      normalized=False, onesided=True, return_complex=True)


def bins_to_wave(spec, wave: Tensor, r_bin: Tensor) -> Tensor:
    """(1, K, T) relevance on STFT bins (of an element-wise function of each bin's magnitude or power) → (1, L)
    relevance on the samples by their share of the bin's complex value, ``Re(conj(S)·A·x_i)/|S|²``."""
    w = wave.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        s = _stft(spec, w)
        power = s.detach().abs() ** 2
        v = (r_bin / stabilise(power)).detach()
        (g,) = torch.autograd.grad((v * (s.detach().conj() * s).real).sum(), w)
    return (g * w.detach()).reshape(1, -1)


def log_mel_to_wave(model: nn.Module, x: Tensor, relevance: Tensor) -> Tensor:
    """Relevance on a log-mel input (1, 1, n_mels, T) → the waveform (1, L): the log passes it on, the mel
    filterbank splits it over the STFT power bins by their share, :func:`bins_to_wave` onto the samples."""
    mel = model.logmel.mel
    spec, scale = mel.spectrogram, mel.mel_scale
    level = getattr(model, "level_floor", None)
    wave = x if level is None else x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + level ** 2)
    with torch.no_grad():
        power = _stft(spec, wave).abs() ** 2                                   # (1, K, T)
    fb = scale.fb.to(power)                                                    # (K, M)
    band = torch.einsum("bkt,km->bmt", power, fb)                              # (1, M, T)
    r_bin = power * torch.einsum("bmt,km->bkt", relevance.reshape(band.shape) / stabilise(band), fb)
    return bins_to_wave(spec, wave, r_bin)      # the per-clip gain passes relevance on unchanged


def stabilise(t: Tensor, eps: float = 1e-12) -> Tensor:
    """``t + ε·sign(t)`` (ε relative to max |t|), with sign(0) = +1: the ε-rule's denominator."""
    e = eps * float(t.abs().max()) + 1e-30
    return t + e * torch.where(t >= 0, 1.0, -1.0).to(t)


def wave_to_domain(probe: Probe, relevance: Tensor, *, synthesis_eps: float) -> Tensor:
    """(1, L) waveform relevance → (*M) map relevance by the ε-rule over ``x = synthesize(z)``."""
    z = probe.coeffs[None].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        x = probe.waves(z)
        eps = synthesis_eps * float(x.detach().abs().max()) + 1e-30
        denom = x.detach() + eps * torch.where(x.detach() >= 0, 1.0, -1.0).to(x)
        (g,) = torch.autograd.grad((x * (relevance / denom)).sum(), z)
    return probe.transform.pool(attribution_from_grad(z.detach(), g))[0]


def lrp_map(probe: Probe, model: nn.Module, *, composite: str, epsilon: float, gamma: float,
            synthesis_eps: float) -> tuple[Tensor, Tensor]:
    """(*M) LRP map in the probe's domain and the explained score (the relevance the output started with)."""
    start = torch.zeros(probe.num_classes, device=probe.device)
    start[probe.target] = 1.0
    if probe.contrast is not None:
        start[probe.contrast] = -1.0
    u, r_u, score = network_relevance(model, probe.x, start, composite=composite, epsilon=epsilon, gamma=gamma)
    r_x = front_end_to_wave(model, probe.x, u, r_u)
    probe.forward_passes += 2
    probe.backward_passes += 1
    return wave_to_domain(probe, r_x, synthesis_eps=synthesis_eps), score


def explain_lrp(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None,
                composite: Literal["EpsilonPlusFlat", "EpsilonGammaBox"] = "EpsilonPlusFlat", epsilon: float = 1e-6,
                gamma: float = 0.25, synthesis_eps: float = 1e-6, uncertainty: str = "rules") -> Attribution:
    """LRP map (signed, summing to about the explained logit) and the spread between the two composites.

    Returns:
        Attribution with saliency (*M), uncertainty (*M), extras ``output`` (), ``relevance_sum`` () and
        ``conservation_gap`` () = relevance_sum − output.
    """
    report = progress or no_progress
    model = hookable(probe)
    order = [composite] + ([c for c in COMPOSITES if c != composite] if uncertainty == "rules" else [])
    maps = []
    for i, name in enumerate(order):
        m, score = lrp_map(probe, model, composite=name, epsilon=epsilon, gamma=gamma, synthesis_eps=synthesis_eps)
        maps.append(m)
        if i == 0:
            output = score
        report((i + 1) / len(order), f"LRP ({name})")
    maps = torch.stack(maps)
    spread = draw_std(maps, correction=0)
    total = maps[0].sum()
    return Attribution(maps[0], spread, {"output": output, "relevance_sum": total,
                                         "conservation_gap": total - output})


SPEC = ExplainerSpec(
    name="lrp",
    passes=PASSES["lrp"],
    title="LRP (zennit rules, any domain)",
    fn=explain_lrp,
    params=PARAMS,
    family="gradient",
    contrastive=True,
    uncertainty="Standard deviation, per cell, between the EpsilonPlusFlat and EpsilonGammaBox maps "
                "(dependence on the choice of rules).",
    reference="Bach et al. 2015 (LRP); Montavon et al. 2019 (composites); Vielhaben et al. 2024 (DFT-LRP); "
              "Anders et al. 2021 (zennit)",
)
