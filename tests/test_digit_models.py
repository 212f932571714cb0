"""The bundled spoken-digit models: architecture, data access, training loop, shipped weights and cards."""

from __future__ import annotations


import pytest
import torch
import torchaudio
from torch import nn

from earmark.errors import DataError
from earmark.models import ModelCard, load_model
from earmark.training import digits
from earmark.assets import models_dir
from earmark.models.audionet import AudioNet
from earmark.data.fsdd import CREDIT, DigitSet, list_recordings, load_split, parse_name
from earmark.models.melcnn import MelCNN

AUDIONET_PARAMS = (
    (1 * 100 * 3 + 100) + (100 * 64 * 3 + 64) + (64 * 128 * 3 + 128) + 3 * (128 * 128 * 3 + 128)
    + (16000 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 10 + 10)
)
BUNDLED = {"audionet-digits": (AudioNet, 512, 0.96), "melcnn-digits": (MelCNN, 128, 0.97)}
#: bundled espeak-ng digits (of 20) each shipped model must hear right
BUNDLED_EXAMPLES_TARGET = {"audionet-digits": 18, "melcnn-digits": 20}   # issue 17: ≥ 18 and 20


# ------------------------------------------------------------------------------------- architecture
@pytest.fixture(scope="module")
def audionet() -> AudioNet:
    torch.manual_seed(0)
    return AudioNet().eval()


def test_audionet_is_the_audiomnist_architecture(audionet):
    net = audionet
    convs = [m for m in net.features if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [100, 64, 128, 128, 128, 128]
    assert all(c.kernel_size == (3,) and c.padding == (1,) for c in convs)
    assert sum(isinstance(m, nn.MaxPool1d) for m in net.features) == 6
    assert sum(isinstance(m, nn.ReLU) for m in net.features) == 6
    assert (net.fc1.in_features, net.fc1.out_features) == (16000, 1024)
    assert (net.fc2.in_features, net.fc2.out_features) == (1024, 512)
    assert (net.fc3.in_features, net.fc3.out_features) == (512, 10)
    assert net.dropout.p == 0.5
    assert sum(p.numel() for p in net.parameters()) == AUDIONET_PARAMS
    x = torch.randn(3, 8000)
    assert net.features(x[:, None]).shape == (3, 128, 125)
    with torch.no_grad():
        assert net(x).shape == (3, 10) and net.embed(x).shape == (3, 512)


@torch.no_grad()
def test_audionet_tolerates_the_level_and_keeps_silence_finite(audionet):
    """Above the soft floor the level barely matters; the legacy floor made the model scale-invariant."""
    from earmark.models.audionet import LEGACY_FLOOR, rms_normalise

    net = audionet
    x = torch.randn(2, 8000) * 0.1                         # RMS 0.1 and 0.4: 3-13x the floor
    assert float((rms_normalise(x, net.level_floor) / rms_normalise(4 * x, net.level_floor)).min()) > 0.95
    assert not torch.allclose(net(x), net(4 * x), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(net(torch.zeros(1, 8000))).all()
    net.level_floor.fill_(LEGACY_FLOOR)
    try:
        torch.testing.assert_close(net(x), net(4 * x), rtol=1e-4, atol=1e-4)
    finally:
        net.level_floor.fill_(0.03)


def test_melcnn_wraps_the_mel_step_and_embeds_128():
    net = MelCNN().eval()
    assert any(isinstance(m, torchaudio.transforms.MelSpectrogram) for m in net.modules())
    x = torch.randn(2, 8000, requires_grad=True)
    assert net(x).shape == (2, 10) and net.embed(x).shape == (2, 128)
    assert net.features_of(x).shape[:2] == (2, 64)
    net(x)[:, 3].sum().backward()  # differentiable down to the waveform, as every explainer needs
    assert x.grad is not None and x.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------- data
def test_parse_name_and_errors(tmp_path):
    assert parse_name("7_theo_12.wav") == (7, "theo", 12)
    with pytest.raises(DataError):
        parse_name("notes.txt")
    with pytest.raises(DataError, match="EARMARK_DATA"):
        list_recordings(None)
    with pytest.raises(DataError, match="No FSDD recordings"):
        list_recordings(tmp_path / "missing")
    (tmp_path / "recordings").mkdir()
    with pytest.raises(DataError, match="No FSDD recordings"):
        list_recordings(tmp_path)


def test_official_split_and_speaker_selection(fsdd):
    assert len(list_recordings(fsdd, split="test")) == 300
    train = list_recordings(fsdd, split="train", exclude_speakers=["theo"])
    assert len(train) == 2250 and all(r.speaker != "theo" and r.index >= 5 for r in train)
    theo = load_split(fsdd, "all", speakers=["theo"])
    assert theo.waves.shape == (500, 8000) and theo.waves.dtype == torch.float32
    assert set(theo.speakers) == {"theo"} and sorted(set(theo.labels.tolist())) == list(range(10))
    with pytest.raises(DataError, match="empty"):
        list_recordings(fsdd, speakers=["nobody"])


# ------------------------------------------------------------------------------------- training
def test_augment_is_seeded_and_keeps_the_shape():
    waves = torch.zeros(4, 8000)
    waves[:, 3000:5000] = torch.randn(4, 2000)
    lengths = torch.full((4,), 2000)
    cfg = digits.DEFAULTS["audionet"]
    a = digits.augment(waves, lengths, cfg, torch.Generator().manual_seed(3))
    b = digits.augment(waves, lengths, cfg, torch.Generator().manual_seed(3))
    assert a.shape == waves.shape and torch.equal(a, b)
    assert not torch.equal(a, waves)


def _tiny_set(n: int = 10) -> DigitSet:
    g = torch.Generator().manual_seed(0)
    return DigitSet(waves=torch.randn(n, 8000, generator=g) * 0.1, labels=torch.arange(n) % 10,
                    speakers=("theo",) * n, lengths=torch.full((n,), 8000), names=("x.wav",) * n)


def test_training_is_deterministic_and_writes_card_and_log(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, "load_split", lambda *a, **k: _tiny_set())
    cfg = digits.TrainConfig(epochs=1, batch_size=5, mixup=0.2)
    kw = dict(seed=5, config=cfg, quiet=True, threads=1, command="earmark train melcnn --seed 5")
    first = digits.train("melcnn", "unused", out=tmp_path / "a", checkpoint_dir=tmp_path / "ca", **kw)
    again = digits.train("melcnn", "unused", out=tmp_path / "b", checkpoint_dir=tmp_path / "cb", **kw)
    a = torch.load(tmp_path / "a" / "melcnn-digits.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "melcnn-digits.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a) and first.test_accuracy == again.test_accuracy
    card = ModelCard.load(tmp_path / "a" / "melcnn-digits.json")
    assert card.metrics["test_accuracy"] == pytest.approx(first.test_accuracy, abs=1e-4)
    assert CREDIT in card.training_data and card.training_command == kw["command"]
    assert "test_acc" in (tmp_path / "a" / "logs" / "melcnn-digits-seed5.log").read_text()
    # A held-out-speaker run adds its result to the existing card and leaves the weights alone.
    digits.train("melcnn", "unused", out=tmp_path / "a", checkpoint_dir=tmp_path / "ca",
                   exclude_speaker="theo", **kw)
    card = ModelCard.load(tmp_path / "a" / "melcnn-digits.json")
    assert card.metrics["heldout_speaker"] == "theo" and card.metrics["heldout_speaker_clips"] == 10
    assert torch.equal(torch.load(tmp_path / "a" / "melcnn-digits.pt", weights_only=True)[k := next(iter(a))], a[k])


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, "load_split", lambda *a, **k: _tiny_set())
    cfg = digits.TrainConfig(epochs=2, batch_size=5)
    kw = dict(seed=1, config=cfg, quiet=True, threads=1)
    digits.train("melcnn", "unused", out=tmp_path / "a", checkpoint_dir=tmp_path / "ca", **kw)

    real_accuracy = digits.accuracy
    calls = {"n": 0}

    def interrupt_after_first_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_accuracy(*args, **kwargs)

    monkeypatch.setattr(digits, "accuracy", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):  # epoch 1 checkpointed, stopped during epoch 2's evaluation
        digits.train("melcnn", "unused", out=tmp_path / "b", checkpoint_dir=tmp_path / "cb", **kw)
    monkeypatch.setattr(digits, "accuracy", real_accuracy)
    digits.train("melcnn", "unused", out=tmp_path / "b", checkpoint_dir=tmp_path / "cb", **kw)
    a = torch.load(tmp_path / "a" / "melcnn-digits.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "melcnn-digits.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "resumed" in (tmp_path / "b" / "logs" / "melcnn-digits-seed1.log").read_text()


def test_cli_says_what_to_do_without_data(tmp_path, capsys, monkeypatch):
    from earmark.cli import main

    monkeypatch.delenv("EARMARK_DATA", raising=False)
    assert main(["train", "melcnn", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "No FSDD recordings" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- shipped assets
@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_weights_and_card(name):
    cls, dim, target = BUNDLED[name]
    weights, card_path = models_dir() / f"{name}.pt", models_dir() / f"{name}.json"
    assert weights.exists(), f"{weights} missing: run `earmark train` (see the card's training_command)"
    assert weights.stat().st_size <= 40 * 2 ** 20
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    card = ModelCard.load(card_path)
    assert card.name == name and card.embedding_dim == dim and card.labels == tuple("0123456789")
    assert CREDIT in card.training_data and "CC BY-SA 4.0" in card.licence
    assert card.training_command.startswith(f"earmark train {name.split('-')[0]}")
    assert card.metrics["test_accuracy"] >= target and card.metrics["test_clips"] == 300
    assert card.metrics["heldout_speaker"] and 0 <= card.metrics["heldout_speaker_accuracy"] <= 1


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_model_accuracy_on_the_test_split(name, fsdd):
    cls, dim, target = BUNDLED[name]
    model = load_model(name, "cpu")
    test = load_split(fsdd, "test")
    assert model.embed(test.waves[:2]).shape == (2, dim)
    acc = digits.accuracy(model, test)
    assert acc >= target, f"{name}: {acc:.3f} on the 300 test clips, below {target}"
    assert acc == pytest.approx(model.card.metrics["test_accuracy"], abs=1e-3)


# ------------------------------------------------------------------------------------- round 2: front end, voices
def test_level_floor_travels_with_the_weights(tmp_path):
    """Weights carry their soft-RMS floor; weights saved before it existed load with the legacy floor."""
    from earmark.models.audionet import LEGACY_FLOOR, LEVEL_FLOOR
    from earmark.models.base import load_weights, save_weights

    for cls in (AudioNet, MelCNN):
        net = cls()
        assert float(net.level_floor) == pytest.approx(LEVEL_FLOOR)
        save_weights(net, tmp_path / "new.pt")
        assert float(load_weights(cls(level_floor=0.5), tmp_path / "new.pt").level_floor) == pytest.approx(LEVEL_FLOOR, rel=1e-3)
        old = {k: v for k, v in net.state_dict().items() if k != "level_floor"}
        torch.save(old, tmp_path / "old.pt")
        assert float(load_weights(cls(), tmp_path / "old.pt").level_floor) == pytest.approx(LEGACY_FLOOR, rel=1e-3)


def test_soft_floor_is_not_scale_invariant_but_legacy_nearly_is():
    from earmark.models.audionet import LEGACY_FLOOR, LEVEL_FLOOR, rms_normalise

    x = torch.randn(1, 8000) * 0.1
    for alpha, most in ((0.1, 0.35), (0.5, 0.9)):           # RMS 0.01 and 0.05 along IG's path from 0
        legacy = rms_normalise(alpha * x, LEGACY_FLOOR) / rms_normalise(x, LEGACY_FLOOR)
        soft = rms_normalise(alpha * x, LEVEL_FLOOR) / rms_normalise(x, LEVEL_FLOOR)
        assert float(legacy.mean()) > 0.99                         # f(αx) ≈ f(x): IG's path is flat
        assert float(soft.mean()) < most                           # the level still reaches the model


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_models_on_the_bundled_examples(name):
    """The card's count of bundled espeak-ng digits heard right is what the shipped weights score."""
    from earmark.data.speech import bundled_digits

    model = load_model(name, "cpu")
    waves, labels, _ = bundled_digits()
    correct = int((digits.predict(model, waves) == labels).sum())
    if "bundled_examples_correct" in model.card.metrics:
        assert correct == model.card.metrics["bundled_examples_correct"]
    assert correct >= BUNDLED_EXAMPLES_TARGET[name]
