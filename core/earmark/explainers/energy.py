"""Signal energy: a reference map that never asks the model.

The map is the clip's own energy per cell, ``pool(|z|²)``: the power spectrogram in the STFT, the mel
power in mel, ``|X_k|²`` in the Fourier domain, the squared wavelet coefficients in the DWT, ``x²`` in
time. It explains nothing about the model; it answers the question a faithfulness table should always
ask: *does an explainer beat "the loud part matters"?* On speech padded with silence (FSDD), the random
references RI/RD are easy to beat because most cells are silent; this one is not.

Uncertainty: zero everywhere (the map is deterministic and does not depend on the model).
"""

from __future__ import annotations

import torch

from ..probe import Probe, ProgressFn
from .base import Attribution, ExplainerSpec


def energy_map(probe: Probe) -> torch.Tensor:
    """(*M) energy per map cell: ``pool(|z|²)`` of the clip's coefficients (sums, so mel bands add bins)."""
    return probe.transform.power_map(probe.coeffs[None])[0]


def explain_energy(probe: Probe, *, generator: torch.Generator, progress: ProgressFn | None = None) -> Attribution:
    """The clip's energy per cell as the saliency; no model passes.

    Args:
        probe: the clip and domain (the model is not called).
        generator: unused (the map is deterministic); taken like every explainer's.
        progress: ``progress(fraction, stage)``.

    Returns:
        Attribution with saliency (*M) ``pool(|z|²)`` and a zero uncertainty.
    """
    if progress is not None:
        progress(1.0, "energy")
    saliency = energy_map(probe)
    return Attribution(saliency, torch.zeros_like(saliency))


SPEC = ExplainerSpec(
    name="energy",
    title="Signal energy (reference, no model)",
    fn=explain_energy,
    params=(),
    family="reference",
    uncertainty="None: the map is the clip's own energy per cell, the same for every model and seed.",
    reference="A model-free reference for faithfulness tables: rank cells by loudness.",
    passes=lambda p: 0,
)
