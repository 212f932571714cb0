"""Recordings: streamed scan, events, writers, explaining a moment, stitched maps, the generated recording."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import timeline_models as tm
from earmark.errors import ClipTooLong, ConfigError
from earmark.timeline import (Event, overlap_add, read_events, scan, window_starts, write_audacity, write_events,
                              write_raven, explain_timeline)

ROOT = Path(__file__).resolve().parents[1]
TONES = [(3.0, 4.5), (10.0, 12.5), (20.2, 21.0)]


def _tone_events(tl):
    return [(e.start, e.end) for e in tl.events(0.5, ignore=("quiet",))]


@pytest.mark.parametrize("hop", [0.1, 0.25])
def test_scan_finds_the_tone_to_one_hop(hop):
    wave = tm.tone_recording(TONES)
    tl = scan(tm.tone(), (wave, tm.RATE), hop=hop, batch=7)
    assert tl.probs.shape == (len(tl), 2) and np.allclose(tl.probs.sum(1), 1, atol=1e-5)
    assert tl.duration == pytest.approx(30.0) and tl.hop == pytest.approx(hop)
    found = _tone_events(tl)
    assert len(found) == len(TONES)
    for (s, e), (a, b) in zip(found, TONES):
        assert abs(s - a) <= hop + 1e-9 and abs(e - b) <= hop + 1e-9


def test_scan_is_the_same_whatever_the_blocks_and_from_a_file(tmp_path):
    wave = tm.tone_recording(TONES)
    whole = scan(tm.tone(), (wave, tm.RATE), hop=0.1)
    small = scan(tm.tone(), (wave, tm.RATE), hop=0.1, block_frames=333, batch=5)
    path = tmp_path / "tones.wav"
    sf.write(path, wave, tm.RATE, subtype="FLOAT")
    from_file = scan(tm.tone(), path, hop=0.1, block_frames=1000)
    assert np.array_equal(whole.probs, small.probs) and np.array_equal(whole.probs, from_file.probs)
    assert np.array_equal(whole.starts, from_file.starts) and from_file.name == "tones"


def test_scan_resamples_in_stream():
    """A 3 kHz recording is resampled block by block to the model's 1 kHz: events at the same times."""
    t = np.arange(30 * 3000) / 3000
    on = np.zeros_like(t, dtype=bool)
    for a, b in TONES:
        on |= (t >= a) & (t < b)
    wave = np.where(on, np.sin(2 * np.pi * 100 * t), 0).astype(np.float32)
    tl = scan(tm.tone(), (wave, 3000), hop=0.1, block_frames=4096)
    assert tl.rate == tm.RATE and tl.duration == pytest.approx(30.0, abs=1e-3)
    for (s, e), (a, b) in zip(_tone_events(tl), TONES):
        assert abs(s - a) <= 0.1 + 1e-9 and abs(e - b) <= 0.1 + 1e-9


def test_uncentred_windows_cover_the_recording():
    assert window_starts(2500, 1000, 250, centred=False).tolist() == [0, 250, 500, 750, 1000, 1250, 1500]
    assert window_starts(1000, 1000, 250, centred=True).tolist() == [-500, -250, 0, 250]
    tl = scan(tm.tone(), (tm.tone_recording(TONES), tm.RATE), hop=0.25, centred=False)
    assert tl.starts[0] == 0 and tl.ends[-1] >= tl.duration
    # an uncentred event spans its windows: it contains the tone
    for (s, e), (a, b) in zip(_tone_events(tl), TONES):
        assert s <= a + 0.25 and e >= b - 0.25


def test_multi_label_tracks_overlap():
    low = tm.tone_recording([(2.0, 8.0)], seconds=12, freq=100)
    high = tm.tone_recording([(5.0, 10.0)], seconds=12, freq=300)
    tl = scan(tm.two_tones(), (low + high, tm.RATE), hop=0.1)
    assert tl.multi_label and not np.allclose(tl.probs.sum(1), 1)
    events = {e.label: (e.start, e.end) for e in tl.events(0.5)}
    assert set(events) == {"low", "high"}
    assert events["low"] == pytest.approx((2.0, 8.0), abs=0.11)
    assert events["high"] == pytest.approx((5.0, 10.0), abs=0.11)
    both = (tl.track("low") > 0.5) & (tl.track("high") > 0.5)
    assert both.sum() >= 25          # 5-8 s: both classes at once


def test_events_merge_min_duration_and_softmax_exclusive():
    from earmark.timeline import Timeline

    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]], np.float32)
    starts = np.arange(6) * 1.0 - 0.5
    tl = Timeline(starts, starts + 1.0, probs, ("a", "b"), rate=1, duration=6.0, hop=1.0)
    ev = tl.events(0.5, ignore=())
    assert [(e.start, e.end, e.label) for e in ev] == [(0, 1.5, "a"), (1.5, 2.5, "b"), (2.5, 3.5, "a"), (3.5, 5.5, "b")]
    assert ev[0].score == pytest.approx(0.9)
    merged = tl.events(0.5, ignore=(), merge_gap=1.0, labels=["a"])
    assert [(e.start, e.end) for e in merged] == [(0, 3.5)]
    assert [e.label for e in tl.events(0.5, ignore=(), min_duration=1.5)] == ["a", "b"]
    assert [e.label for e in tl.events(0.5)] == ["a", "b", "a", "b"]
    with pytest.raises(ConfigError, match="probability"):
        tl.events(0)
    with pytest.raises(ConfigError, match="not a class"):
        tl.track("z")


def test_writers_round_trip(tmp_path):
    events = [Event(1.25, 2.5, "tone", 0.97), Event(3.0, 3.5, "dog bark", 0.6)]
    path = write_events(tmp_path / "events.csv", events)
    assert path.read_text().splitlines()[0] == "start,end,label,score"
    assert read_events(path) == [Event(1.25, 2.5, "tone", 0.97), Event(3.0, 3.5, "dog bark", 0.6)]
    raven = write_raven(tmp_path / "e.selections.txt", events, high_hz=4000).read_text().splitlines()
    rows = list(csv.DictReader(raven, delimiter="\t"))
    assert float(rows[1]["Begin Time (s)"]) == 3.0 and rows[1]["Label"] == "dog bark"
    aud = write_audacity(tmp_path / "e.labels.txt", events).read_text().splitlines()
    assert aud[0].split("\t")[:2] == ["1.250000", "2.500000"]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="start,end,label,score"):
        read_events(tmp_path / "bad.csv")


def test_scan_refuses_what_it_should(tmp_path, monkeypatch):
    wave = tm.tone_recording(TONES)
    monkeypatch.setenv("EARMARK_MAX_RECORDING_S", "20")
    with pytest.raises(ClipTooLong, match="EARMARK_MAX_RECORDING_S"):
        scan(tm.tone(), (wave, tm.RATE))
    monkeypatch.setenv("EARMARK_MAX_RECORDING_S", "lots")
    with pytest.raises(ConfigError, match="positive number"):
        scan(tm.tone(), (wave, tm.RATE))
    monkeypatch.delenv("EARMARK_MAX_RECORDING_S")
    with pytest.raises(ConfigError, match="hop"):
        scan(tm.tone(), (wave, tm.RATE), hop=5.0)
    (tmp_path / "x.wav").write_bytes(b"not audio at all")
    from earmark.errors import AudioError
    with pytest.raises(AudioError, match="convert"):
        scan(tm.tone(), tmp_path / "x.wav")


def test_should_stop_ends_early():
    tl = scan(tm.tone(), (tm.tone_recording(TONES), tm.RATE), hop=0.1, batch=10, should_stop=lambda: True)
    assert tl.meta["stopped"] and 0 < len(tl) < 300


# ---- stitching ----------------------------------------------------------------------------------------------
def test_overlap_add_is_exact_for_maps_of_one_signal():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(5000)
    starts = window_starts(5000, 1000, 300)
    maps = np.stack([np.pad(signal, 1000)[s + 1000:s + 2000] for s in starts])
    stitched, weight = overlap_add(maps, starts, 5000)
    assert np.allclose(stitched, signal) and (weight > 0).all()


def test_explained_timeline_is_exact_for_a_linear_model():
    """IG (zero baseline) of a linear logit w·x is w ⊙ x exactly: with w the same at every position the stitched
    map is c·x; with any w it is the taper-weighted mean of w[t - s_k]·x[t] over the windows."""
    rng = np.random.default_rng(1)
    wave = rng.standard_normal(6 * tm.RATE).astype(np.float32) * 0.3
    flat = tm.linear(np.full((2, tm.WINDOW), 0.5) * np.array([[1.0], [-2.0]]))
    st = explain_timeline(flat, (wave, tm.RATE), method="ig", target=1, hop=0.25, baselines="zero", n_steps=8, spacing="uniform")
    assert st.saliency.shape == wave.shape and st.start == 0
    assert np.allclose(st.saliency, -1.0 * wave, atol=1e-5)

    w = rng.standard_normal((1, tm.WINDOW)).astype(np.float32)
    model = tm.linear(w)
    st = explain_timeline(model, (wave, tm.RATE), method="ig", target=0, hop=0.5, start=1.0, stop=4.0,
                          baselines="zero", n_steps=8, spacing="uniform")
    a, length = tm.RATE, 3 * tm.RATE
    starts = window_starts(length, tm.WINDOW, tm.RATE // 2)
    h = 0.1 + 0.9 * np.hanning(tm.WINDOW + 2)[1:-1]
    num, den = np.zeros(length), np.zeros(length)
    for s in starts:
        for i in range(tm.WINDOW):
            t = s + i
            if 0 <= t < length:
                num[t] += h[i] * w[0, i] * wave[a + t]
                den[t] += h[i]
    assert np.allclose(st.saliency, num / den, atol=1e-5)
    with pytest.raises(ConfigError, match="cheap method"):
        explain_timeline(model, (wave, tm.RATE), method="freqrise")


# ---- a moment in place --------------------------------------------------------------------------------------
def test_explain_at_takes_the_scans_window(tmp_path):
    from earmark.moment import clip_at

    wave = tm.tone_recording(TONES)
    clip, start = clip_at((wave, tm.RATE), tm.tone().card, 12.25)
    assert start == pytest.approx(11.75) and clip.wave.shape == (tm.WINDOW,)
    assert np.array_equal(clip.wave.numpy(), wave[11750:12750])
    clip, start = clip_at((wave, tm.RATE), tm.tone().card, 0.2)     # before the start: zeros, as in the scan
    assert start == pytest.approx(-0.3) and np.array_equal(clip.wave.numpy()[:300], np.zeros(300))
    with pytest.raises(ConfigError, match="outside the recording"):
        clip_at((wave, tm.RATE), tm.tone().card, 31.0)


def test_cli_scan_and_explain_at(tmp_path, capsys):
    from earmark.cli import main

    wave = tm.tone_recording(TONES)
    path = tmp_path / "tones.wav"
    sf.write(path, wave, tm.RATE, subtype="PCM_16")
    out = tmp_path / "scan"
    assert main(["scan", str(path), "--model", "timeline_models:tone", "--hop", "0.1", "--out", str(out)]) == 0
    assert "100%" in capsys.readouterr().err       # progress also when stderr is not a terminal
    events = [e for e in read_events(out / "events.csv") if e.label == "tone"]
    assert len(events) == 3
    assert all(abs(e.start - a) <= 0.1 and abs(e.end - b) <= 0.1 for e, (a, b) in zip(events, TONES))
    assert (out / "timeline.csv").read_text().splitlines()[0] == "start,end,quiet,tone"
    assert {"events.selections.txt", "events.labels.txt", "timeline.png", "scan.json"} <= {p.name for p in out.iterdir()}

    assert main(["explain", str(path), "--model", "timeline_models:tone", "--at", "12.5", "--transform", "time",
                 "--explainer", "saliency", "--out", str(tmp_path / "x"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "x" / "explanation.json").read_text())
    assert summary["recording_window"]["start"] == pytest.approx(12.0)
    assert "--at 12.5" in summary["command"] and (tmp_path / "x" / "moment.png").exists()
    heard, rate = sf.read(tmp_path / "x" / "original.wav")
    assert heard.shape == (tm.WINDOW,) and np.allclose(heard, wave[12000:13000], atol=1e-4)
    assert main(["explain", str(path), "--model", "timeline_models:tone", "--at", "40", "--out",
                 str(tmp_path / "y")]) == 2
    assert "outside the recording" in capsys.readouterr().err


# ---- memory -------------------------------------------------------------------------------------------------
@pytest.mark.slow   # ~40 s on a loaded 2-core machine (writing and decoding an hour of audio)
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set size from /proc (Linux)")
def test_an_hour_scans_in_bounded_memory(tmp_path):
    """One hour at 4 kHz (57.6 MB as float32) is scanned with RSS growing by at most half the decoded audio
    (16 MB measured: a block, a batch of windows and the allocator's slack)."""
    rate, seconds = 4000, 3600
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write((rng.standard_normal(60 * rate) * 0.1).astype(np.float32))
    script = textwrap.dedent(f"""
        import os, sys, torch
        from earmark.models import from_module
        from earmark.timeline import scan
        page = os.sysconf("SC_PAGE_SIZE")
        def rss():   # resident set size now, in bytes
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page
        class Level(torch.nn.Module):
            def forward(self, x):
                e = x.pow(2).mean(-1, keepdim=True)
                return torch.cat([e, -e], -1)
        m = from_module(Level(), sample_rate={rate}, num_samples={rate}, labels=["a", "b"])
        scan(m, (torch.zeros({rate} * 20).numpy(), {rate}), hop=1.0)          # warm up every code path
        before, peak = rss(), [0]
        def sample(fraction, stage):
            peak[0] = max(peak[0], rss())
        tl = scan(m, sys.argv[1], hop=1.0, batch=256, progress=sample)
        print(len(tl), tl.duration, (peak[0] - before) / 2**20)
    """)
    env = {"PYTHONPATH": f"{ROOT / 'core'}:{ROOT}", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    windows, duration, growth_mb = r.stdout.split()
    assert int(windows) == seconds and float(duration) == pytest.approx(seconds)
    print(f"RSS growth while scanning an hour at {rate} Hz: {float(growth_mb):.1f} MB")
    whole_mb = seconds * rate * 4 / 2**20          # the decoded hour as float32 (what a whole-file read holds)
    # bounded: well under the whole file (16 MB measured alone, 31 MB once inside a busy full run)
    assert float(growth_mb) < 0.75 * whole_mb, f"RSS grew by {growth_mb} MB while scanning an hour"


# ---- the generated recording --------------------------------------------------------------------------------
def test_phone_number_recording(fsdd, tmp_path):
    from earmark.data.recording import cached_recording, make_recording, read_words, speech_extent

    rec = make_recording(fsdd, seed=3, digits=12)
    assert rec.duration == pytest.approx(40.0, abs=0.01) and len(rec.words) == 12
    assert len({w.speaker for w in rec.words}) >= 3
    assert all(int(w.source.split("_")[2].split(".")[0]) <= 4 for w in rec.words)   # FSDD test split only
    starts = [w.start for w in rec.words]
    assert starts == sorted(starts) and all(a.end < b.start for a, b in zip(rec.words, rec.words[1:]))
    assert np.abs(rec.wave).max() <= 0.9 + 1e-6
    again = make_recording(fsdd, seed=3, digits=12)
    assert np.array_equal(rec.wave, again.wave)
    # every word is louder than the pauses around it
    for w in rec.words:
        a, b = int(w.start * rec.sample_rate), int(w.end * rec.sample_rate)
        assert np.sqrt((rec.wave[a:b] ** 2).mean()) > 3 * np.sqrt((rec.wave[b + 800:b + 1600] ** 2).mean())
    wav, words = cached_recording(fsdd, seed=3, digits=12, folder=tmp_path / "phone")
    assert read_words(words) == tuple(type(w)(round(w.start, 3), round(w.end, 3), w.label, w.speaker, w.source)
                                      for w in rec.words)
    assert "CC BY-SA" in (tmp_path / "phone" / "NOTICE.txt").read_text()
    start, stop = speech_extent(np.r_[np.zeros(800), np.ones(800), np.zeros(800)].astype(np.float32))
    assert 800 - 160 <= start <= 800 and 1600 <= stop <= 1600 + 160      # to one 20 ms frame


def test_events_trimmed_to_the_loud_part():
    from earmark.timeline import Timeline

    probs = np.tile(np.array([[0.1, 0.9]], np.float32), (6, 1))
    starts = np.arange(6) * 1.0 - 0.5
    levels = np.array([-60, -60, -10, -5, -50, -60], np.float32)
    tl = Timeline(starts, starts + 1.0, probs, ("background", "a"), rate=1, duration=6.0, hop=1.0, levels=levels)
    assert [(e.start, e.end) for e in tl.events(0.5)] == [(0.0, 5.5)]
    assert [(e.start, e.end) for e in tl.events(0.5, trim_db=20)] == [(1.5, 3.5)]
    assert [(e.start, e.end) for e in tl.events(0.5, trim_db=60)] == [(0.0, 5.5)]


def test_scan_levels_follow_the_recording():
    tl = scan(tm.tone(), (tm.tone_recording(TONES), tm.RATE), hop=0.1)
    loud = tl.levels > -20
    tone = (tl.centres >= 10.1) & (tl.centres <= 12.4)
    assert loud[tone].all() and not loud[(tl.centres > 14) & (tl.centres < 19)].any()
    assert tl.levels[tone] == pytest.approx(10 * np.log10(0.5), abs=0.2)    # a unit sine: −3 dBFS


def test_a_stereo_flac_at_another_rate(tmp_path):
    """A stereo 4 kHz FLAC is mixed to mono and resampled block by block: the tone's events as from the array."""
    t = np.arange(30 * 4000) / 4000
    on = np.zeros_like(t, dtype=bool)
    for a, b in TONES:
        on |= (t >= a) & (t < b)
    mono = np.where(on, np.sin(2 * np.pi * 100 * t), 0).astype(np.float32) * 0.9
    sf.write(tmp_path / "s.flac", np.stack([mono, mono], 1), 4000, subtype="PCM_24")
    tl = scan(tm.tone(), tmp_path / "s.flac", hop=0.1, block_frames=5000)
    ref = scan(tm.tone(), (np.stack([mono, mono]), 4000), hop=0.1)
    assert tl.duration == pytest.approx(30.0) and np.allclose(tl.probs, ref.probs, atol=1e-3)
    for (s, e), (a, b) in zip(_tone_events(tl), TONES):
        assert abs(s - a) <= 0.1 + 1e-9 and abs(e - b) <= 0.1 + 1e-9


def test_display_pooling_keeps_short_events():
    tl = scan(tm.tone(), (tm.tone_recording([(10.0, 10.2)], seconds=600), tm.RATE), hop=0.1)
    centres, probs, levels = tl.display(max_columns=500)
    assert len(centres) <= 500 and probs.shape == (len(centres), 2)
    assert probs[:, 1].max() == pytest.approx(tl.probs[:, 1].max())        # the 0.2 s tone survives pooling
    assert centres[np.argmax(probs[:, 1])] == pytest.approx(10.1, abs=1.0)
    c, p, _ = tl.display(9.0, 11.0)
    assert len(c) == 21 and np.array_equal(p, tl.probs[(tl.centres >= 9) & (tl.centres <= 11)])
