"""A playhead on the maps while a player plays (a few lines of JavaScript in the page, no server work).

The script watches the ``<audio>`` elements inside the container keyed ``players`` and, while one plays,
draws a thin vertical line at its ``currentTime`` over the plots inside the containers keyed ``map_saliency``
and ``map_uncertainty``, positioned with Plotly's own axis (``_fullLayout.xaxis.l2p``). The players hold
the model's input window, whose time axis is the maps' (0 … window s), so the line marks what is heard.
It survives reruns (it re-finds the elements every frame) and stops when the page goes.
"""

from __future__ import annotations

import streamlit as st

SCRIPT = """
<script>
(function () {
  const doc = document;
  if (window.__earmarkPlayhead) { return; }
  window.__earmarkPlayhead = true;
  const MAPS = ["map_saliency", "map_uncertainty"];
  function lineFor(gd) {
    let l = gd.querySelector(":scope > .earmark-playhead");
    if (!l) {
      l = doc.createElement("div");
      l.className = "earmark-playhead";
      l.style.cssText = "position:absolute;width:2px;background:#e0002a;pointer-events:none;z-index:10;display:none";
      if (getComputedStyle(gd).position === "static") { gd.style.position = "relative"; }
      gd.appendChild(l);
    }
    return l;
  }
  function tick() {
    const audios = Array.from(doc.querySelectorAll(".st-key-players audio"));
    const playing = audios.find(a => !a.paused && !a.ended);
    for (const key of MAPS) {
      const gd = doc.querySelector(".st-key-" + key + " .js-plotly-plot");
      if (!gd || !gd._fullLayout) { continue; }
      const l = lineFor(gd);
      const fl = gd._fullLayout;
      const axes = Object.keys(fl).filter(k => /^xaxis\\d*$/.test(k)).map(k => fl[k]);
      const xa = axes.length ? axes[axes.length - 1] : null;
      if (!playing || !xa || !xa.l2p) { l.style.display = "none"; continue; }
      const x = xa._offset + xa.l2p(playing.currentTime);
      l.style.left = x + "px";
      l.style.top = fl._size.t + "px";
      l.style.height = fl._size.h + "px";
      l.style.display = "block";
      l.dataset.time = playing.currentTime.toFixed(3);
    }
    window.requestAnimationFrame(tick);
  }
  window.requestAnimationFrame(tick);
})();
</script>
"""


def playhead() -> None:
    """Install the playhead script once per page (idempotent)."""
    st.html(SCRIPT, unsafe_allow_javascript=True)
