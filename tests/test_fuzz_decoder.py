"""Decoder fuzzing: mutated audio files in, a clean clip or an ``AudioError`` out, within 10 s and 500 MB.

A seeded mutator (bit flips, truncations, header edits, chunk insertions, splices; one to three per case)
works on seed files made here (WAV PCM16/24/float/8-bit, stereo, 48 kHz, FLAC, OGG Vorbis, MP3 — libsndfile
writes MP3 since 1.1). Each case runs in its own child, forked from a parent that has already imported
Earmark, under an address-space cap (the child's size at the fork + 500 MB) and a 10 s alarm; the child
decodes with ``load_clip(..., sample_rate=8000)`` and fits the clip with ``prepare``, and reports its outcome,
time and peak resident memory (VmHWM after a reset) through a pipe.

``pytest tests/test_fuzz_decoder.py`` runs 1,000 cases (``EARMARK_FUZZ_CASES`` to change);
``make fuzz`` runs 10,000 and writes a table::

    python tests/test_fuzz_decoder.py --cases 10000 --out docs/results/fuzz-decoder.md
    python tests/test_fuzz_decoder.py --only 1234        # replay one case in this process, with a traceback
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import signal
import sys
import time
from collections import Counter

import numpy as np
import soundfile as sf
import torch

from earmark.audio import load_clip, prepare
from earmark.errors import AudioError

CAP_SECONDS = 10
CAP_MB = 500
MODEL_RATE, MODEL_SAMPLES = 8000, 8000

# ---- seeds -----------------------------------------------------------------------------------------------


def _signal(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(rate)
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    return np.stack([x, np.roll(x, 7)], axis=1) if channels == 2 else x


def _encode(data: np.ndarray, rate: int, fmt: str, subtype: str | None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def make_seeds() -> dict[str, bytes]:
    """Small valid files, one per container/encoding the decoder must survive."""
    seeds = {
        "wav-pcm16": _encode(_signal(8000, 0.2), 8000, "WAV", "PCM_16"),
        "wav-pcm24": _encode(_signal(16000, 0.1), 16000, "WAV", "PCM_24"),
        "wav-float": _encode(_signal(8000, 0.2), 8000, "WAV", "FLOAT"),
        "wav-u8": _encode(_signal(8000, 0.2), 8000, "WAV", "PCM_U8"),
        "wav-stereo": _encode(_signal(22050, 0.1, 2), 22050, "WAV", "PCM_16"),
        "wav-48k": _encode(_signal(48000, 0.05), 48000, "WAV", "PCM_16"),
        "flac": _encode(_signal(16000, 0.2), 16000, "FLAC", "PCM_16"),
        "ogg": _encode(_signal(16000, 0.2), 16000, "OGG", "VORBIS"),
    }
    if "MP3" in sf.available_formats():
        seeds["mp3"] = _encode(_signal(16000, 0.3), 16000, "MP3", "MPEG_LAYER_III")
    return seeds


# ---- the mutator -----------------------------------------------------------------------------------------

INTERESTING = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 22051, 44101, 96001, 384000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
#: (offset, width) of header fields worth editing, per container.
FIELDS = {
    "wav": ((4, 4), (16, 4), (20, 2), (22, 2), (24, 4), (28, 4), (32, 2), (34, 2), (40, 4)),
    "flac": ((4, 4), (8, 2), (10, 2), (18, 4), (20, 2), (21, 1), (22, 4), (26, 4)),
    "ogg": ((5, 1), (6, 8), (14, 4), (18, 4), (26, 1), (28, 8), (39, 4), (40, 4), (44, 4)),
    "mp3": ((0, 4), (1, 1), (2, 1), (3, 1), (4, 4), (8, 4)),
}
CHUNK_IDS = (b"fmt ", b"data", b"LIST", b"JUNK", b"fact", b"fLaC", b"OggS", b"ID3\x04", b"\xff\xfb\x90\x00")


def _kind(name: str) -> str:
    return name.split("-")[0]


def bit_flips(data: bytearray, rng: random.Random, _others) -> bytearray:
    for _ in range(rng.choice((1, 1, 2, 4, 8, 32))):
        span = min(len(data), 128) if rng.random() < 0.5 else len(data)
        pos = rng.randrange(span)
        data[pos] ^= 1 << rng.randrange(8)
    return data


def truncate(data: bytearray, rng: random.Random, _others) -> bytearray:
    cut = rng.randrange(min(len(data), 160)) if rng.random() < 0.5 else rng.randrange(len(data))
    return data[:max(cut, 1)]


def header_edit(data: bytearray, rng: random.Random, _others, kind: str = "") -> bytearray:
    fields = FIELDS.get(kind)
    if fields and rng.random() < 0.7:
        pos, width = rng.choice(fields)
    else:
        pos, width = rng.randrange(min(len(data), 64)), rng.choice((1, 2, 4))
    value = rng.choice(INTERESTING) if rng.random() < 0.8 else rng.getrandbits(8 * width)
    raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, rng.choice(("little", "big")))
    data[pos:pos + width] = raw
    return data


def insert_chunk(data: bytearray, rng: random.Random, _others) -> bytearray:
    cid = rng.choice(CHUNK_IDS) if rng.random() < 0.8 else bytes(rng.getrandbits(8) for _ in range(4))
    size = rng.choice(INTERESTING) & 0xFFFFFFFF
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
    pos = rng.choice((12, 36, 42, 4, rng.randrange(len(data) + 1)))
    return data[:pos] + cid + size.to_bytes(4, rng.choice(("little", "big"))) + payload + data[pos:]


def splice(data: bytearray, rng: random.Random, others: list[bytes]) -> bytearray:
    other = rng.choice(others)
    return data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other)):]


MUTATIONS = {"bit_flips": bit_flips, "truncate": truncate, "header_edit": header_edit,
             "insert_chunk": insert_chunk, "splice": splice}


def make_case(index: int, seeds: dict[str, bytes], base_seed: int = 0) -> tuple[str, list[str], bytes]:
    """Case ``index``: (seed name, mutations applied, bytes); the same for the same ``(base_seed, index)``."""
    rng = random.Random(f"{base_seed}:{index}")
    name = rng.choice(sorted(seeds))
    data = bytearray(seeds[name])
    applied = []
    others = list(seeds.values())
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.choice(sorted(MUTATIONS))
        fn = MUTATIONS[op]
        data = fn(data, rng, others, _kind(name)) if op == "header_edit" else fn(data, rng, others)
        applied.append(op)
        if not data:
            data = bytearray(b"\x00")
    return name, applied, bytes(data)


# ---- one case ----------------------------------------------------------------------------------------------

def decode_case(data: bytes) -> str:
    """'clip' when the bytes give a clean clip; raises whatever the decoder raises otherwise."""
    clip = load_clip(data, name="fuzz", sample_rate=MODEL_RATE)
    ready = prepare(clip, sample_rate=MODEL_RATE, num_samples=MODEL_SAMPLES)
    for c in (clip, ready):
        assert c.wave.dtype == torch.float32 and c.wave.dim() == 1 and c.num_samples > 0, "malformed clip"
        assert bool(torch.isfinite(c.wave).all()), "non-finite samples in a clip"
        assert c.sample_rate == MODEL_RATE and 1_000 <= c.original_rate <= 192_000, "rate out of range"
    assert ready.num_samples == MODEL_SAMPLES, "prepare gave the wrong length"
    return "clip"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _one(data: bytes) -> dict:
    """One case inside a child: caps set afresh (address space, alarm), outcome, time, peak memory."""
    result = {"outcome": "other", "detail": "", "seconds": None, "peak_mb": None}
    try:
        with open("/proc/self/clear_refs", "w") as fh:   # reset VmHWM to the current RSS
            fh.write("5")
    except OSError:
        pass
    base_kb = _status_kb("VmRSS:")
    with open("/proc/self/statm") as fh:
        size = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + CAP_MB * 2**20, resource.RLIM_INFINITY))
    signal.alarm(CAP_SECONDS)
    started = time.perf_counter()
    try:
        result["outcome"] = decode_case(data)
    except AudioError as exc:
        result["outcome"], result["detail"] = "AudioError", str(exc)[:160]
    except MemoryError:
        result["outcome"] = "MemoryError"
    except BaseException as exc:  # the point of the fuzz: anything else is a defect to report
        result["outcome"], result["detail"] = f"other: {type(exc).__name__}", str(exc)[:300]
    signal.alarm(0)
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = max(0, _status_kb("VmHWM:") - base_kb) / 1024
    return result


def _child(batch: list[tuple[int, bytes]], write_fd: int) -> None:
    try:
        torch.set_num_threads(1)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)   # an alarm kills the child: the case timed out
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)          # libmpg123 prints notes about broken frames; the outcome is what counts
        for index, data in batch:
            started = time.perf_counter()
            record = _one(data)
            record.update(index=index, wall=time.perf_counter() - started)
            os.write(write_fd, (json.dumps(record) + "\n").encode())
    finally:
        os._exit(0)


def run_cases(indices, seeds: dict[str, bytes], *, base_seed: int = 0, workers: int = 2,
              batch: int = 10) -> list[dict]:
    """Run the cases in forked children, ``workers`` at a time, ``batch`` cases per child (each case with
    its own caps); a case that kills its child is recorded as such and the rest of its batch rerun."""
    pending = list(indices)
    running: dict[int, tuple] = {}
    records = {}
    meta = {}
    while pending or running:
        while pending and len(running) < workers:
            chunk, pending = pending[:batch], pending[batch:]
            cases = []
            for index in chunk:
                name, applied, data = make_case(index, seeds, base_seed)
                meta[index] = dict(seed=name, mutations=applied, size=len(data))
                cases.append((index, data))
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(cases, write_fd)
            os.close(write_fd)
            running[pid] = (chunk, read_fd, time.perf_counter())
        pid, status = os.wait()
        if pid not in running:
            continue
        chunk, read_fd, started = running.pop(pid)
        parts = []
        while True:
            part = os.read(read_fd, 65536)
            if not part:
                break
            parts.append(part)
        os.close(read_fd)
        for line in b"".join(parts).decode(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            records[record["index"]] = record
        missing = [i for i in chunk if i not in records]
        if missing:  # the first unreported case ended the child; the others go back in the queue
            culprit = missing[0]
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                outcome = "timeout" if sig == signal.SIGALRM else f"killed ({signal.Signals(sig).name})"
            else:
                outcome = f"exited ({os.waitstatus_to_exitcode(status)})"
            records[culprit] = {"index": culprit, "outcome": outcome, "detail": "", "seconds": None,
                                "peak_mb": None, "wall": time.perf_counter() - started}
            pending = missing[1:] + pending
    out = []
    for index in sorted(records):
        records[index].update(meta[index])
        out.append(records[index])
    return out


ALLOWED = {"clip", "AudioError"}


def failures(records: list[dict]) -> list[dict]:
    """Cases whose outcome is not a clean clip or an AudioError, or that went over a cap."""
    return [r for r in records if r["outcome"] not in ALLOWED or r["wall"] > CAP_SECONDS
            or (r["peak_mb"] or 0) > CAP_MB]


def table(records: list[dict], seconds: float, command: str) -> str:
    counts = Counter(r["outcome"] for r in records)
    by_seed = Counter((r["seed"], r["outcome"]) for r in records)
    wall = [r["wall"] for r in records]
    peaks = [r["peak_mb"] or 0.0 for r in records]
    bad = failures(records)
    lines = [f"Decoder fuzz: {len(records):,} cases in {seconds:.0f} s (`{command}`); caps {CAP_SECONDS} s and "
             f"{CAP_MB} MB per case.", "", "| outcome | cases |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    lines += ["", "| | value |", "|---|---:|",
              f"| other exceptions, timeouts, kills | {len(bad):,} |",
              f"| max time per case (wall, in the child) | {max(wall):.3f} s |",
              f"| 99th percentile time | {float(np.percentile(wall, 99)):.3f} s |",
              f"| max peak memory above the child's start | {max(peaks):.1f} MB |",
              "", "| seed | clip | AudioError | other |", "|---|---:|---:|---:|"]
    for seed in sorted({r["seed"] for r in records}):
        other = sum(v for (s, o), v in by_seed.items() if s == seed and o not in ALLOWED)
        lines.append(f"| {seed} | {by_seed[(seed, 'clip')]:,} | {by_seed[(seed, 'AudioError')]:,} | {other:,} |")
    if bad:
        lines += ["", "Failures (replay with `python tests/test_fuzz_decoder.py --only INDEX`):", ""]
        lines += [f"- {r['index']}: {r['seed']} {'+'.join(r['mutations'])}: {r['outcome']} {r['detail']}"
                  for r in bad[:50]]
    return "\n".join(lines) + "\n"


# ---- pytest ------------------------------------------------------------------------------------------------

def test_every_seed_decodes_cleanly():
    seeds = make_seeds()
    assert {"wav-pcm16", "wav-pcm24", "wav-float", "wav-u8", "wav-stereo", "wav-48k", "flac", "ogg"} <= set(seeds)
    for name, data in seeds.items():
        assert decode_case(data) == "clip", name


def test_mutator_is_seeded():
    seeds = make_seeds()
    assert make_case(17, seeds) == make_case(17, seeds)
    assert make_case(17, seeds) != make_case(18, seeds)
    assert {op for i in range(200) for op in make_case(i, seeds)[1]} == set(MUTATIONS)



def test_the_harness_reports_what_goes_over_the_caps(monkeypatch):
    """A case that allocates past the memory cap, hangs, or raises something else is a failure."""
    module = sys.modules[__name__]
    seeds = make_seeds()
    monkeypatch.setattr(module, "CAP_SECONDS", 1)
    behaviours = {
        "memory": lambda data: bytearray(2 * CAP_MB * 2**20),
        "hang": lambda data: time.sleep(5),
        "bug": lambda data: [][1],
        "fine": lambda data: "clip",
    }
    outcomes = {}
    for label, fn in behaviours.items():
        monkeypatch.setattr(module, "decode_case", fn)
        outcomes[label] = run_cases([0], seeds, workers=1)
    assert outcomes["memory"][0]["outcome"] == "MemoryError"
    assert outcomes["hang"][0]["outcome"] == "timeout"
    assert outcomes["bug"][0]["outcome"] == "other: IndexError"
    assert outcomes["fine"][0]["outcome"] == "clip" and not failures(outcomes["fine"])
    assert all(failures(outcomes[k]) for k in ("memory", "hang", "bug"))


def test_fuzz_decoder_cases(tmp_path):
    """1,000 cases. The parent is a fresh interpreter that imports Earmark once and forks every child, so
    no thread that pytest or an earlier test left running is copied into the children."""
    import subprocess

    cases = int(os.environ.get("EARMARK_FUZZ_CASES", "1000"))
    dump = tmp_path / "records.json"
    proc = subprocess.run([sys.executable, __file__, "--cases", str(cases), "--json", str(dump)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    records = json.loads(dump.read_text())
    assert len(records) == cases
    bad = failures(records)
    assert not bad and proc.returncode == 0, table(records, 0, "pytest")
    counts = Counter(r["outcome"] for r in records)
    assert counts["clip"] > cases // 20 and counts["AudioError"] > cases // 20   # the mutator hits both sides


def main() -> int:
    ap = argparse.ArgumentParser(description="fuzz earmark.audio.load_clip with mutated seed files")
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the Markdown table here")
    ap.add_argument("--json", default=None, help="write every case's record here")
    ap.add_argument("--only", type=int, default=None, help="replay one case in this process and show its outcome")
    args = ap.parse_args()
    seeds = make_seeds()
    if args.only is not None:
        name, applied, data = make_case(args.only, seeds, args.seed)
        print(f"case {args.only}: {name} {'+'.join(applied)}, {len(data)} bytes")
        try:
            print(decode_case(data))
        except AudioError as exc:
            print(f"AudioError: {exc}")
        return 0
    started = time.perf_counter()
    records = run_cases(range(args.cases), seeds, base_seed=args.seed, workers=args.workers)
    text = table(records, time.perf_counter() - started,
                 f"python tests/test_fuzz_decoder.py --cases {args.cases} --seed {args.seed}")
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    return 1 if failures(records) else 0


if __name__ == "__main__":
    sys.exit(main())
