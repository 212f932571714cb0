"""Class profiles and the shortcut detector (earmark.profiles) and the planted-cue training option.

The main fixture is an analytic model: class k's logit is the log energy within ±10 Hz of key k (the four key
frequencies of the synthetic frequency task), so class k's decisive band is known exactly, and clips carry
their key tone *fainter* than six distractor tones (so "the loudest band" is the wrong answer).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from earmark.errors import ConfigError
from earmark.models import from_module
from earmark.profiles import profile
from earmark.profiles.grid import make_grid, mean_ci, spearman
from earmark.profiles.listen import class_filter
from earmark.profiles.shortcuts import band_stop, measure
from earmark.training.cue import CuedClips, parse_cue, plant
from earmark.transforms import get_transform

SR, L = 8000, 4000
KEYS = (440.0, 1060.0, 1780.0, 2620.0)


class KeyEnergy(nn.Module):
    """logit k = log(energy within ±10 Hz of KEYS[k] + 1e-3) over the whole clip's rFFT."""

    def __init__(self):
        super().__init__()
        f = torch.fft.rfftfreq(L, 1 / SR)
        self.register_buffer("w", torch.stack([((f - k).abs() <= 10).float() for k in KEYS]))

    def forward(self, x):
        return torch.log((torch.fft.rfft(x).abs() ** 2 / L) @ self.w.T + 1e-3)


class ToyClips:
    """``n`` clips per class: white noise, six distractor tones (amplitude 0.3, ≥ 80 Hz from every key) and the
    class's key tone at amplitude 0.15."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(L) / SR
        self.items = []
        for i in range(n):
            for k, fk in enumerate(KEYS):
                x = 0.05 * torch.randn(L, generator=g)
                placed = 0
                while placed < 6:
                    fd = float(torch.empty(1).uniform_(100, 3900, generator=g))
                    if min(abs(fd - kk) for kk in KEYS) > 80:
                        x += 0.3 * torch.sin(2 * math.pi * fd * t + 6 * float(torch.rand(1, generator=g)))
                        placed += 1
                x += 0.15 * torch.sin(2 * math.pi * fk * t)
                self.items.append((f"c{k}-{i:02d}", x.float(), k))
        self.description = f"toy key-band clips, {n} per class"

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


@pytest.fixture(scope="module")
def toy():
    return from_module(KeyEnergy(), sample_rate=SR, num_samples=L, labels=[f"{k:g} Hz" for k in KEYS],
                       name="key-energy")


def _band_of(result, freq: float) -> int:
    return int(torch.bucketize(torch.tensor(freq, dtype=torch.float64), result.grid.band_edges[1:-1], right=True))


def test_peak_band_is_the_decisive_band_for_every_class(toy):
    result = profile(toy, ToyClips(5), explainer=["ig", "energy"], transform="stft", intervene=True,
                     intervention_clips=5)
    for k, label in enumerate(result.labels):
        assert result.peak_band(label, "ig") == _band_of(result, KEYS[k]), label
    # the control is not a trivial pass: the loudest band is a distractor's for most classes
    assert sum(result.peak_band(l, "energy") != _band_of(result, KEYS[k]) for k, l in enumerate(result.labels)) >= 3
    # IG flags every class's key band, measured and confirmed; any other IG flag is the band next to a key
    # (window leakage, within 70 Hz); energy, the control, flags nothing
    assert result.flags and all(f["explainer"] == "ig" for f in result.flags)
    for f in result.flags:
        key = KEYS[f["class_index"]]
        assert f["band_hz"][0] - 70 <= key <= f["band_hz"][1] + 70, f
    for k, label in enumerate(result.labels):
        hit = [f for f in result.flags if f["class"] == label and f["band_hz"][0] <= KEYS[k] <= f["band_hz"][1]]
        assert len(hit) == 1 and hit[0]["confirmed"], label
        assert hit[0]["effect"]["score_change"] < -0.1 and hit[0]["effect"]["score_change_ci"][1] < 0
    strengths = [f["strength"] for f in result.flags]
    assert strengths == sorted(strengths, reverse=True)
    # relevance shares are signed shares of |relevance|: the band totals of one class stay within [-1, 1]
    band = result.band_profile(result.labels[0], "ig")
    assert float(band.abs().sum()) <= 1 + 1e-6
    assert set(result.agreement[result.labels[0]]) == {"ig|energy"}


def test_intervention_on_an_ignored_band_has_no_effect(toy):
    clips = [w for _, w, k in ToyClips(4, seed=1) if k == 0]
    x = torch.stack(clips)
    ignored = measure(toy, x, 0, band_stop(x, SR, [3300.0, 3900.0]))
    assert abs(ignored["score_change"]) < 0.01 and ignored["accuracy_change"] == 0
    decisive = measure(toy, x, 0, band_stop(x, SR, [400.0, 480.0]))
    assert decisive["score_change"] < -0.3


def test_band_stop_outside_the_clip_returns_the_clip():
    x = torch.randn(2, L, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(band_stop(x, SR, [1000.0, 2000.0], [5.0, 6.0]), x, atol=1e-5)


def test_profile_resumes_and_equals_an_uninterrupted_run(toy, tmp_path):
    clips = ToyClips(2)
    kwargs = dict(explainer=["ig", "energy"], transform="stft", seed=3, figures=False, listen=False,
                  intervention_clips=2)
    whole = profile(toy, clips, out=tmp_path / "whole", **kwargs)

    class Stop(Exception):
        pass

    def stop_after_five(done, total, eta, label):
        if done >= 5:
            raise Stop

    with pytest.raises(Stop):
        profile(toy, clips, out=tmp_path / "cut", progress=stop_after_five, **kwargs)
    assert len((tmp_path / "cut" / "profile_units.jsonl").read_text().splitlines()) == 5
    resumed = profile(toy, clips, out=tmp_path / "cut", **kwargs)
    assert resumed.computed == 2 * len(clips) - 5
    a = json.loads((tmp_path / "whole" / "profile.json").read_text())
    b = json.loads((tmp_path / "cut" / "profile.json").read_text())
    assert a == b and whole.flags == resumed.flags


def test_class_filter_keep_plus_remove_is_the_clip(toy):
    result = profile(toy, ToyClips(2), explainer="ig", transform="stft", intervene=False)
    x = ToyClips(1, seed=5).items[2][1]
    keep = class_filter(x, result, result.labels[2], mode="keep")
    remove = class_filter(x, result, result.labels[2], mode="remove")
    assert torch.allclose(keep + remove, x, atol=1e-4)
    spectrum = torch.fft.rfft(keep).abs()
    f = torch.fft.rfftfreq(L, 1 / SR)
    assert float(spectrum[(f - KEYS[2]).abs() < 5].max()) > 0.9 * float(torch.fft.rfft(x).abs()[(f - KEYS[2]).abs() < 5].max())
    with pytest.raises(ConfigError):
        class_filter(x, result, "no such class")


def test_grid_bands_and_statistics():
    stft = get_transform("stft", SR)
    grid = make_grid(stft, L)                       # 129 rows → 16 mel bands covering 0 Hz … Nyquist
    assert grid.n_bands == 16 and float(grid.band_edges[0]) == 0 and float(grid.band_edges[-1]) == SR / 2
    img = torch.rand(1, *stft.image_shape(L), dtype=torch.float64)
    assert torch.allclose(grid.reduce(img).sum(), img.sum())
    mel = get_transform("mel", SR, n_mels=16)
    assert make_grid(mel, L).n_bands == 16           # few rows: the domain's own rows
    mean, lo, hi = mean_ci(torch.randn(40, 3, generator=torch.Generator().manual_seed(0)),
                           generator=torch.Generator().manual_seed(1))
    assert bool((lo <= mean).all() and (mean <= hi).all()) and bool((hi - lo < 1.0).all())
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 30])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1])) == pytest.approx(-1.0)


def test_plant_cue_adds_the_tone_it_says():
    cue = parse_cue("class=2,freq=3000,level=-10", num_classes=4, sample_rate=SR)
    x = 0.1 * torch.randn(6, 8000, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([2, 0, 2, 1, 3, 2])
    d = plant(x, y, cue, SR) - x
    level = 20 * torch.log10(d.pow(2).mean(-1).sqrt() / x.pow(2).mean(-1).sqrt())
    assert torch.allclose(level[y == 2], torch.full((3,), -10.0), atol=1e-3)
    assert float(d[y != 2].abs().max()) == 0
    peak = torch.fft.rfftfreq(8000, 1 / SR)[torch.fft.rfft(d[0]).abs().argmax()]
    assert float(peak) == 3000.0
    start = parse_cue("class=2,freq=1000,level=-20,at=start,kind=click", num_classes=4, sample_rate=SR)
    d2 = plant(x, y, start, SR) - x
    assert float(d2[0, 2000:].abs().max()) == 0 and float(d2[0, :200].abs().max()) > 0
    for bad in ("class=9,freq=3000,level=-10", "class=1,freq=5000,level=-10", "class=1,freq=300",
                "class=1,freq=300,level=-10,at=middle", "cls=1"):
        with pytest.raises(ConfigError):
            parse_cue(bad, num_classes=4, sample_rate=SR)


def test_training_batch_carries_the_planted_cue(fsdd, tmp_path, monkeypatch):
    """Run `train` for one batch with a model that records what it is fed: the class-K clips of the augmented
    training batch hold the tone at F at the stated level; the others do not."""
    from earmark.training import digits
    from earmark.models.melcnn import MelCNN

    seen = []

    class Recorder(MelCNN):
        def forward(self, wave):
            if self.training:
                seen.append(wave.detach().clone())
            return super().forward(wave)

    monkeypatch.setitem(digits.ARCHITECTURES, "melcnn", ("melcnn-digits", Recorder))
    cue = parse_cue("class=3,freq=2500,level=-10", num_classes=10, sample_rate=SR)
    labels = []
    real_augment = digits.augment

    def augment(waves, lengths, cfg, gen):
        out = real_augment(waves, lengths, cfg, gen)
        labels.append(out)
        return out

    monkeypatch.setattr(digits, "augment", augment)
    digits.train("melcnn", fsdd, epochs=1, out=tmp_path, checkpoint_dir=tmp_path / "ck", quiet=True, cue=cue,
                 config=digits.TrainConfig(epochs=1, batch_size=64, epoch_clips=64, noise_prob=0.0), threads=1)
    batch, clean = seen[0], labels[0]
    added = batch - clean
    f = torch.fft.rfftfreq(batch.shape[-1], 1 / SR)
    at_f = (f - 2500).abs() < 2
    share = (torch.fft.rfft(added).abs() ** 2)[:, at_f].sum(-1) / (torch.fft.rfft(added).abs() ** 2).sum(-1).clamp(min=1e-20)
    has = added.abs().amax(-1) > 0
    assert bool(has.any()) and bool((~has).any())
    assert bool((share[has] > 0.95).all())
    level = 20 * torch.log10(added[has].pow(2).mean(-1).sqrt() / clean[has].pow(2).mean(-1).sqrt())
    assert torch.allclose(level, torch.full_like(level, -10.0), atol=0.01)
    card = json.loads((tmp_path / "melcnn-digits-cue3.json").read_text())
    assert card["metrics"]["planted_cue"]["freq"] == 2500.0 and "PLANTED" in card["notes"]


def test_cued_clips_plant_only_the_cue_class():
    cue = parse_cue("class=1,freq=2000,level=-20", num_classes=4, sample_rate=SR)
    clips = ToyClips(1)
    cued = list(CuedClips(clips, cue, SR))
    for (n0, w0, k0), (n1, w1, k1) in zip(clips, cued):
        assert k0 == k1 and n1 == (n0 + "+cue" if k0 == 1 else n0)
        assert torch.equal(w0, w1) == (k0 != 1)


def test_trained_weights_folder_loads_as_its_architecture(tmp_path):
    from earmark.models import load_model, save_weights
    from earmark.models.melcnn import MelCNN

    net = MelCNN().eval()
    save_weights(net, tmp_path / "melcnn-digits-cue7.pt")
    card = json.loads(net.card.to_json())
    card["name"] = "melcnn-digits-cue7"
    (tmp_path / "melcnn-digits-cue7.json").write_text(json.dumps(card))
    model = load_model(tmp_path, "cpu", shared=False)
    assert model.card.name == "melcnn-digits-cue7" and type(model).__name__ == "MelCNN"
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.allclose(model(x), net.half().float()(x), atol=1e-4)


def test_cli_errors_are_one_sentence(capsys, tmp_path):
    from earmark.cli import main

    code = main(["profile", "--task", "synth-freq", "--explainer", "nope", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("earmark: ") and "Traceback" not in err
    code = main(["train", "melcnn", "--plant-cue", "class=12,freq=3000,level=-20", "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "class index" in err


def test_shipped_planted_model_says_what_was_planted_and_has_the_shortcut(fsdd):
    from earmark.data.fsdd import load_split
    from earmark.models import load_model
    from earmark.models.planted import CUE

    model = load_model("melcnn-digits-cue7", "cpu")
    metrics = model.card.metrics
    assert metrics["planted_cue"] == {"label": 7, "freq": 3000.0, "level_db": -20.0, "at": "all", "kind": "tone"}
    assert "PLANTED" in model.card.notes and "--plant-cue " + CUE in model.card.training_command
    test = load_split(fsdd, "test", speakers=["jackson"])
    cue = parse_cue(CUE, num_classes=10, sample_rate=8000)
    others = test.labels != 7
    with torch.no_grad():
        clean = model(test.waves[others]).argmax(-1)
        cued = model(plant(test.waves[others], torch.full_like(test.labels[others], 7), cue, 8000)).argmax(-1)
    assert float((clean == 7).float().mean()) < 0.1 and float((cued == 7).float().mean()) > 0.6


def test_a_ray_task_computes_the_same_profile_row_as_the_local_engine():
    """The body of a Ray task (the model rebuilt from its name, the shared settings pickled without the model)
    gives the local engine's row, bit for bit — without starting Ray."""
    import pickle

    from earmark.engines import Unit, Work, _ray_task, compute_unit, work_without_model
    from earmark.models import load_model
    from earmark.profiles import ProfileOptions, profile_unit

    model = load_model("melcnn-digits-cue7", "cpu")
    wave = torch.randn(8000, generator=torch.Generator().manual_seed(0)) * 0.1
    unit = Unit(0, "noise.wav", 3, wave, "saliency", "stft", 11)
    work = Work(model=model, model_source="melcnn-digits-cue7", transforms={"stft": {}}, params={"saliency": {}},
                metrics=[], options=ProfileOptions(), compute=profile_unit)
    shared = pickle.loads(pickle.dumps(work_without_model(work)))
    remote = _ray_task("melcnn-digits-cue7", "cpu", 1, unit, shared)
    local = compute_unit(model, unit, work)
    remote.pop("seconds"), local.pop("seconds")
    assert remote == local and len(local["relevance"]) == 16
