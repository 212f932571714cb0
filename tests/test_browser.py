"""End-to-end test in a real browser: rendering, audio elements, uploads, pinning (what AppTest cannot see).

Needs Chromium at /usr/bin/chromium and the Python Playwright package; skipped otherwise. Screenshots go to
the test's tmp_path; with ``EARMARK_SCREENSHOT=1`` the 1280×720 first screen is also copied to
``docs/screenshot.png`` (and the 1600×1000 one to ``docs/screenshot-1600.png``). Timings (Explain → heatmap, cached re-display) are printed and written to
``tmp_path/timings.json``.

The test explains with the bundled default, AudioNet on a 1 s window (the product's first screen); set
``EARMARK_BROWSER_MODEL`` to use another model (e.g. ``synth-tf``, trained on demand and cached).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
MODEL = os.environ.get("EARMARK_BROWSER_MODEL", "audionet-digits")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
HEATMAP_JS = "() => document.querySelectorAll('.js-plotly-plot .heatmaplayer image').length"
HEATMAP_CHARTS_JS = ("() => [...document.querySelectorAll('.js-plotly-plot')]"
                     ".filter(p => p.querySelector('.heatmaplayer image')).length")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1500)]

if not CHROMIUM.exists():
    pytest.skip("Chromium not found at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the Python Playwright package is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models folder for the server (``EARMARK_MODELS``): a tiny Hugging Face AST and a tiny ONNX model."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    import loader_models as lm

    root = tmp_path_factory.mktemp("earmark-models")
    if importlib.util.find_spec("transformers") is not None:
        lm.hf_ast(root / "tiny-ast")
    if importlib.util.find_spec("onnxruntime") is not None:
        lm.save_onnx(lm.Plain(lm.WaveNet().eval()), root / "tiny-wave.onnx", torch.randn(2, 8000))
    return root


@pytest.fixture(scope="module")
def server(models_dir):
    port = _free_port()
    env = dict(os.environ)  # the same threads as `make run`, so the timings are what a user gets
    env["EARMARK_MODELS"] = str(models_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("streamlit exited early:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


#: The final uncertainty map is drawn (the live view of a running job draws its own two heatmaps).
FINAL_MAPS_JS = "() => !!document.querySelector('.st-key-map_uncertainty .js-plotly-plot .heatmaplayer image')"
RUNNING_JS = ("() => !!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"],"
              " [data-testid=\"stStatusWidgetRunningManIcon\"], [data-stale=\"true\"]')")


def _idle(page, timeout: float = 180_000) -> None:
    """Wait until the script run is over: no running icon, no stale (greyed) elements, twice in a row."""
    for _ in range(2):
        page.wait_for_timeout(400)
        page.wait_for_function(f"!({RUNNING_JS})()", timeout=timeout)


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.locator('[role="option"]').filter(has_text=option).first.click()
    _idle(page)


def _set_number(page, label: str, value: int) -> None:
    field = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).locator("input").first
    field.fill(str(value))
    field.press("Enter")


def _shot(page, path: Path) -> None:
    """Whole-page screenshot (Streamlit scrolls inside its main block, so grow the viewport first)."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('section, [data-testid=\"stMain\"],"
                           " [data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 1100)")
    page.set_viewport_size({"width": 1600, "height": min(int(height) + 80, 6000)})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1600, "height": 1100})
    page.wait_for_timeout(500)


def _explain(page) -> tuple[float, float]:
    """Click Explain; seconds until the saliency heatmap is drawn, and until the uncertainty one is too."""
    button = page.get_by_role("button", name="Explain", exact=True)
    started = time.perf_counter()
    button.click()
    page.wait_for_function(f"({HEATMAP_JS})() > 0", timeout=300_000)
    first = time.perf_counter() - started
    page.wait_for_function(FINAL_MAPS_JS, timeout=600_000)  # the final maps (the partial view also has two)
    return first, time.perf_counter() - started


@pytest.fixture
def page(browser, tmp_path):
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    yield page
    page.screenshot(path=str(tmp_path / "last.png"))  # the state at the end, also when the test failed
    page.close()


def test_explore_listen_pin_compare_and_bad_upload(server, page, tmp_path):
    page.goto(server)
    page.get_by_text("Example clip").first.wait_for(timeout=180_000)
    _idle(page)
    _pick(page, "Model", MODEL)
    _idle(page, 300_000)  # the synthetic model may train on first use
    page.get_by_role("button", name="Explain", exact=True).wait_for(timeout=300_000)
    _idle(page)

    seconds_explain, seconds_with_uncertainty = _explain(page)
    _idle(page)
    server_side = page.get_by_text("(server side)").first.inner_text()
    assert page.evaluate(HEATMAP_JS) > 0
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 4  # waveform, probs, saliency, uncertainty…
    sources = page.eval_on_selector_all("audio", "els => els.map(e => e.currentSrc || e.src)")
    assert len(sources) >= 5 and all(sources), sources  # original clip + 4 listening players
    _shot(page, tmp_path / "explore.png")

    # cached re-display: another seed (not computed) then back to the first one → map without Explain
    page.get_by_role("button", name="Pin to compare").click()
    _idle(page)
    _set_number(page, "Seed", 1)
    page.wait_for_function(f"({HEATMAP_JS})() == 0", timeout=30_000)  # not computed yet: no map
    _idle(page)
    seconds_seed1, _ = _explain(page)
    _idle(page)
    page.get_by_role("button", name="Pin to compare").click()
    _idle(page)
    started = time.perf_counter()
    _set_number(page, "Seed", 0)
    page.wait_for_function(f"({HEATMAP_JS})() > 0", timeout=30_000)
    seconds_cached = time.perf_counter() - started
    _idle(page)

    assert page.get_by_text("2 of 4 compare slots used").count() == 1
    page.get_by_role("link", name="Compare").first.click()
    page.get_by_text("Slot 2").first.wait_for(timeout=60_000)
    _idle(page)
    for slot in ("Slot 1", "Slot 2"):  # a loaded machine may still be drawing the second column
        page.get_by_text(slot).first.wait_for(timeout=120_000)
    assert page.get_by_text("Slot 3").count() == 0
    page.wait_for_function(f"({HEATMAP_JS})() >= 2", timeout=60_000)
    _shot(page, tmp_path / "compare.png")

    # faithfulness of the current map, drawn against the energy reference
    page.get_by_role("link", name="Faithfulness").first.click()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=120_000)
    _idle(page)
    page.locator('[data-testid="stPlotlyChart"] .legendtext').filter(has_text="energy reference").first.wait_for(
        timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, tmp_path / "faithfulness.png")

    # a corrupt upload: clear message, page keeps working
    page.get_by_role("link", name="Explore").first.click()
    _idle(page)
    page.locator('[data-testid="stSidebar"] button').filter(has_text="Upload").first.click()
    _idle(page)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + os.urandom(256))
    page.locator('input[type="file"]').first.set_input_files(str(bad))
    page.get_by_text("Could not decode").first.wait_for(timeout=60_000)
    _idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, tmp_path / "bad_upload.png")

    timings = {"explain_to_heatmap_s": seconds_explain, "explain_to_uncertainty_s": seconds_with_uncertainty,
               "explain_seed1_s": seconds_seed1,
               "cached_redisplay_s": seconds_cached, "server_caption": server_side, "model": MODEL}
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=2))
    print("\nbrowser timings:", json.dumps(timings), "screenshots:", tmp_path)
    if os.environ.get("EARMARK_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "explore.png", ROOT / "docs" / "screenshot.png")

FIRST_SCREEN_JS = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left,
                                                                   right: r.right}; };
  const one = s => { const e = document.querySelector(s); return e ? box(e) : null; };
  return {saliency: one('.st-key-map_saliency .js-plotly-plot'), uncertainty: one('.st-key-map_uncertainty .js-plotly-plot'),
          players: [...document.querySelectorAll('.st-key-players audio')].map(box),
          width: innerWidth, height: innerHeight};
}"""


def _on_screen(r, geo) -> bool:
    return r is not None and r["top"] >= 0 and r["left"] >= 0 and r["bottom"] <= geo["height"] + 1 \
        and r["right"] <= geo["width"] + 1


def _open_and_explain(page, server: str) -> None:
    """Open the app (the model under test picked), press Explain, wait for the final maps."""
    page.goto(server)
    page.get_by_text("Example clip").first.wait_for(timeout=180_000)
    _idle(page)
    if MODEL != "audionet-digits":
        _pick(page, "Model", MODEL)
        _idle(page, 300_000)
    page.get_by_role("button", name="Explain", exact=True).click()
    page.wait_for_function(FINAL_MAPS_JS, timeout=600_000)   # the final maps, not the partial estimate


@pytest.mark.parametrize("size", [(1600, 1000), (1280, 720)], ids=["1600x1000", "1280x720"])
def test_first_screen_after_explain(server, browser, tmp_path, size):
    """Saliency, uncertainty and the four players are in the first screen, side by side; the playhead moves."""
    width, height = size
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        _open_and_explain(page, server)
        final = FINAL_MAPS_JS
        _idle(page)
        page.wait_for_timeout(1000)
        geo = page.evaluate(FIRST_SCREEN_JS)
        shot = tmp_path / f"first_screen_{width}x{height}.png"
        page.screenshot(path=str(shot))
        assert _on_screen(geo["saliency"], geo) and _on_screen(geo["uncertainty"], geo), geo
        assert geo["saliency"]["right"] <= geo["uncertainty"]["left"] + 1                 # side by side
        assert abs(geo["saliency"]["top"] - geo["uncertainty"]["top"]) < 2                  # same row
        assert len(geo["players"]) >= 4 and all(_on_screen(p, geo) for p in geo["players"]), geo
        assert min(p["left"] for p in geo["players"]) >= geo["uncertainty"]["right"] - 1  # players beside
        # the playhead follows the original player over both maps
        page.evaluate("() => document.querySelector('.st-key-players audio').play()")
        page.wait_for_function("() => [...document.querySelectorAll('.earmark-playhead')]"
                               ".filter(l => l.style.display === 'block' && +l.dataset.time > 0.05).length === 2",
                               timeout=20_000)
        page.screenshot(path=str(tmp_path / f"playhead_{width}x{height}.png"))
        page.evaluate("() => document.querySelector('.st-key-players audio').pause()")
        if (width, height) == (1600, 1000):  # drag a box on the saliency map: a fifth player plays only it
            drag = page.locator(".st-key-map_saliency .nsewdrag").last.bounding_box()
            x0, y0 = drag["x"] + drag["width"] * 0.3, drag["y"] + drag["height"] * 0.3
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x0 + drag["width"] * 0.3, y0 + drag["height"] * 0.4, steps=8)
            page.mouse.up()
            page.get_by_text("Only the box").first.wait_for(timeout=60_000)
            _idle(page)
            assert page.locator(".st-key-players audio").count() >= 5
            page.screenshot(path=str(tmp_path / "region_1600x1000.png"))
        if (width, height) == (1280, 720):  # presentation mode: no sidebar, the same first screen
            page.locator('[data-testid="stSidebar"]').get_by_text("Presentation mode").click()
            _idle(page)
            page.get_by_role("button", name="Exit presentation mode").wait_for(timeout=60_000)
            page.wait_for_function(final, timeout=60_000)
            page.wait_for_timeout(1000)
            geo = page.evaluate(FIRST_SCREEN_JS)
            page.screenshot(path=str(tmp_path / "presentation_1280x720.png"))
            assert not page.locator('[data-testid="stSidebar"]').is_visible()
            assert _on_screen(geo["saliency"], geo) and _on_screen(geo["uncertainty"], geo), geo
            assert len(geo["players"]) >= 4 and all(_on_screen(p, geo) for p in geo["players"]), geo
            page.get_by_role("button", name="Exit presentation mode").click()
            _idle(page)
        print("\nfirst screen:", json.dumps(geo), "screenshots:", tmp_path)
        if os.environ.get("EARMARK_SCREENSHOT") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            name = "screenshot.png" if (width, height) == (1280, 720) else f"screenshot-{width}.png"
            shutil.copy(shot, ROOT / "docs" / name)
            if (width, height) == (1280, 720):
                shutil.copy(tmp_path / "presentation_1280x720.png", ROOT / "docs" / "screenshot-presentation.png")
    finally:
        page.close()


def test_model_from_the_models_folder_is_explained(server, page, models_dir, tmp_path):
    """A user's model from ``EARMARK_MODELS``: picked, its card shown, explained; ONNX greys out gradients."""
    if not (models_dir / "tiny-ast").is_dir():
        pytest.skip("transformers is not installed")
    page.goto(server)
    page.get_by_text("Example clip").first.wait_for(timeout=180_000)
    _idle(page)
    _pick(page, "Model", "tiny-ast (Hugging Face, from EARMARK_MODELS)")
    page.get_by_text("16,000 Hz").first.wait_for(timeout=120_000)
    _set_number(page, "Model window (s)", 0.5)
    _idle(page)
    _explain(page)
    _idle(page)
    assert page.evaluate(HEATMAP_JS) > 0
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, tmp_path / "own-model.png")
    if (models_dir / "tiny-wave.onnx").exists():
        _pick(page, "Model", "tiny-wave.onnx (ONNX, from EARMARK_MODELS)")
        page.get_by_text("Not available for this model").first.wait_for(timeout=120_000)
        assert page.locator('[data-testid="stException"]').count() == 0


#: Boxes of the colour bars and of the time-axis text (tick labels and titles) of every Plotly chart under
#: ``sel``, in page pixels; ``overlaps`` lists the pairs that share area (plot by plot).
OVERLAP_JS = """(sel) => {
  const r = e => { const b = e.getBoundingClientRect(); return {l: b.left, t: b.top, r: b.right, b: b.bottom}; };
  const seen = b => b.r - b.l > 0.5 && b.b - b.t > 0.5;
  const out = {plots: 0, bars: 0, labels: 0, overlaps: []};
  for (const plot of document.querySelectorAll(sel)) {
    const bars = [...plot.querySelectorAll('.colorbar')].map(r).filter(seen);
    const text = [...plot.querySelectorAll('.xaxislayer-above text, [class^="g-x"][class$="title"] text')]
      .filter(e => e.textContent.trim()).map(r).filter(seen);
    out.plots += 1; out.bars += bars.length; out.labels += text.length;
    for (const b of bars) for (const t of text) {
      const w = Math.min(b.r, t.r) - Math.max(b.l, t.l), h = Math.min(b.b, t.b) - Math.max(b.t, t.t);
      if (w > 0.5 && h > 0.5) out.overlaps.push({bar: b, text: t});
    }
  }
  return out;
}"""


def _no_overlap(page, sel: str, what: str) -> dict:
    page.wait_for_timeout(800)
    geo = page.evaluate(OVERLAP_JS, sel)
    assert geo["plots"] >= 1 and geo["bars"] >= 1 and geo["labels"] >= 2, (what, geo)
    assert not geo["overlaps"], (what, geo["overlaps"][:3])
    return geo


def test_colour_bars_clear_the_time_axis_in_compare_and_presentation_at_1280x720(server, browser, tmp_path):
    """At 1280×720 the colour bar under each map sits below the time axis' labels and title: on Explore in
    presentation mode and on Compare, with and without presentation mode (rendered boxes, not estimates)."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        _open_and_explain(page, server)
        _idle(page)
        maps = ".st-key-map_saliency .js-plotly-plot, .st-key-map_uncertainty .js-plotly-plot"
        _no_overlap(page, maps, "explore")
        page.get_by_role("button", name="Pin to compare").click()
        _idle(page)
        page.locator('[data-testid="stSidebar"]').get_by_text("Presentation mode").click()
        _idle(page)
        page.get_by_role("button", name="Exit presentation mode").wait_for(timeout=60_000)
        page.wait_for_function(FINAL_MAPS_JS, timeout=60_000)
        _no_overlap(page, maps, "explore, presentation")
        page.screenshot(path=str(tmp_path / "explore_presentation_1280x720.png"))
        page.get_by_role("link", name="Compare").first.click()          # presentation mode stays on
        page.get_by_text("Slot 1").first.wait_for(timeout=120_000)
        page.wait_for_function(f"({HEATMAP_JS})() >= 1", timeout=120_000)
        _idle(page)
        cmp_maps = '[data-testid="stPlotlyChart"] .js-plotly-plot'
        _no_overlap(page, cmp_maps, "compare, presentation")
        page.locator(cmp_maps).first.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "compare_presentation_1280x720.png"))
        page.get_by_role("button", name="Exit presentation mode").click()
        _idle(page)
        page.wait_for_function(f"({HEATMAP_JS})() >= 1", timeout=120_000)
        _no_overlap(page, cmp_maps, "compare")
        page.screenshot(path=str(tmp_path / "compare_1280x720.png"))
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        page.close()


@pytest.mark.parametrize("path, title, key", [
    ("recording", "Recording", '[data-testid="stSelectbox"]:has-text("Recording")'),
    ("segments", "Segments", "[data-testid=\"stPlotlyChart\"] .js-plotly-plot"),
], ids=["recording", "segments"])
def test_recording_and_segments_pages_load_at_1280x720(server, browser, tmp_path, path, title, key):
    """Smoke test: the page opens at 1280×720 without an exception and its key element is on screen."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=180_000)
        _idle(page, 300_000)
        page.locator(key).first.wait_for(state="visible", timeout=300_000)
        _idle(page)
        page.screenshot(path=str(tmp_path / f"{path}_1280x720.png"))
        assert page.locator('[data-testid="stException"]').count() == 0
        box = page.locator(key).first.bounding_box()
        assert box is not None and box["width"] > 100 and box["x"] + box["width"] <= 1281, box
        if path == "segments":
            assert page.locator("audio").count() >= 2          # the segment alone and the clip without it
    finally:
        page.close()
