"""Synthetic training speech: disjoint voice sets, the cache format, word placement, robustness metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from earmark.errors import DataError
from earmark.data.speech import (BUNDLED_BASES, BUNDLED_VARIANTS, HELDOUT_BASES, HELDOUT_VARIANTS, TRAIN_BASES,
                            TRAIN_VARIANTS, bundled_digits, load_cache, place, voice_spec)


def test_voice_sets_are_disjoint_and_keep_the_bundled_voices_out():
    assert not set(TRAIN_BASES) & set(HELDOUT_BASES)
    assert not set(TRAIN_VARIANTS) & set(HELDOUT_VARIANTS)
    assert not (set(TRAIN_BASES) | set(HELDOUT_BASES)) & set(BUNDLED_BASES)          # en-us
    assert not (set(TRAIN_VARIANTS) | set(HELDOUT_VARIANTS)) & set(BUNDLED_VARIANTS)  # f3
    assert voice_spec("en-gb", "m3") == "en-gb+m3" and voice_spec("en-gb", "") == "en-gb"


def test_bundled_digits_are_the_twenty_espeak_clips():
    waves, labels, names = bundled_digits()
    assert waves.shape == (20, 8000) and sorted(labels.tolist()) == sorted(list(range(10)) * 2)
    assert {n.rsplit("_", 1)[1] for n in names} == {"en-us", "en-f3"}


def test_place_moves_the_word_flush_to_either_edge():
    waves = torch.zeros(2, 100)
    waves[0, 40:60] = torch.arange(1.0, 21.0)
    waves[1, 45:55] = 1.0                          # length 10 (room 90 → first = 45)
    lengths = torch.tensor([20, 10])
    start, end, centre = (place(waves, lengths, w) for w in ("start", "end", "centre"))
    assert torch.equal(start[0, :20], torch.arange(1.0, 21.0)) and float(start[0, 20:].abs().sum()) == 0
    assert torch.equal(end[0, 80:], torch.arange(1.0, 21.0)) and float(end[0, :80].abs().sum()) == 0
    assert torch.equal(start[1, :10], torch.ones(10)) and torch.equal(end[1, 90:], torch.ones(10))
    assert torch.equal(centre, waves)
    with pytest.raises(ValueError):
        place(waves, lengths, "middle")


def test_cache_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "speech.npz"
    with pytest.raises(DataError, match="make_speech"):
        load_cache(path, "train")
    np.savez(path, waves=np.ones((3, 8000), np.float32), lengths=np.array([100, 200, 300]),
             labels=np.array([1, 2, 3]), voices=np.array(["en-gb", "en-gb+m3", "en-029+m2"]),
             split=np.array(["train", "train", "heldout"]))
    train, held = load_cache(path, "train"), load_cache(path, "heldout")
    assert len(train) == 2 and train.labels.tolist() == [1, 2] and train.speakers == ("en-gb", "en-gb+m3")
    assert len(held) == 1 and held.lengths.tolist() == [300] and held.waves.dtype == torch.float32
    np.savez(path, waves=np.ones((1, 8000), np.float32))
    with pytest.raises(DataError, match="not a speech cache"):
        load_cache(path, "train")


def test_robustness_metrics_of_a_constant_model():
    from earmark.data.fsdd import DigitSet
    from earmark.training.digits import robustness_metrics

    class Always3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = torch.zeros(x.shape[0], 10)
            out[:, 3] = 1
            return out

    test = DigitSet(torch.zeros(4, 8000), torch.tensor([3, 3, 1, 2]), ("a",) * 4, torch.full((4,), 1000),
                    ("x",) * 4)
    m = robustness_metrics(Always3(), test, test)
    assert m["bundled_examples_correct"] == 2 and m["bundled_examples"] == 20 and len(m["bundled_examples_wrong"]) == 18
    assert m["heldout_voices_accuracy"] == 0.5
    assert m["test_accuracy_word_at_start"] == m["test_accuracy_word_at_end"] == 0.5
