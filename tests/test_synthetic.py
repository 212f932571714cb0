"""Synthetic ground-truth tasks (earmark.data.tasks), their models (earmark.models.synthetic) and their
training (earmark.training.synthetic).

The models are trained on first use (≈ 15–25 s each on one CPU thread) and cached under
``$EARMARK_CACHE/synthetic``; later runs load them.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from earmark.errors import ConfigError
from earmark.models import MODELS, load_model
from earmark.training.synthetic import DEFINITIONS, ablations, train
from earmark.data.tasks import FrequencyTask, TimeFrequencyTask, true_mask
from earmark.metrics.localisation import relevance_rank_accuracy
from earmark.transforms import get_transform

TASKS = (FrequencyTask(), TimeFrequencyTask())
DOMAINS = ("time", "fourier", "stft", "mel", "dwt")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_sample_is_deterministic_and_well_formed(task):
    a = task.sample(8, generator=_gen(3))
    b = task.sample(8, generator=_gen(3))
    c = task.sample(8, generator=_gen(4))
    for x, y in zip((a.wave, a.label, a.key_wave, a.distractor_wave), (b.wave, b.label, b.key_wave, b.distractor_wave)):
        assert torch.equal(x, y)
    assert not torch.equal(a.wave, c.wave)
    assert a.wave.shape == a.key_wave.shape == a.distractor_wave.shape == (8, task.num_samples)
    assert a.label.dtype == torch.int64 and int(a.label.min()) >= 0 and int(a.label.max()) < len(task.labels)
    assert bool((a.key_wave.pow(2).sum(-1) > 0).all())
    noise = a.wave - a.key_wave - a.distractor_wave
    assert float(noise.std()) == pytest.approx(task.noise_std, rel=0.1)


def test_frequency_task_distractor_count_and_guard():
    task = FrequencyTask()
    batch = task.sample(16, generator=_gen(0))
    spec = torch.fft.rfft(batch.distractor_wave, norm="ortho").abs()
    peaks = (spec > 0.25 * task.distractor_amplitude[0] * task.num_samples ** 0.5 / 2).sum(-1)
    assert bool((peaks >= task.distractors[0]).all())  # at least 10 distractors (each leaks over ≥ 1 bin)
    key = spec[:, task.key_bins()]                       # the guard band keeps key bins nearly clean
    assert float(key.max()) < 0.1 * task.key_amplitude[0] * task.num_samples ** 0.5 / 2


def test_frequency_truth_is_the_key_bins():
    """Known answer: in the Fourier domain the true cells are exactly the bins of the two present keys."""
    task = FrequencyTask()
    batch = task.sample(32, generator=_gen(1))
    truth = true_mask(get_transform("fourier", task.sample_rate), batch.key_wave)
    bins = task.key_bins()
    from earmark.data.tasks import PAIRS
    for row, label in zip(truth, batch.label.tolist()):
        expected = sorted(bins[list(PAIRS[label])].tolist())
        assert torch.nonzero(row).flatten().tolist() == expected


def test_time_frequency_truth_sits_on_the_key_cells():
    """STFT truth: inside the present keys' (slot, frequency) cells, nowhere else."""
    from earmark.data.tasks import PAIRS
    task = TimeFrequencyTask()
    tr = get_transform("stft", task.sample_rate)
    batch = task.sample(16, generator=_gen(2))
    truth = true_mask(tr, batch.key_wave)
    axes = tr.axes(task.num_samples)
    bounds = task.slot_bounds()
    for row, label in zip(truth, batch.label.tolist()):
        cells = torch.nonzero(row)
        freqs = axes.freqs[cells[:, 0]]
        times = axes.times[cells[:, 1]] * task.sample_rate
        owner = torch.zeros(len(cells), dtype=torch.bool)
        for k in PAIRS[label]:
            near_f = (freqs - task.freqs[k]).abs() <= 2 * task.sample_rate / tr.n_fft
            in_t = (times >= bounds[k][0]) & (times < bounds[k][1])
            owner |= near_f & in_t
            assert bool((near_f & in_t).any()), "each present key owns some true cells"
        assert bool(owner.all())


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_true_mask_every_domain(task, domain):
    tr = get_transform(domain, task.sample_rate)
    batch = task.sample(4, generator=_gen(5))
    truth = true_mask(tr, batch.key_wave)
    assert truth.dtype == torch.bool and truth.shape == (4, *tr.map_shape(task.num_samples))
    power = tr.pool(tr.analyze(batch.key_wave).abs() ** 2)
    share = (power * truth).flatten(1).sum(1) / power.flatten(1).sum(1)
    assert bool((share >= 0.9 - 1e-6).all()) and bool((truth.flatten(1).sum(1) > 0).all())
    # minimal: dropping the weakest true cell falls below the target
    weakest = torch.where(truth, power, torch.inf).flatten(1).min(1).values
    assert bool(((share - weakest / power.flatten(1).sum(1)) < 0.9).all())


def test_true_mask_rejects_bad_energy():
    with pytest.raises(ConfigError):
        true_mask(get_transform("fourier", 8000), torch.zeros(1, 100), energy=0.0)


def test_relevance_rank_accuracy_known_answers():
    truth = torch.tensor([[True, True, False, False, False], [False, False, False, False, True]])
    perfect = truth.float()
    assert relevance_rank_accuracy(perfect, truth).tolist() == [1.0, 1.0]
    half = torch.tensor([[5.0, 0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.5]])
    assert relevance_rank_accuracy(half, truth).tolist() == [0.5, 0.0]
    empty = relevance_rank_accuracy(perfect, torch.zeros_like(truth))  # no key energy: undefined
    assert torch.isnan(empty).all()
    with pytest.raises(ConfigError):
        relevance_rank_accuracy(perfect[:, :4], truth)


def test_registered():
    assert {"synth-freq", "synth-tf"} <= set(MODELS.names())


def test_training_is_deterministic():
    defn = DEFINITIONS["synth-tf"]
    a = train(defn, seed=7, steps=3).state_dict()
    b = train(defn, seed=7, steps=3).state_dict()
    c = train(defn, seed=8, steps=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", ["synth-freq", "synth-tf"])
def test_model_accuracy_card_and_ablation(name):
    """≥ 0.9 on 256 fresh clips; removing the keys destroys accuracy, removing as much distractor energy
    does not (known answer: the model uses the key components)."""
    model = load_model(name, "cpu")
    card = model.card
    defn = DEFINITIONS[name]
    assert card.num_classes == len(defn.task.labels) and card.num_samples == defn.task.num_samples
    assert "generated on the fly" in card.training_data and card.metrics["accuracy"] >= 0.95
    assert model.embed(torch.zeros(2, card.num_samples)).shape == (2, card.embedding_dim)
    batch = defn.task.sample(256, generator=_gen(2024))  # a stream neither training nor the card used
    scores = ablations(model, batch)
    assert scores["accuracy"] >= 0.9
    assert scores["accuracy_distractors_removed"] >= 0.9
    assert scores["accuracy_keys_removed"] <= 0.35  # chance is 1/6


def test_cached_weights_load_with_weights_only(tmp_path, monkeypatch):
    """The cache holds a plain state dict and a JSON card; a second build loads instead of training."""
    from earmark.training import synthetic

    monkeypatch.setenv("EARMARK_CACHE", str(tmp_path))
    quick = dataclasses.replace(DEFINITIONS["synth-tf"], recipe=synthetic.Recipe(steps=2, batch=8))
    monkeypatch.setitem(synthetic.DEFINITIONS, "synth-tf", quick)
    first = synthetic.build("synth-tf", "cpu", seed=3)
    files = sorted(p.suffix for p in (tmp_path / "synthetic").iterdir())
    assert files == [".json", ".pt"]
    state = torch.load(next((tmp_path / "synthetic").glob("*.pt")), weights_only=True)
    assert set(state) == set(first.state_dict())
    monkeypatch.setattr(synthetic, "train", lambda *a, **k: pytest.fail("should load from the cache"))
    second = synthetic.build("synth-tf", "cpu", seed=3)
    assert all(torch.equal(first.state_dict()[k], second.state_dict()[k]) for k in state)
    assert second.card == first.card
