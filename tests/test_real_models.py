"""Real models from a card alone: frame-level, probability-output, (B, L, 1)-layout, extra-input and
streaming networks load from PyTorch (entry point), TorchScript, torch.export and ONNX with no Python
wrapper and explain exactly as the hand-written wrapper does; the guards refuse broken maps."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import real_model_nets as nets
from earmark import explain, get_transform
from earmark.errors import ModelError
from earmark.guards import MapError, check_listenable, correlation
from earmark.models import from_module, load_model
from earmark.models.adapt import expand_labels, label_index, to_logits

RATE, LENGTH = nets.RATE, nets.LENGTH
LABELS = ["a", "b", "c"]
ATOL = 1e-5


def clip(seed: int = 0, batch: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(LENGTH) / RATE
    x = 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(LENGTH, generator=g)
    return x if batch is None else x.expand(batch, -1) * torch.linspace(0.5, 1.5, batch)[:, None]


def card(path: Path, **fields) -> Path:
    data = {"sample_rate": RATE, "input_length": LENGTH, "labels": LABELS}
    data.update(fields)
    target = path if path.suffix == ".json" else path.with_suffix(".json")
    target.write_text(json.dumps(data))
    return path


def save(fmt: str, net: nn.Module, path: Path, examples: tuple, *, names=("wave",), outputs=("out",),
         dynamic=None, script: bool = False) -> Path:
    """Write ``net`` in ``fmt`` the way a user would (dynamic batch axis)."""
    net = net.eval()
    dims = dynamic or tuple({0: torch.export.Dim("batch", max=8192)} for _ in examples)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            module = torch.jit.script(net) if script else torch.jit.trace(net, examples, check_trace=False)
            module.save(str(path))
        elif fmt == "export":
            torch.export.save(torch.export.export(net, examples, dynamic_shapes=dims), path)
        else:
            torch.onnx.export(net, examples, str(path), input_names=list(names), output_names=list(outputs),
                              dynamic_shapes=dims, dynamo=True, verbose=False, external_data=False)
    return path


SUFFIX = {"torchscript": ".pt", "export": ".pt2", "onnx": ".onnx"}


def from_card(fmt: str, net: nn.Module, folder: Path, examples: tuple, monkeypatch, *, cls: str = "", **fields):
    """The model loaded from a card: a file of ``fmt`` beside its card, or an entry-point card (``module``)."""
    saving = fields.pop("_save", {})
    if fmt == "module":
        monkeypatch.setenv("EARMARK_MODELS", str(folder))
        return load_model(card(folder / "card.json", entry_point=f"real_model_nets:{cls}", **fields), "cpu",
                          shared=False)
    path = save(fmt, net, folder / f"net{SUFFIX[fmt]}", examples, **saving)
    return load_model(card(path, **fields), "cpu", shared=False)


def hand(fn, labels=LABELS, length=LENGTH, activation: str = "softmax") -> object:
    class Wrapper(nn.Module):
        def forward(self, x):
            return fn(x)
    model = from_module(Wrapper(), sample_rate=RATE, num_samples=length, labels=labels)
    model.card = dataclasses.replace(model.card, activation=activation)
    return model


def same_maps(model, reference, methods, *, target=0, transform="fourier"):
    x = clip()
    tr = get_transform(transform, RATE)
    for method in methods:
        extra = {"n_masks": 64, "cells": 16} if method == "freqrise" else {"n_draws": 2} if method == "saliency" else {}
        a = explain(model, x, tr, target, method=method, seed=3, **extra)
        b = explain(reference, x, tr, target, method=method, seed=3, **extra)
        scale = float(b.saliency.abs().max())
        assert scale > 0
        torch.testing.assert_close(a.saliency / scale, b.saliency / scale, atol=ATOL, rtol=0, msg=method)


def methods_for(fmt: str) -> tuple[str, ...]:
    return ("freqrise",) if fmt == "onnx" else ("saliency", "freqrise")


#: ONNX export (torch.onnx, dynamo) costs ~10 s a model here: the ONNX cases beyond two are marked slow.
SLOW_ONNX = pytest.param("onnx", marks=pytest.mark.slow)
FORMATS = ["module", "torchscript", "export", SLOW_ONNX]


# ---- frame-level models --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_frame_level_model_pools_and_keeps_its_track(fmt, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    net = nets.FrameNet()
    model = from_card(fmt, net, tmp_path, (clip(batch=2),), monkeypatch, cls="FrameNet",
                      frames={"axis": 1, "pool": "mean", "hop": 0.01})
    ref = nets.by_hand_frames(net)
    x = clip(batch=3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=ATOL, rtol=0)
        track = model.frames(x)
        torch.testing.assert_close(track, net(x), atol=ATOL, rtol=0)
    assert track.shape == (3, 11, 3) and model.frame_hop == 0.01
    assert model.card.adapter["frames"]["pool"] == "mean"
    same_maps(model, hand(ref), methods_for(fmt))


@pytest.mark.parametrize("pool", ["max", "logsumexp"])
def test_frame_axis_and_pools(pool, tmp_path, monkeypatch):
    net = nets.FrameNetCT()
    model = from_card("export", net, tmp_path, (clip(batch=2),), monkeypatch, frames={"axis": 2, "pool": pool})
    ref = nets.by_hand_frames(net, pool, axis=2)
    with torch.no_grad():
        torch.testing.assert_close(model(clip(batch=2)), ref(clip(batch=2)), atol=ATOL, rtol=0)
    same_maps(model, hand(ref), ("saliency",))


def test_frame_model_without_frames_names_the_field(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="frames"):
        from_card("export", nets.FrameNet(), tmp_path, (clip(batch=2),), monkeypatch)


# ---- probability outputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["export", SLOW_ONNX])
@pytest.mark.parametrize("cls,outputs,activation", [("SoftmaxNet", "probabilities", "softmax"),
                                                    ("SigmoidNet", "probabilities", "sigmoid"),
                                                    ("LogSoftmaxNet", "log_probabilities", "softmax")])
def test_probability_outputs_give_the_models_own_probabilities(fmt, cls, outputs, activation, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    net = getattr(nets, cls)()
    model = from_card(fmt, net, tmp_path, (clip(batch=2),), monkeypatch, outputs=outputs, activation=activation)
    logits_net = nets.ClipNet()
    x = clip(batch=3)
    with torch.no_grad():
        want = logits_net(x).sigmoid() if activation == "sigmoid" else logits_net(x).softmax(-1)
        torch.testing.assert_close(model.card.probabilities(model(x)), want, atol=ATOL, rtol=0)
    # a probability readout sees exactly the original model: the same FreqRISE map as the logits network
    same_maps(model, hand(logits_net, activation=activation), ("freqrise",))
    if fmt != "onnx":   # gradients of the recovered logits: the log-probability (softmax) or the logit (sigmoid)
        ref = (lambda v: logits_net(v)) if activation == "sigmoid" else (lambda v: logits_net(v).log_softmax(-1))
        same_maps(model, hand(ref, activation=activation), ("saliency",))


def test_probability_conversion_is_exact_and_finite():
    z = torch.tensor([[-30.0, -3.0, 0.0, 2.5, 30.0]])
    assert torch.isfinite(to_logits(z.sigmoid(), "probabilities", "sigmoid")).all()
    torch.testing.assert_close(to_logits(z[:, 1:4].sigmoid(), "probabilities", "sigmoid"), z[:, 1:4], atol=1e-5, rtol=0)
    torch.testing.assert_close(to_logits(torch.nn.functional.logsigmoid(z[:, 1:4]), "log_probabilities", "sigmoid"),
                               z[:, 1:4], atol=1e-5, rtol=0)
    p = z.softmax(-1)
    torch.testing.assert_close(to_logits(p, "probabilities", "softmax").softmax(-1), p, atol=1e-7, rtol=0)


# ---- input layouts and extra inputs --------------------------------------------------------------------

@pytest.mark.parametrize("fmt,cls,layout", [pytest.param("onnx", "LayoutNet", "B,L,1", marks=pytest.mark.slow), ("export", "LayoutNet", "B,L,1"),
                                             ("torchscript", "ChannelNet", "B,1,L"), ("module", "LayoutNet", "B,L,1")])
def test_input_layouts(fmt, cls, layout, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    net = getattr(nets, cls)()
    example = clip(batch=2).unsqueeze(-1 if layout == "B,L,1" else 1)
    model = from_card(fmt, net, tmp_path, (example,), monkeypatch, cls=cls, input_layout=layout)
    same_maps(model, hand(nets.ClipNet()), methods_for(fmt))


@pytest.mark.slow
def test_wrong_rank_names_input_layout(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    with pytest.raises(ModelError, match="input_layout"):
        from_card("onnx", nets.LayoutNet(), tmp_path, (clip(batch=2).unsqueeze(-1),), monkeypatch)
    with pytest.raises(ModelError, match="input_layout"):
        from_card("export", nets.LayoutNet(), tmp_path, (clip(batch=2).unsqueeze(-1),), monkeypatch)


def test_extra_inputs_torch(tmp_path, monkeypatch):
    net = nets.ExtraNet()
    model = from_card("torchscript", net, tmp_path, (), monkeypatch, extra_inputs={"sr": 32000},
                      _save={"script": True})
    same_maps(model, hand(lambda v: net(v, 32000)), ("saliency", "freqrise"))
    ent = from_card("module", net, tmp_path, (), monkeypatch, cls="ExtraNet", extra_inputs={"sr": 32000})
    same_maps(ent, hand(lambda v: net(v, 32000)), ("saliency",))


def test_missing_forward_argument_is_named(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="extra_inputs") as err:
        from_card("torchscript", nets.ExtraNet(), tmp_path, (), monkeypatch, _save={"script": True})
    assert "sr" in str(err.value)
    with pytest.raises(ModelError, match="extra_inputs"):
        from_card("module", nets.ExtraNet(), tmp_path, (), monkeypatch, cls="ExtraNet", outputs="logits")


def test_extra_inputs_onnx_and_the_n_inputs_message(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    net = nets.ExtraTensorNet()
    examples = (clip(batch=2), torch.tensor(16000))
    dims = ({0: torch.export.Dim("batch", max=8192)}, None)
    path = save("onnx", net, tmp_path / "net.onnx", examples, names=("wave", "sr"), dynamic=dims)
    with pytest.raises(ModelError) as err:
        load_model(card(path), "cpu", shared=False)
    message = str(err.value)
    assert "2 inputs" in message and "sr" in message and "extra_inputs" in message and "wave" in message
    model = load_model(card(path, extra_inputs={"sr": 32000}), "cpu", shared=False)
    same_maps(model, hand(lambda v: net(v, torch.tensor(32000))), ("freqrise",))
    with pytest.raises(ModelError, match="does not take"):
        load_model(card(path, extra_inputs={"rate": 1}), "cpu", shared=False)


# ---- streaming -----------------------------------------------------------------------------------------

STREAM = {"chunk": nets.CHUNK, "state_inputs": {"h": ["B", 8]}, "state_outputs": [1]}


@pytest.mark.parametrize("fmt", ["torchscript", "export", "onnx", "module"])
def test_stream_with_explicit_state(fmt, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    step = nets.StepNet()
    examples = (torch.randn(2, nets.CHUNK), torch.zeros(2, 8))
    b = torch.export.Dim("batch", max=8192)
    model = from_card(fmt, step, tmp_path, examples, monkeypatch, cls="StepNet", labels=["x", "y"],
                      stream={**STREAM, "state_inputs": {("state" if fmt == "onnx" else "h"): ["B", 8]}},
                      frames={"pool": "mean"},
                      _save={"names": ("chunk", "state"), "outputs": ("score", "stateN"), "dynamic": ({0: b}, {0: b})})
    ref = nets.by_hand_stream(step)
    x = clip(batch=2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=ATOL, rtol=0)
        assert model.frames(x).shape == (2, LENGTH // nets.CHUNK, 2)
    same_maps(model, hand(ref, labels=["x", "y"]), methods_for(fmt))


def test_stream_with_inner_state_is_private_per_thread(tmp_path, monkeypatch):
    net = nets.InnerStateNet()
    path = save("torchscript", net, tmp_path / "inner.pt", (), script=True)
    model = load_model(card(path, labels=["x", "y"], stream={"chunk": nets.CHUNK, "reset": "reset_states"},
                            frames={"pool": "mean"}), "cpu")        # shared and frozen, as the app holds it
    ref = nets.by_hand_stream(net.step)
    with torch.no_grad():
        torch.testing.assert_close(model(clip(batch=2)), ref(clip(batch=2)), atol=ATOL, rtol=0)
    tr = get_transform("fourier", RATE)
    alone = [explain(model, clip(seed), tr, 0, method="saliency", seed=0, n_draws=4).saliency for seed in (0, 1)]
    from earmark.jobs import JobService, JobSettings, JobSpec, explanation_work

    service = JobService(JobSettings(workers=2))       # two worker threads, two jobs at once
    try:
        jobs = []
        for seed in (0, 1):
            spec = JobSpec.create(clip_hash=f"clip{seed}", model=model.card.name, transform="fourier",
                                  explainer="saliency", eparams={"n_draws": 4}, target=0, seed=0)
            jobs.append(service.submit(spec, explanation_work(spec, model, clip(seed), tr)))
        for job in jobs:
            assert job.wait(300) and job.error is None, job.error
    finally:
        service.shutdown()
    for seed, job in zip((0, 1), jobs):
        torch.testing.assert_close(job.result.saliency, alone[seed], atol=0, rtol=0)
    assert model.runner.per_thread


def test_stream_card_errors(tmp_path, monkeypatch):
    step = nets.StepNet()
    examples = (torch.randn(2, nets.CHUNK), torch.zeros(2, 8))
    with pytest.raises(ModelError, match="frames"):
        from_card("torchscript", step, tmp_path, examples, monkeypatch, stream=STREAM)
    with pytest.raises(ModelError, match="reset_per_call"):
        from_card("torchscript", step, tmp_path, examples, monkeypatch, stream={**STREAM, "reset_per_call": False},
                  frames={"pool": "mean"})
    with pytest.raises(ModelError, match="state_outputs"):
        from_card("torchscript", step, tmp_path, examples, monkeypatch, stream={**STREAM, "state_outputs": []},
                  frames={"pool": "mean"})


# ---- cards: labels, entry points ---------------------------------------------------------------------

def test_label_patterns_and_target_by_name():
    assert expand_labels({"pattern": "note {i}", "range": [21, 109]}, "c")[:2] == ["note 21", "note 22"]
    assert len(expand_labels({"pattern": "note {i}", "range": [21, 109]}, "c")) == 88
    hz = expand_labels({"pattern": "{v:.1f} Hz", "range": [0, 3], "values": {"start": 100, "step_cents": 1200}}, "c")
    assert hz == ["100.0 Hz", "200.0 Hz", "400.0 Hz"]
    with pytest.raises(ModelError, match="repeated"):
        expand_labels({"pattern": "x", "range": [0, 3]}, "c")
    assert label_index(["yes", "no"], "no") == 1 and label_index(["yes", "no"], "NO") == 1
    assert label_index(["yes", "no"], "1") == 1
    with pytest.raises(ModelError, match="did you mean 'yes'"):
        label_index(["yes", "no"], "yess")


def test_entry_point_card_only_inside_earmark_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    path = card(folder / "card.json", entry_point="real_model_nets:FrameNet", frames={"pool": "mean"})
    monkeypatch.delenv("EARMARK_MODELS", raising=False)
    with pytest.raises(ModelError, match="EARMARK_MODELS"):
        load_model(path, "cpu", shared=False)
    monkeypatch.setenv("EARMARK_MODELS", str(folder))
    assert load_model(folder, "cpu", shared=False).card.format == "entrypoint"


class NdEmbedNet(nn.Module):
    def forward(self, x):
        h = torch.tanh(nets.ClipNet().conv(x[:, None]))[:, :, :8]      # (B, 6, 8)
        return h.mean(-1) @ torch.ones(6, 3), h[:, :, :, None]            # logits, a (B, 6, 8, 1) embedding


def test_entry_point_honours_embedding_output_and_flattens(tmp_path, monkeypatch):
    import sys
    sys.modules[__name__].NdEmbedNet = NdEmbedNet
    monkeypatch.setenv("EARMARK_MODELS", str(tmp_path))
    monkeypatch.setitem(sys.modules, "nd_embed_mod", sys.modules[__name__])
    model = load_model(card(tmp_path / "card.json", entry_point="nd_embed_mod:NdEmbedNet", embedding_output=1),
                       "cpu", shared=False)
    assert model.embed(clip(batch=2)).shape == (2, 48)


# ---- guards --------------------------------------------------------------------------------------------

class NanGradNet(nn.Module):
    """Finite outputs, NaN gradients wherever the input is exactly zero (like a VAD on silent chunks)."""

    def forward(self, x):
        return torch.stack([x.abs().sqrt().mean(-1), -x.abs().sqrt().mean(-1)], -1)


class ConstantNet(nn.Module):
    def forward(self, x):
        return torch.stack([x.mean(-1) * 0 + 1.0, x.pow(2).mean(-1)], -1)


class EnergyNet(nn.Module):
    """Two sigmoid classes that both follow the clip's energy: no method can tell them apart."""

    def forward(self, x):
        e = x.pow(2).mean(-1) * 40
        return torch.stack([e - 1, 2 * e - 1], -1)


class BandNet(nn.Module):
    """Class 0 follows the low band, class 1 the high band (a class-sensitive model)."""

    def forward(self, x):
        spec = torch.fft.rfft(x).abs() ** 2 / x.shape[-1]
        return torch.stack([spec[:, :200].sum(-1), spec[:, 400:].sum(-1)], -1) * 10 - 1


def test_nan_map_is_refused_in_the_api_and_the_card_warns(tmp_path):
    model = hand(NanGradNet(), labels=["s", "n"])
    x = clip()
    x[: LENGTH // 2] = 0.0
    with pytest.raises(MapError, match="not finite"):
        explain(model, x, get_transform("time", RATE), 0, method="saliency", seed=0, n_draws=2)
    from earmark.guards import probe_silence
    assert "not finite" in probe_silence(model, LENGTH)


def test_constant_logit_map_is_labelled_and_not_listened_to():
    model = hand(ConstantNet(), labels=["c", "e"])
    expl = explain(model, clip(), get_transform("fourier", RATE), 0, method="ig", seed=0, n_steps=8)
    assert expl.meta["map_check"] == "all-zero" and "zero everywhere" in expl.summary()["warnings"][0]
    with pytest.raises(MapError, match="zero everywhere"):
        check_listenable(expl.saliency)
    with pytest.raises(MapError, match="NaN"):
        check_listenable(torch.full((4,), float("nan")))


def test_class_insensitive_freqrise_says_so():
    tr = get_transform("fourier", RATE)
    flat = hand(EnergyNet(), labels=["e1", "e2"], activation="sigmoid")
    expl = explain(flat, clip(), tr, 0, method="freqrise", seed=0, n_masks=256, cells=32, readout="logit",
                   estimator="control_variate")
    sens = expl.meta["class_sensitivity"]
    assert sens["contrast_class"] == 1 and sens["correlation"] > 0.99 and sens["insensitive"]
    assert any("hardly depends on the class" in w for w in expl.summary()["warnings"])
    x = clip() + 0.3 * torch.sin(2 * torch.pi * 6000 * torch.arange(LENGTH) / RATE)
    sharp = explain(hand(BandNet(), labels=["low", "high"], activation="sigmoid"), x, tr, 0, method="freqrise",
                    seed=0, n_masks=256, cells=32, readout="logit", estimator="control_variate")
    assert sharp.meta["class_sensitivity"]["correlation"] < 0.9 and "warnings" not in sharp.meta
    assert correlation(torch.ones(3), torch.ones(3)) == 1.0


def test_cli_target_by_an_unknown_name_is_one_sentence(capsys):
    from earmark.cli import main

    code = main(["explain", "digit_3_en-us", "--model", "audionet-digits", "--target", "abc", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("earmark: The model has no class named 'abc'") and err.count("\n") == 1


def test_cli_exit_codes_for_broken_maps(tmp_path, monkeypatch, capsys):
    from earmark import audio
    from earmark.cli import main

    wav = tmp_path / "clip.wav"
    x = clip()
    x[: LENGTH // 2] = 0.0
    audio.save_wav(wav, x, RATE)
    for name, net in (("nan", NanGradNet()), ("const", ConstantNet())):
        folder = tmp_path / name
        folder.mkdir()
        save("export", net, folder / "net.pt2", (clip(batch=2),))
        card(folder / "net.pt2", labels=["p", "q"])
    common = ["--transform", "time", "--quiet", "--set", "n_draws=2"]
    code = main(["explain", str(wav), "--model", str(tmp_path / "nan" / "net.pt2"), "--explainer", "saliency",
                 "--out", str(tmp_path / "o1"), *common])
    assert code == 2 and "not finite" in capsys.readouterr().err
    code = main(["explain", str(wav), "--model", str(tmp_path / "const" / "net.pt2"), "--explainer", "saliency",
                 "--target", "p", "--out", str(tmp_path / "o2"), *common])
    err = capsys.readouterr().err
    assert code == 3 and "zero everywhere" in err
    assert (tmp_path / "o2" / "explanation.json").is_file() and not (tmp_path / "o2" / "keep.wav").exists()
    summary = json.loads((tmp_path / "o2" / "explanation.json").read_text())
    assert summary["map_check"] == "all-zero" and summary["target"] == 0


def test_pickers_show_card_titles(tmp_path, monkeypatch):
    from earmark.models.loaders.card import card_title

    folder = tmp_path / "vad"
    folder.mkdir()
    card(folder / "card.json", title="My VAD", entry_point="real_model_nets:FrameNet")
    plain = card(tmp_path / "plain.pt2")
    assert card_title(folder) == "My VAD" and card_title(plain) is None
    monkeypatch.setenv("EARMARK_MODELS", str(tmp_path))
    from dashboard import services as sv

    assert sv.disk_models()[str(folder.resolve())].startswith("My VAD — vad (folder")
