"""Load test: N browser sessions on one Earmark server click Explain at the same moment.

Starts the dashboard itself on 127.0.0.1 (a free port), then for each N and variant opens N sessions over
Streamlit's own WebSocket protocol (the messages a browser exchanges with the server: the page's script
runs, widget states, fragment auto-reruns every half second), waits until every session has drawn the
Explore page, has all of them click **Explain** at once, and measures per session

* time to first map — click → the first saliency heatmap arrives (IG's first look, or a partial estimate),
* time to final map — click → the final uncertainty heatmap arrives (drawn only with the final result),
* errors — an error box, an exception, a lost connection or a timeout,

and samples the server's resident memory (RSS) throughout. Variants: ``same`` (every session asks for the
same request: one job, merged) and ``seeds`` (each session its own seed: N jobs through the queue). Every
scenario uses seeds no earlier scenario used, so nothing is answered from the cache.

Bounded: at most 40 sessions, ``--timeout`` seconds per scenario, only 127.0.0.1. No browser is needed (a
real one would render on the same 2 cores as the server and measure itself as much as the server).

``--explainers ig freqrise ...`` runs the scenarios once per explainer (picked in the sidebar as a person
would, the app's own defaults otherwise: ``stop="auto"``) and reports how much of its budget each run used
(the line under the maps); with ``--sessions 1 --variants seeds`` that is the table of docs/studies/responsiveness.md.

Run (the tables of docs/studies/load-test.md and responsiveness.md)::

    python tools/loadtest.py --sessions 1 8 30 --variants same seeds --out runs/loadtest.json
    python tools/loadtest.py --sessions 1 --variants seeds --explainers saliency ig smoothgrad wam_sg@dwt \
        wam_ig@dwt freqrise relax learnable_mask minimal_mask energy --out runs/speed-app.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_SESSIONS = 40
#: the line under the maps that says how much of its budget an anytime run used (dashboard.views.budget_text)
BUDGET = re.compile(r"(converged after [\d,]+ of [\d,]+ \w+|all [\d,]+ (masks|steps))[^·*]*")


@dataclass
class SessionResult:
    first: float | None = None      # seconds from the click to the first saliency heatmap
    final: float | None = None      # ... to the final map (its uncertainty heatmap)
    error: str | None = None
    reruns: int = 0                 # fragment auto-reruns this session asked for
    budget: str | None = None       # "converged after 1,200 of 3,000 masks ..." / "all 300 steps ..."


@dataclass
class Scenario:
    sessions: int
    variant: str
    explainer: str | None = None
    results: list[SessionResult] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0
    wall: float = 0.0

    def row(self) -> dict:
        firsts = [r.first for r in self.results if r.first is not None]
        finals = [r.final for r in self.results if r.final is not None and r.error is None]
        errors = [r.error for r in self.results if r.error]
        budgets = sorted({r.budget for r in self.results if r.budget})
        return {"sessions": self.sessions, "variant": self.variant, "explainer": self.explainer,
                "budget": budgets[0] if len(budgets) == 1 else (budgets or None),
                "first_median": _median(firsts), "first_max": max(firsts, default=None),
                "final_median": _median(finals), "final_max": max(finals, default=None),
                "completed": len(finals), "errors": len(errors), "error_kinds": sorted(set(errors))[:3],
                "rss_start_mb": round(self.rss_start_mb), "rss_peak_mb": round(self.rss_peak_mb),
                "rss_end_mb": round(self.rss_end_mb), "wall_s": round(self.wall, 1)}


def _median(v: list[float]) -> float | None:
    return statistics.median(v) if v else None


# ---- the server ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited early; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start within 120 s")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (Linux /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ---- one session over Streamlit's protocol ------------------------------------------------------------

class Session:
    """A browser's side of the conversation, reduced to what the Explore page needs."""

    def __init__(self, url: str, seed: int, explainer: str | None = None, transform: str | None = None):
        self.url, self.seed = url, seed
        # the sidebar's labels to pick, one rerun each as a person would (the transform first: it changes the
        # explainer menu's options, and with them that widget's id); then the picks are sent with every rerun
        self.to_pick = [(k, v) for k, v in (("w_transform", transform), ("w_explainer", explainer)) if v is not None]
        self.picks: list[tuple[str, str]] = []
        self.ws = None
        self.page_hash = ""
        self.ids: dict[str, str] = {}          # widget key → widget id
        self.timers: dict[str, asyncio.Task] = {}
        self.registered: set[str] = set()      # fragments registered during the current full run
        self.cache: dict[str, object] = {}     # message hash → message (ref_hash resolution)
        self.result = SessionResult()
        self.clicked_at: float | None = None
        self.ready = asyncio.Event()
        self.done = asyncio.Event()

    def widget_states(self, *, click: bool = False):
        from streamlit.proto.WidgetStates_pb2 import WidgetStates

        states = WidgetStates()
        if "w_seed" in self.ids:
            w = states.widgets.add()
            w.id, w.int_value = self.ids["w_seed"], self.seed
        for key, label in self.picks:
            if key in self.ids:
                w = states.widgets.add()
                w.id, w.string_value = self.ids[key], label
        if click:
            w = states.widgets.add()
            w.id, w.trigger_value = self.ids["explain"], True
        return states

    async def rerun(self, *, click: bool = False, fragment_id: str = "", auto: bool = False) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash = self.page_hash
        cs.widget_states.CopyFrom(self.widget_states(click=click))
        cs.cached_message_hashes.extend(self.cache)   # as a browser does: the server sends references
        if fragment_id:
            cs.fragment_id = fragment_id
            cs.is_auto_rerun = auto
        await self.ws.send(msg.SerializeToString())

    async def _auto(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.result.reruns += 1
            await self.rerun(fragment_id=fragment_id, auto=True)

    def _element(self, el) -> None:
        kind = el.WhichOneof("type")
        if kind in ("button", "number_input", "selectbox"):
            wid = getattr(el, kind).id
            key = wid.rsplit("-", 1)[-1] if wid.startswith("$$ID") else wid
            self.ids[key] = wid
        elif kind == "plotly_chart" and self.clicked_at is not None:
            key = el.plotly_chart.id.rsplit("-", 1)[-1]   # the chart's widget key
            now = time.perf_counter() - self.clicked_at
            if key in ("fig_saliency_partial", "fig_saliency") and self.result.first is None:
                self.result.first = now                   # a partial estimate, IG's first look, or the final
            if key == "fig_uncertainty" and self.result.final is None:
                self.result.final = now                   # drawn only with the final result (done at the
                                                          # run's end, after the line under the maps)
        elif kind == "markdown" and self.clicked_at is not None and (m := BUDGET.search(el.markdown.body)):
            self.result.budget = m.group(0).strip()
        elif kind == "alert" and self.clicked_at is not None and el.alert.format == 1:   # ERROR
            self.result.error = self.result.error or el.alert.body[:160]
            self.done.set()
        elif kind == "exception" and self.clicked_at is not None:
            self.result.error = self.result.error or f"exception: {el.exception.message[:140]}"
            self.done.set()

    def _handle(self, msg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self.cache.get(msg.ref_hash)
            if cached is None:
                return
            msg = cached
            kind = msg.WhichOneof("type")
        elif msg.hash:
            self.cache[msg.hash] = msg
        if kind == "new_session":
            self.page_hash = msg.new_session.page_script_hash or self.page_hash
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element)
        elif kind == "auto_rerun":
            fid, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            self.registered.add(fid)
            if fid not in self.timers:
                self.timers[fid] = asyncio.ensure_future(self._auto(fid, interval))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                task = self.timers.pop(fid, None)
                if task:
                    task.cancel()
        elif kind == "script_finished":
            status = msg.script_finished
            if self.result.final is not None:
                self.done.set()
            if status == 0:          # a full run: fragments it did not draw stop polling
                for fid in list(self.timers):
                    if fid not in self.registered:
                        self.timers.pop(fid).cancel()
                self.registered = set()
                if self.to_pick and self.to_pick[0][0] in self.ids:
                    self.picks.append(self.to_pick.pop(0))   # pick the next control before the click
                    asyncio.ensure_future(self.rerun())
                elif "explain" in self.ids and not self.to_pick:
                    self.ready.set()

    async def run(self, go: asyncio.Event, timeout: float) -> SessionResult:
        import websockets
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async with websockets.connect(self.url, subprotocols=["streamlit"], max_size=2 ** 26,
                                          open_timeout=60) as ws:
                self.ws = ws
                reader = asyncio.ensure_future(self._read(ForwardMsg))
                await self.rerun()
                await asyncio.wait_for(self.ready.wait(), timeout)
                await go.wait()
                self.clicked_at = time.perf_counter()
                await self.rerun(click=True)
                try:
                    await asyncio.wait_for(self.done.wait(), timeout)
                except asyncio.TimeoutError:
                    self.result.error = self.result.error or f"no final map within {timeout:.0f} s"
                reader.cancel()
        except Exception as exc:  # a lost connection is a result here, not a crash of the load test
            self.result.error = self.result.error or f"{type(exc).__name__}: {exc}"[:160]
        finally:
            for task in self.timers.values():
                task.cancel()
        return self.result

    async def _read(self, ForwardMsg) -> None:
        async for raw in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self._handle(msg)


async def scenario(url: str, pid: int, n: int, variant: str, seed0: int, timeout: float,
                   explainer: str | None = None) -> Scenario:
    sc = Scenario(n, variant, explainer)
    label = tlabel = None
    if explainer is not None:
        from earmark.explainers import EXPLAINERS
        from earmark.transforms import TRANSFORMS

        name, _, tname = explainer.partition("@")
        label = EXPLAINERS.get(name).title
        tlabel = TRANSFORMS.get(tname).title if tname else None
    sessions = [Session(url, seed0 if variant == "same" else seed0 + i, label, tlabel) for i in range(n)]
    go = asyncio.Event()
    sc.rss_start_mb = rss_mb(pid)
    peak = [sc.rss_start_mb]

    async def sample():
        while True:
            peak[0] = max(peak[0], rss_mb(pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.ensure_future(sample())
    tasks = [asyncio.ensure_future(s.run(go, timeout)) for s in sessions]
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in sessions)), timeout)
    except asyncio.TimeoutError:
        pass  # sessions that are not ready click anyway once they are; their timeout counts
    log(f"{n} × {variant}{f' × {explainer}' if explainer else ''}: {sum(s.ready.is_set() for s in sessions)} sessions drew the page in "
        f"{time.perf_counter() - t0:.1f} s; clicking Explain")
    started = time.perf_counter()
    go.set()
    sc.results = list(await asyncio.gather(*tasks))
    sc.wall = time.perf_counter() - started
    sampler.cancel()
    sc.rss_peak_mb, sc.rss_end_mb = max(peak[0], rss_mb(pid)), rss_mb(pid)
    return sc


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def table(rows: list[dict]) -> str:
    lines = ["| sessions | request | first map, median / max (s) | final map, median / max (s) | completed | errors | "
             "server RSS start → peak (MB) |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        what = "same (merged)" if r["variant"] == "same" else "own seed each"
        lines.append(f"| {r['sessions']} | {what} | {_fmt(r['first_median'])} / {_fmt(r['first_max'])} | "
                     f"{_fmt(r['final_median'])} / {_fmt(r['final_max'])} | {r['completed']} / {r['sessions']} | "
                     f"{r['errors']} | {r['rss_start_mb']} → {r['rss_peak_mb']} |")
    return "\n".join(lines)


def speed_table(rows: list[dict]) -> str:
    """One line per explainer: time to the first map, to the final map, and the budget the run used."""
    lines = ["| explainer | sessions | first map (s) | final map (s) | budget used (app default `stop=auto`) | errors |",
             "|---|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['explainer']} | {r['sessions']} | {_fmt(r['first_median'])} | {_fmt(r['final_median'])} | "
                     f"{r['budget'] or '—'} | {r['errors']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 30], help="N per scenario (default: 1 8 30)")
    p.add_argument("--variants", nargs="+", default=["same", "seeds"], choices=["same", "seeds"])
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per scenario (default: %(default)s)")
    p.add_argument("--explainers", nargs="+", default=None, metavar="NAME[@TRANSFORM]",
                   help="run the scenarios once per explainer, in the app's default transform or TRANSFORM "
                        "(wam_sg@dwt); default: the app's default explainer only")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.explainers:
        from earmark.explainers import EXPLAINERS

        unknown = [e for e in args.explainers if e.partition("@")[0] not in EXPLAINERS.names()]
        if unknown:
            p.error(f"unknown explainer(s) {', '.join(unknown)}; choose from {', '.join(EXPLAINERS.names())}")
    if any(not 1 <= n <= MAX_SESSIONS for n in args.sessions):
        p.error(f"sessions must lie in [1, {MAX_SESSIONS}]")

    port = free_port()
    log_dir = ROOT / "runs"
    log_dir.mkdir(exist_ok=True)
    proc = start_server(port, log_dir / "loadtest-server.log")
    url = f"ws://127.0.0.1:{port}/_stcore/stream"
    rows = []
    try:
        # warm the server (model load, first kernels) with one session that is not measured
        warm = asyncio.run(scenario(url, proc.pid, 1, "same", 10_000, args.timeout))
        log(f"warm-up: {json.dumps(warm.row())}")
        plan = [(e, n, v) for e in (args.explainers or [None]) for n in args.sessions for v in args.variants]
        for k, (explainer, n, variant) in enumerate(plan):
            seed0 = 20_000 + 1000 * k
            sc = asyncio.run(scenario(url, proc.pid, n, variant, seed0, args.timeout, explainer))
            row = sc.row()
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps({"rows": rows, "sessions": [
                    [asdict(r) for r in sc.results]]}, indent=2))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(speed_table(rows) if args.explainers else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
