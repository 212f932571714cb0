"""The sidebar's second class picker: explain "A rather than B" (the difference of the two classes' scores).

Off by default. The chosen class B goes into the explanation's settings (and so into its job spec's
``contrast`` option, its cache key and every job derived from it) for every method that reads the class score
only through the probe (``spec.contrastive``: the gradient and sampling methods, the Captum family, LRP);
for the others the picker is greyed out with the reason.
"""

from __future__ import annotations

from . import state
from .state import bind

OFF = -1  # the picker's "off" option


def contrast_picker(box, labels, target: int | None, spec) -> int | None:
    """Draw the "Rather than …" picker under the target; the contrast class B, or ``None`` when off (or when
    the explainer cannot take one)."""
    options = [OFF] + [i for i in range(len(labels)) if i != target]
    if state.get("contrast_class") not in options:
        state.put("contrast_class", OFF)
    chosen = box.selectbox(
        "Rather than …", options, key=bind("contrast_class"), disabled=not spec.contrastive,
        format_func=lambda i: "— (off)" if i == OFF else f"{i}: {labels[i]}",
        help=("Explain the target class *rather than* this one: the map of the difference of the two classes' "
              "scores (logits for gradient methods)." if spec.contrastive else
              f"{spec.title} cannot explain one class rather than another (it has its own loss or no class)."))
    return None if chosen == OFF or not spec.contrastive else int(chosen)


def rather_than(labels, contrast: int | None) -> str:
    """`` rather than <label>`` for a caption, or ``""`` without a contrast."""
    return "" if contrast is None else f" rather than {labels[contrast]}"
