"""Core plumbing: declared parameters, device choice, the Probe, the model contract, the explain entry."""

from __future__ import annotations

import pytest
import torch

from earmark import ConfigError, ModelError, explain, from_module, get_transform, pick_device
from earmark.params import Param, resolve
from earmark.probe import Probe, baseline_coeffs

L = 64


@pytest.fixture
def linear_model():
    torch.manual_seed(0)
    net = torch.nn.Linear(L, 3, bias=False)
    return from_module(net, sample_rate=8000, num_samples=L, labels=["a", "b", "c"])


def test_params_coerce_and_explain_errors():
    params = (Param("n", 5, "how many", low=1, high=10), Param("mode", "x", "which", choices=("x", "y")),
              Param("on", True, "switch"))
    assert resolve(params, {"n": "7", "on": "false"}, owner="T") == {"n": 7, "mode": "x", "on": False}
    with pytest.raises(ConfigError, match=r"'n' must lie in \[1, 10\]"):
        resolve(params, {"n": 11}, owner="T")
    with pytest.raises(ConfigError, match="must be one of x, y"):
        resolve(params, {"mode": "z"}, owner="T")
    with pytest.raises(ConfigError, match="has no setting 'steps'"):
        resolve(params, {"steps": 3}, owner="T")
    with pytest.raises(ConfigError, match="must be an int"):
        resolve(params, {"n": "2.5"}, owner="T")


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="Unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no.*CUDA|CUDA device was asked"):
            pick_device("cuda")


def test_from_module_checks_shapes():
    with pytest.raises(ModelError, match=r"must map \(B, 16\) to logits \(B, 2\)"):
        from_module(torch.nn.Linear(16, 3), sample_rate=8000, num_samples=16, labels=["a", "b"])


def test_probe_score_matches_manual_masking(linear_model, generator):
    x = torch.randn(L, generator=generator)
    t = get_transform("fourier", 8000)
    probe = Probe(linear_model, t, x, target=1)
    masks = (torch.rand(5, *probe.map_shape, generator=generator) > 0.5).float()
    got = probe.score(masks, readout="logit")
    z = t.analyze(x[None])[0]
    expected = torch.stack([linear_model(t.synthesize((z * m)[None], L))[0, 1] for m in masks])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert probe.forward_passes == 5
    # mean baseline: masked cells take the clip's mean coefficient
    full = probe.score(torch.zeros(1, *probe.map_shape), baseline="mean", readout="logit")
    flat = baseline_coeffs(z, "mean") * torch.ones_like(z)
    torch.testing.assert_close(full, linear_model(t.synthesize(flat[None], L))[:, 1], rtol=1e-5, atol=1e-5)


def test_probe_grad_of_linear_model_is_weight(linear_model, generator):
    x = torch.randn(L, generator=generator)
    probe = Probe(linear_model, get_transform("time", 8000), x, target=2, batch_size=2)
    values, grads = probe.grad(torch.randn(5, L, generator=generator))
    w = linear_model.module.weight[2]
    torch.testing.assert_close(grads, w.expand(5, L))
    assert values.shape == (5,)


def test_explain_rejects_unknown_method_and_target(linear_model):
    x = torch.randn(L)
    t = get_transform("stft", 8000, n_fft=64, hop=16)
    with pytest.raises(ConfigError, match="Unknown explainer 'shap'"):
        explain(linear_model, x, t, method="shap")
    with pytest.raises(ConfigError, match="Target class 7 does not exist"):
        explain(linear_model, x, t, 7, method="ig")


def test_explanation_carries_meta_and_saves(tmp_path, linear_model):
    x = torch.randn(L)
    e = explain(linear_model, x, get_transform("fourier", 8000), method="ig", n_steps=8)
    assert e.meta["predicted"] == int(linear_model(x[None]).argmax())
    assert e.meta["backward_passes"] == 3 * 8 + 5  # 3 baselines × 8 path points + f(x) twice (zero path first) + 3 baselines
    files = e.save(tmp_path)
    import numpy as np
    data = np.load(files["npz"])
    assert data["saliency"].shape == tuple(e.saliency.shape)
    assert "uncertainty_meaning" in files["json"].read_text()


def test_warm_up_leaves_the_model_unchanged():
    """The one-off warm-up pass changes no weight and leaves no gradient behind."""
    from earmark.models import from_module, warm_up

    net = from_module(torch.nn.Sequential(torch.nn.Linear(64, 3)), sample_rate=8000, num_samples=64,
                      labels=("a", "b", "c"))
    before = [p.detach().clone() for p in net.parameters()]
    assert warm_up(net) is net
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(p.grad is None or not p.grad.any() for p in net.parameters())


def test_explain_accepts_numpy_arrays_and_array_likes(linear_model):
    """A NumPy array (any float dtype) or a plain list gives the same explanation as the tensor."""
    import numpy as np

    x = torch.randn(L, generator=torch.Generator().manual_seed(1))
    t = get_transform("time", 8000)
    ref = explain(linear_model, x, t, 0, method="ig", n_steps=8)
    for given in (x.numpy(), x.numpy().astype(np.float64), x.tolist()):
        e = explain(linear_model, given, t, 0, method="ig", n_steps=8)
        torch.testing.assert_close(e.saliency, ref.saliency)
        torch.testing.assert_close(e.uncertainty, ref.uncertainty)


def test_declared_defaults_agree_with_the_signatures():
    """Every explainer function and transform class defaults its hyperparameters to the declared values
    (the Param declaration is the source; a signature that repeats a default must agree with it)."""
    import inspect

    from earmark.explainers import EXPLAINERS
    from earmark.transforms import TRANSFORMS

    for spec in EXPLAINERS:
        sig = inspect.signature(spec.fn).parameters
        assert sig["progress"].default is None, f"{spec.name}: progress must be optional"
        if ":" in spec.name:   # a library family ("captum:DeepLift"): one module, explain_<method> functions
            assert spec.fn.__name__.startswith("explain_"), spec.fn.__name__
        else:
            assert spec.fn.__name__ == f"explain_{spec.name}", spec.fn.__name__
        for p in spec.params:
            if p.name in sig:  # WAM-IG forwards **settings to IG, which declares them
                assert sig[p.name].default == p.default, (spec.name, p.name)
            else:
                assert any(v.kind == v.VAR_KEYWORD for v in sig.values()), (spec.name, p.name)
    for cls in TRANSFORMS:
        sig = inspect.signature(cls.__init__).parameters
        assert {p.name: sig[p.name].default for p in cls.params} == {p.name: p.default for p in cls.params}


def test_readouts_come_from_one_table(linear_model):
    """Probe.read and every ``readout`` option use :data:`earmark.probe.READOUTS`; nothing else is accepted."""
    from earmark.probe import READOUTS

    x = torch.randn(L, generator=torch.Generator().manual_seed(2))
    probe = Probe(linear_model, get_transform("time", 8000), x, target=1)
    waves = torch.randn(3, L, generator=torch.Generator().manual_seed(3))
    logits = linear_model(waves)
    for name, fn in READOUTS.items():
        torch.testing.assert_close(probe.read(waves, name), fn(logits, 1, False))
    torch.testing.assert_close(probe.read(waves, "prob"), logits.softmax(-1)[:, 1])
    torch.testing.assert_close(READOUTS["prob"](logits, 1, True), logits[:, 1].sigmoid())       # multi-label
    torch.testing.assert_close(READOUTS["log_prob"](logits, 1, True), torch.nn.functional.logsigmoid(logits[:, 1]))
    with pytest.raises(ConfigError, match="Unknown readout"):
        probe.read(waves, "embed_cos")
