"""Segments: parsers, activity detection, Shapley/occlusion against closed forms, listening and faithfulness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from earmark.errors import ConfigError, DataError, EarmarkError
from earmark.metrics.segments import segment_deletion_insertion
from earmark.models import from_module
from earmark.segments import Segments, detect, explain_segments, grid, load, segment_sounds
from earmark.segments.attribution import exact_shapley, permutation_shapley, shapley_weights

RATE, LENGTH = 100, 240

LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.4
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.4
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = ""
        intervals [2]:
            xmin = 0.3
            xmax = 1.1
            text = "say ""three"""
        intervals [3]:
            xmin = 1.1
            xmax = 1.9
            text = "nine"
        intervals [4]:
            xmin = 1.9
            xmax = 2.4
            text = "  "
    item [2]:
        class = "TextTier"
        name = "tones"
        xmin = 0
        xmax = 2.4
        points: size = 1
        points [1]:
            number = 0.5
            mark = "H*"
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
2.4
<exists>
2
"TextTier"
"tones"
0
2.4
1
0.5
"H*"
"IntervalTier"
"phones"
0
2.4
3
0
1.2e-1
"a"
0.12
1.5
""
1.5
2.4
"b"
'''


def _sentence(exc: BaseException) -> str:
    text = str(exc)
    assert isinstance(exc, EarmarkError)
    assert "\n" not in text and "Traceback" not in text and text.rstrip().endswith((".", ")")), text
    return text


# ------------------------------------------------------------------------------------------------ parsers
def test_textgrid_long_format_picks_tier_and_skips_empty(tmp_path):
    p = tmp_path / "words.TextGrid"
    p.write_text(LONG_TEXTGRID)
    s = load(p)
    assert s.labels == ('say "three"', "nine")
    np.testing.assert_allclose(s.start, [0.3, 1.1])
    np.testing.assert_allclose(s.end, [1.1, 1.9])
    assert load(p, tier="words").labels == s.labels and load(p, tier="1").labels == s.labels
    with pytest.raises(DataError) as err:
        load(p, tier="tones")
    assert "point tier" in _sentence(err.value)
    with pytest.raises(DataError) as err:
        load(p, tier="phones")
    assert "words, tones" in _sentence(err.value)


def test_textgrid_short_format_and_utf16(tmp_path):
    p = tmp_path / "short.TextGrid"
    p.write_text(SHORT_TEXTGRID)
    s = load(p)                                    # the first *interval* tier, though a point tier comes first
    assert s.labels == ("a", "b")
    np.testing.assert_allclose(s.start, [0.0, 1.5])
    np.testing.assert_allclose(s.end, [0.12, 2.4])
    q = tmp_path / "utf16.TextGrid"
    q.write_bytes(LONG_TEXTGRID.replace("nine", "neuf é").encode("utf-16"))
    assert load(q, tier="words").labels[1] == "neuf é"


def test_raven_table(tmp_path):
    p = tmp_path / "sel.txt"
    p.write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies\n"
                 "1\tSpectrogram 1\t1\t0.50\t0.90\t1000\t4000\twren\n"
                 "1\tWaveform 1\t1\t0.50\t0.90\t1000\t4000\twren\n"
                 "2\tSpectrogram 1\t1\t0.10\t0.30\t500\t3000\trobin\n")
    s = load(p)
    assert s.labels == ("robin", "wren")            # sorted by start; the waveform view row is not a second call
    np.testing.assert_allclose(s.end, [0.3, 0.9])
    assert load(p, tier="Selection").labels == ("2", "1")
    with pytest.raises(DataError) as err:
        load(p, tier="Call Type")
    assert "Species" in _sentence(err.value)


def test_audacity_labels(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("0.000000\t0.500000\tone\n\\\t200.0\t3000.0\n1.25\t1.75\ttwo\n2.0\t2.5\t\n")
    s = load(p)
    assert s.labels == ("one", "two", "3")          # an empty label is numbered
    np.testing.assert_allclose(s.start, [0.0, 1.25, 2.0])


def test_csv_with_scores_as_a_scan_writes(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("start,end,label,score\n1.5,2.0,dog,0.91\n0.2,0.8,cat,0.55\n")
    s = load(p)
    assert s.labels == ("cat", "dog")
    np.testing.assert_allclose(s.scores, [0.55, 0.91])
    q = tmp_path / "plain.csv"
    q.write_text("start,end\n0,1\n")
    assert load(q).labels == ("1",)


@pytest.mark.parametrize("name,content,words", [
    ("missing.csv", None, "does not exist"),
    ("bad.csv", "start,end,label\n0.1,abc,x\n", "Line 2"),
    ("reversed.csv", "start,end,label\n1.0,0.5,x\n", "before it starts"),
    ("empty.csv", "start,end,label\n", "no segments"),
    ("nohead.csv", "a,b,c\n1,2,3\n", "'start' and 'end'"),
    ("cut.TextGrid", LONG_TEXTGRID[:400], "ends early"),
    ("junk.TextGrid", "hello world", "not a Praat TextGrid"),
    ("raven.txt", "Selection\tBegin Time (s)\n1\t0.2\n", "End Time (s)"),
    ("aud.txt", "0.1 0.2 spaces\n", "start<TAB>end"),
    ("bin.txt", "\x00\x01\x02", "binary"),
])
def test_bad_files_get_one_sentence(tmp_path, name, content, words):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError) as err:
        load(p)
    assert words in _sentence(err.value)


def test_a_scans_three_event_formats(tmp_path):
    """The events a scan writes (earmark.timeline.format_events): CSV, Raven with Label and Score, Audacity."""
    from collections import namedtuple

    from earmark.segments import from_events

    (tmp_path / "events.csv").write_text("start,end,label,score\n0.500,1.250,dog,0.9100\n2.000,2.400,cat,0.6000\n")
    (tmp_path / "events.selections.txt").write_text(
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tLabel\tScore\n"
        "1\tSpectrogram 1\t1\t0.5000\t1.2500\t0.0\t\tdog\t0.9100\n2\tSpectrogram 1\t1\t2.0000\t2.4000\t0.0\t\tcat\t0.6000\n")
    (tmp_path / "events.labels.txt").write_text("0.500000\t1.250000\tdog (0.91)\n2.000000\t2.400000\tcat (0.60)\n")
    for name in ("events.csv", "events.selections.txt", "events.labels.txt"):
        s = load(tmp_path / name)
        np.testing.assert_allclose(s.start, [0.5, 2.0])
        assert s.labels[0].startswith("dog")
    np.testing.assert_allclose(load(tmp_path / "events.selections.txt").scores, [0.91, 0.6])
    Event = namedtuple("Event", "start end label score")
    s = from_events([Event(2.0, 2.4, "cat", 0.6), Event(0.5, 1.25, "dog", 0.91)])
    assert s.labels == ("dog", "cat") and s.scores.tolist() == [0.91, 0.6]


def test_segments_validation():
    with pytest.raises(ConfigError):
        Segments([0.0, 1.0], [0.5], ["a", "b"])
    with pytest.raises(ConfigError):
        Segments([-0.1], [0.5], ["a"])
    with pytest.raises(ConfigError):
        Segments([float("nan")], [0.5], ["a"])
    s = Segments([0.0, 1.0, 5.0], [0.5, 3.0, 6.0], ["a", "b", "c"]).within(2.0)
    assert s.labels == ("a", "b") and s.end[-1] == 2.0


def test_grid_and_detect():
    g = grid(1.0, 0.3)
    np.testing.assert_allclose(g.start, [0.0, 0.3, 0.6, 0.9])
    np.testing.assert_allclose(g.end, [0.3, 0.6, 0.9, 1.0])
    rate = 8000
    t = torch.arange(3 * rate) / rate
    wave = 0.002 * torch.randn(3 * rate, generator=torch.Generator().manual_seed(0))
    bursts = [(0.4, 0.8), (0.85, 1.2), (2.0, 2.5)]          # the first two are 50 ms apart: one segment
    for a, b in bursts:
        on = (t >= a) & (t < b)
        wave[on] += 0.3 * torch.sin(2 * math.pi * 440 * t[on])
    s = detect(wave, rate, min_gap=0.1, min_len=0.05)
    np.testing.assert_allclose(s.start, [0.4, 2.0], atol=0.021)
    np.testing.assert_allclose(s.end, [1.2, 2.5], atol=0.021)
    assert len(detect(wave, rate, min_gap=0.01)) == 3
    with pytest.raises(ConfigError) as err:
        detect(torch.zeros(rate), rate)
    _sentence(err.value)


# ------------------------------------------------------------------------------------------------ toy models
class Linear(nn.Module):
    """logits = x @ W: an additive game under silence replacement (the closed form is Σ_{t∈seg} w_t x_t)."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x @ self.w


class Mixer(nn.Module):
    """A non-additive model: tanh features with interactions across the whole clip."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(torch.randn(LENGTH, 6, generator=g) * 0.3)
        self.b = nn.Parameter(torch.randn(6, 2, generator=g))

    def forward(self, x):
        h = torch.tanh(x @ self.a)
        return (h * h.roll(1, dims=-1)) @ self.b + h @ self.b


class Oracle(nn.Module):
    """Class 0's logit listens to samples [lo, hi) only: a matched filter for that part of the clip ``ref``
    (silence or noise there give about 0, the clip itself about 2)."""

    def __init__(self, lo: int, hi: int, ref: torch.Tensor):
        super().__init__()
        self.lo, self.hi = lo, hi
        self.register_buffer("ref", ref[lo:hi].clone())
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        e = (x[:, self.lo:self.hi] * self.ref).mean(-1, keepdim=True) * 2 - 1
        return torch.cat([e, torch.zeros_like(e)], dim=-1) + self.dummy


def _model(module):
    return from_module(module, sample_rate=RATE, num_samples=LENGTH, labels=["a", "b"])


def _clip(seed=0):
    return torch.randn(LENGTH, generator=torch.Generator().manual_seed(seed))


SEGS8 = grid(LENGTH / RATE, 0.3)                            # 8 adjacent segments of 30 samples


def test_exact_shapley_equals_closed_form_on_additive_model():
    w = torch.randn(LENGTH, 2, generator=torch.Generator().manual_seed(3)) * 0.05
    x = _clip()
    e = explain_segments(_model(Linear(w)), x, SEGS8, target=0, method="shapley", readout="logit")
    closed = torch.stack([(w[i * 30:(i + 1) * 30, 0] * x[i * 30:(i + 1) * 30]).sum() for i in range(8)]).double()
    assert e.params["estimator"] == "exact" and e.meta["evaluations"] == 256
    torch.testing.assert_close(e.scores, closed, atol=1e-6, rtol=0)
    assert float(e.stderr.abs().max()) == 0.0


def test_exact_shapley_is_efficient_on_a_nonlinear_model():
    e = explain_segments(_model(Mixer()), _clip(1), SEGS8, target=0, method="shapley", readout="prob",
                         rest="replace")
    gap = float(e.extras["value_all"] - e.extras["value_none"])
    assert abs(float(e.scores.sum()) - gap) < 1e-6
    assert abs(gap) > 1e-3                                   # not trivially zero


def test_exact_shapley_small_games():
    # v(S) = |S|^2 on 3 symmetric players: φ_i = 9/3 = 3; weights sum to 1 over coalition sizes.
    n = 3
    v = torch.tensor([bin(k).count("1") ** 2 for k in range(1 << n)], dtype=torch.float64)
    torch.testing.assert_close(exact_shapley(v, n), torch.full((n,), 3.0, dtype=torch.float64))
    w = shapley_weights(4)
    assert abs(sum(math.comb(3, s) * float(w[s]) for s in range(4)) - 1) < 1e-12


def test_permutation_sampling_converges_and_its_stderr_covers_the_error():
    segs = grid(LENGTH / RATE, 0.2)                          # 12 players: beyond exact_max=10
    model, x = _model(Mixer(2)), _clip(2)
    exact = explain_segments(model, x, segs, target=0, method="shapley", exact_max=12)
    errors = []
    for pairs in (8, 128):
        est = explain_segments(model, x, segs, target=0, method="shapley", permutations=pairs, seed=5)
        assert est.params["estimator"] == "permutation"
        assert abs(float(est.scores.sum() - exact.scores.sum())) < 1e-6    # efficient per permutation
        err = (est.scores - exact.scores).abs()
        errors.append(float(err.max()))
        covered = (err <= 3 * est.stderr + 1e-9).float().mean()
        assert covered >= 11 / 12, (err, est.stderr)
    assert errors[1] < errors[0] / 2
    again = explain_segments(model, x, segs, target=0, method="shapley", permutations=8, seed=5)
    assert torch.equal(again.scores, explain_segments(model, x, segs, target=0, method="shapley",
                                                      permutations=8, seed=5).scores)


def test_antithetic_sampler_on_a_known_game():
    n = 12
    weights = torch.arange(1, n + 1, dtype=torch.float64)

    def value(c):
        s = c.double() @ weights
        return s + 0.01 * s ** 2

    gen = torch.Generator().manual_seed(0)
    phi, se, samples = permutation_shapley(value, n, 200, gen)
    assert samples.shape == (200, n)
    assert abs(float(phi.sum() - value(torch.ones(1, n))[0])) < 1e-9
    from earmark.segments.attribution import all_coalitions
    exact = exact_shapley(value(all_coalitions(n)), n)
    assert float(((phi - exact).abs() / se.clamp(min=1e-12)).max()) < 4


@pytest.mark.parametrize("method,params", [("shapley", {}), ("occlusion", {}),
                                           ("occlusion", {"replacement": "noise", "repeats": 4}),
                                           ("shapley", {"replacement": "background"})])
def test_oracle_segment_gets_all_the_credit(method, params):
    model = _model(Oracle(90, 120, _clip(4)))                          # segment 3 of SEGS8 = samples 90..120
    e = explain_segments(model, _clip(4), SEGS8, target=0, method=method, **params)
    others = torch.cat([e.scores[:3], e.scores[4:]])
    assert float(others.abs().max()) < 1e-6
    assert float(e.scores[3]) > 0.05
    assert e.order()[0] == 3


def test_band_split_credits_the_right_band():
    class HighOracle(nn.Module):                              # listens to the high half of the spectrum only
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            spec = torch.fft.rfft(x[:, 90:120], dim=-1).abs() ** 2
            e = spec[:, 9:].sum(-1, keepdim=True) / 30
            return torch.cat([e - 1, -e], dim=-1) + self.dummy

    x = torch.sin(2 * math.pi * 5 * torch.arange(LENGTH) / RATE) + torch.sin(2 * math.pi * 40 * torch.arange(LENGTH) / RATE)
    e = explain_segments(_model(HighOracle()), x, SEGS8, target=0, method="shapley", bands=2)
    bands = e.extras["band_scores"]
    assert bands.shape == (8, 2)
    assert int(bands.abs().argmax()) == 3 * 2 + 1            # segment 3, high band
    torch.testing.assert_close(bands.sum(1).double(), e.scores)


def test_summed_ig_and_energy():
    w = torch.randn(LENGTH, 2, generator=torch.Generator().manual_seed(3)) * 0.05
    x = _clip()
    e = explain_segments(_model(Linear(w)), x, SEGS8, target=0, method="summed")
    closed = torch.stack([(w[i * 30:(i + 1) * 30, 0] * x[i * 30:(i + 1) * 30]).sum() for i in range(8)]).double()
    torch.testing.assert_close(e.scores, closed, atol=2e-3, rtol=2e-3)   # IG of a linear logit: w·x exactly
    en = explain_segments(_model(Linear(w)), x, SEGS8, target=0, method="energy")
    assert abs(float(en.scores.sum()) - 1) < 1e-9


def test_segments_csv_roundtrip(tmp_path):
    e = explain_segments(_model(Oracle(90, 120, _clip(4))), _clip(4), SEGS8, target=0, method="occlusion")
    path = e.to_csv(tmp_path / "segments.csv")
    assert path.read_text().splitlines()[0] == "start,end,label,score,stderr"
    back = load(path)
    assert back.labels == SEGS8.labels
    np.testing.assert_allclose(back.scores, e.scores.numpy(), rtol=1e-5, atol=1e-9)


# ------------------------------------------------------------------------------------------------ listening
def test_segment_sounds_report_the_models_answer():
    model = _model(Oracle(90, 120, _clip(4)))
    x = _clip(4)
    e = explain_segments(model, x, SEGS8, target=0, method="occlusion")
    sounds = segment_sounds(model, x, SEGS8, target=0, order=e.order(), top_k=2)
    assert [s.kind for s in sounds[:3]] == ["original", "alone", "without"] and sounds[-1].kind == "top"
    by = {(s.kind, s.index): s for s in sounds}
    torch.testing.assert_close(torch.tensor(by[("without", 3)].score),
                               torch.tensor(float(e.extras["value_all"] - e.scores[3])), atol=1e-6, rtol=0)
    assert by[("alone", 3)].score > by[("without", 3)].score
    assert 3 in sounds[-1].members and len(sounds[-1].members) == 2
    orig_rms = float(x.pow(2).mean().sqrt())
    for s in sounds[1:]:
        level = float(s.wave.pow(2).mean().sqrt())
        assert abs(level - orig_rms) < 1e-4 * orig_rms or float(s.wave.abs().max()) > 0.98


# ------------------------------------------------------------------------------------------------ faithfulness
def test_segment_deletion_insertion_beats_random_for_the_oracle():
    model = _model(Oracle(90, 120, _clip(4)))
    x = _clip(4)
    e = explain_segments(model, x, SEGS8, target=0, method="shapley")
    c = segment_deletion_insertion(model, x, SEGS8, e.scores, target=0, random_orders=8)
    assert c.auc["deletion"]["score"] < c.auc["deletion"]["random"]
    assert c.auc["insertion"]["score"] > c.auc["insertion"]["random"]
    assert float(c.deletion["score"][1]) == pytest.approx(float(c.deletion["score"][-1]), abs=1e-6)
    assert c.fractions[0] == 0 and c.fractions[-1] == 1
    assert {r["curve"] for r in c.rows()} == {"deletion", "insertion"}


# ------------------------------------------------------------------------------------------------ sequences
def test_digit_sequences_know_their_word_boundaries(fsdd):
    from earmark.data.sequences import WINDOW, load_words, synthesize_many

    words = load_words(fsdd, "test")
    assert len(words) == 300 and {w.digit for w in words} == set(range(10))
    seqs = synthesize_many(words, 20, seed=7)
    again = synthesize_many(words, 20, seed=7)
    for s, t in zip(seqs, again):
        assert np.array_equal(s.wave, t.wave) and s.segments.labels == t.segments.labels
    for s in seqs:
        assert s.wave.shape == (WINDOW,) and 2 <= len(s.segments) <= 4
        assert len(set(s.digits)) == len(s.digits) and s.present.sum() == len(s.digits)
        assert (s.segments.start[1:] >= s.segments.end[:-1] + 0.1 - 1e-3).all()     # pauses ≥ 0.1 s
        level = lambda a, b: float(np.sqrt((s.wave[int(a * 8000):int(b * 8000)] ** 2).mean()))
        gap = level(s.segments.end[0], s.segments.start[1])
        assert all(level(a, b) > gap for a, b in zip(s.segments.start, s.segments.end))   # words louder than pauses


def test_digits_present_model_credits_the_spoken_word(fsdd):
    from earmark.data.sequences import load_words, synthesize_many
    from earmark.models import load_model

    model = load_model("digits-present", "cpu")
    assert model.card.multi_label and model.card.num_samples == 32000 and model.card.labels[3] == "3"
    hits = []
    for seq in synthesize_many(load_words(fsdd, "test"), 6, seed=99):
        x = torch.from_numpy(seq.wave)
        for i, label in enumerate(seq.segments.labels):
            e = explain_segments(model, x, seq.segments, int(label), method="shapley")
            hits.append(e.order()[0] == i)
    assert np.mean(hits) >= 0.8, hits


def test_same_seed_same_bits_for_random_replacements():
    model, x = _model(Mixer(3)), _clip(3)
    runs = [explain_segments(model, x, SEGS8, target=0, method="occlusion", replacement=r, seed=s, repeats=4)
            for r, s in (("noise", 1), ("noise", 1), ("noise", 2), ("background", 1), ("background", 1))]
    assert torch.equal(runs[0].scores, runs[1].scores) and torch.equal(runs[0].stderr, runs[1].stderr)
    assert not torch.equal(runs[0].scores, runs[2].scores)
    assert torch.equal(runs[3].scores, runs[4].scores)
    assert float(runs[0].stderr.max()) > 0                       # the draws of noise differ


def test_training_batches_drop_words_with_their_labels(fsdd):
    from earmark.data.sequences import load_words
    from earmark.training.present import draw_batch

    words = load_words(fsdd, "test")
    by_digit = [[i for i, w in enumerate(words) if w.digit == d] for d in range(10)]
    x, y = draw_batch(words, by_digit, np.random.default_rng(0), 16, drop=1.0)
    x0, y0 = draw_batch(words, by_digit, np.random.default_rng(0), 16, drop=0.0)
    assert x.shape == (16, 32000) and y.shape == (16, 10)
    assert set(y.sum(1).tolist()) <= {1.0, 2.0, 3.0} and set(y0.sum(1).tolist()) <= {2.0, 3.0, 4.0}
    # the first sequence is drawn alike in both batches: one word (and its label) gone, the rest untouched
    assert bool((y[0] <= y0[0]).all()) and float((y0[0] - y[0]).sum()) == 1
    changed = (x[0] != x0[0]).nonzero().flatten()
    assert 0 < len(changed) < 8000 and int(changed[-1] - changed[0]) < 8000
