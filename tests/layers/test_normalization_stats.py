"""BatchNormalization's moving statistics, LayerNormalization against torch, and
Normalization's adapt: what the layer table cannot see."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import CallContext


def _layer(config: dict, input_shape: tuple, dtype: str = "float64"):  # type: ignore[no-untyped-def]
    layer = registry.get(config["type"]).from_config({**config, "dtype": dtype})
    layer.build(input_shape, rng=np.random.default_rng(1))
    return layer


def test_batch_norm_training_updates_moving_statistics_by_keras_formula() -> None:
    layer = _layer({"type": "BatchNormalization", "momentum": 0.9}, (None, 2, 3))
    params = [w.data for w in layer.weights]
    names = [w.name.split("/")[-1] for w in layer.weights]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    params[0][...] = [1.0, 2.0, 0.5]
    params[1][...] = [0.0, -1.0, 1.0]
    x = np.random.default_rng(0).standard_normal((4, 2, 3)) * 3 + 1
    out, _ = layer.forward(params, x, CallContext(training=True))
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(params[2], 0.0 * 0.9 + mean * 0.1)
    np.testing.assert_allclose(params[3], 1.0 * 0.9 + var * 0.1)
    expected = (x - mean) / np.sqrt(var + 1e-3) * params[0] + params[1]
    np.testing.assert_allclose(out, expected, rtol=1e-12)

    inference, _ = layer.forward(params, x, CallContext(training=False))
    expected = (x - params[2]) / np.sqrt(params[3] + 1e-3) * params[0] + params[1]
    np.testing.assert_allclose(inference, expected, rtol=1e-12)


def test_frozen_batch_norm_runs_in_inference_mode_and_keeps_statistics() -> None:
    layer = _layer({"type": "BatchNormalization", "trainable": False}, (None, 3))
    params = [w.data for w in layer.weights]
    x = np.random.default_rng(0).standard_normal((5, 3)) + 4
    out, _ = layer.forward(params, x, CallContext(training=True))
    np.testing.assert_array_equal(params[2], 0.0)
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(training: bool) -> None:
    torch = pytest.importorskip("torch")
    layer = _layer({"type": "BatchNormalization"}, (None, 4), "float32")
    rng = np.random.default_rng(2)
    params = [w.data.copy() for w in layer.weights]
    params[0][...] = rng.random(4) + 0.5
    params[1][...] = rng.standard_normal(4)
    params[2][...] = rng.standard_normal(4)
    params[3][...] = rng.random(4) + 0.5
    bn = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=0.01)
    with torch.no_grad():
        for target, p in zip(
            [bn.weight, bn.bias, bn.running_mean, bn.running_var], params, strict=True
        ):
            target.copy_(torch.from_numpy(p.copy()))
    bn.train(training)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    g = rng.standard_normal((6, 4)).astype(np.float32)
    ctx = CallContext(training=training)
    moving_var = params[3].copy()
    out, cache = layer.forward(params, x, ctx)
    grads = [np.empty_like(p) if i < 2 else None for i, p in enumerate(params)]
    dx = layer.backward(params, cache, g, grads, ctx)
    xt = torch.from_numpy(x).requires_grad_(True)
    ref = bn(xt)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[0], bn.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[1], bn.bias.grad.numpy(), rtol=1e-4, atol=1e-5)
    if training:  # torch's running_var uses the unbiased variance; Keras's the biased one
        np.testing.assert_allclose(params[2], bn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(params[3], moving_var * 0.99 + x.var(axis=0) * 0.01, rtol=1e-5)


def test_layer_norm_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    layer = _layer({"type": "LayerNormalization"}, (None, 3, 5), "float32")
    rng = np.random.default_rng(3)
    params = [rng.random(5).astype(np.float32) + 0.5, rng.standard_normal(5).astype(np.float32)]
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    g = rng.standard_normal((2, 3, 5)).astype(np.float32)
    out, cache = layer.forward(params, x, CallContext())
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, g, grads, CallContext())
    xt = torch.from_numpy(x).requires_grad_(True)
    w = torch.from_numpy(params[0]).requires_grad_(True)
    b = torch.from_numpy(params[1]).requires_grad_(True)
    ref = torch.nn.functional.layer_norm(xt, (5,), w, b, eps=1e-3)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[0], w.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[1], b.grad.numpy(), rtol=1e-4, atol=1e-5)


KERAS_ADAPT_DATA = np.array([[0.0, 7.0, 4.0], [2.0, 9.0, 6.0], [0.0, 7.0, 4.0], [2.0, 9.0, 6.0]])


@pytest.mark.parametrize(
    ("config", "x", "expected"),
    [
        # Keras's docstring examples: mean [1, 8, 5], variance [1, 1, 1]
        ({}, [[0.0, 7.0, 4.0]], [[-1.0, -1.0, -1.0]]),
        ({"invert": True}, [[1.0, 2.0, 3.0]], [[2.0, 10.0, 8.0]]),
        # one statistic over everything: mean 14/3
        ({"axis": None}, [[14 / 3, 14 / 3, 14 / 3]], [[0.0, 0.0, 0.0]]),
    ],
)
def test_normalization_adapt(config: dict, x: list, expected: list) -> None:
    layer = registry.get("Normalization").from_config({**config, "dtype": "float64"})
    assert not layer.is_adapted
    layer.adapt(KERAS_ADAPT_DATA)
    assert layer.is_adapted
    params = [w.data for w in layer.weights]
    out, _ = layer.forward(params, np.asarray(x), CallContext())
    np.testing.assert_allclose(out, expected, atol=1e-9)
    stats = {w.name.split("/")[-1]: w.numpy() for w in layer.weights}
    reduce = (0,) if config.get("axis", -1) is not None else (0, 1)
    np.testing.assert_allclose(stats["variance"], KERAS_ADAPT_DATA.var(axis=reduce))
    assert stats["count"] == (4 if reduce == (0,) else 12)


def test_normalization_given_statistics_and_floor() -> None:
    layer = _layer(
        {"type": "Normalization", "mean": [1.0, 0.0], "variance": [4.0, 0.0]}, (None, 3, 2)
    )
    assert layer.weights == []
    assert layer.is_adapted
    x = np.array([[[3.0, 1e-9], [1.0, -2e-9], [0.0, 0.0]]])
    out, std = layer.forward([], x, CallContext())
    np.testing.assert_allclose(out, [[[1.0, 0.01], [0.0, -0.02], [-0.5, 0.0]]])
    np.testing.assert_allclose(
        layer.backward([], std, np.ones_like(x), [], CallContext()),
        np.broadcast_to([0.5, 1e7], x.shape),
    )
    with pytest.raises(ValueError, match="nothing to adapt"):
        layer.adapt(x)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"mean": [1.0]}, "both `mean` and `variance`"),
        ({"mean": [1.0, 2.0], "variance": [1.0]}, "same shape"),
    ],
)
def test_normalization_rejects_half_given_statistics(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        registry.get("Normalization").from_config(config)
