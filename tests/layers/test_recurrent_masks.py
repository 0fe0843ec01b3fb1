"""Masks and stateful carrying in SimpleRNN, LSTM and GRU (the layer table passes no masks)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import CallContext
from tests.layers.harness import numeric_grad

KINDS = [
    {"type": "SimpleRNN", "units": 3},
    {"type": "LSTM", "units": 3},
    {"type": "GRU", "units": 3},
    {"type": "GRU", "units": 3, "reset_after": False},
]


def _layer(config: dict, dtype: str = "float64", **extra: object):  # type: ignore[no-untyped-def]
    layer = registry.get(config["type"]).from_config({**config, **extra, "dtype": dtype})
    layer.build((None, 5, 2), rng=np.random.default_rng(1))
    return layer


@pytest.mark.parametrize("config", KINDS, ids=lambda c: f"{c['type']}{c.get('reset_after', '')}")
def test_right_padding_equals_the_shorter_sequence(config: dict) -> None:
    layer = _layer(config)
    params = [w.data for w in layer.weights]
    x = np.random.default_rng(0).standard_normal((2, 5, 2))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    out, _ = layer.forward(params, x, CallContext(mask=mask))
    short, _ = layer.forward(params, x[:1, :3], CallContext())
    full, _ = layer.forward(params, x[1:], CallContext())
    np.testing.assert_allclose(out[0], short[0], rtol=1e-12)
    np.testing.assert_allclose(out[1], full[0], rtol=1e-12)


@pytest.mark.parametrize("config", KINDS, ids=lambda c: f"{c['type']}{c.get('reset_after', '')}")
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_steps_repeat_the_output_and_gradients_check(
    config: dict, go_backwards: bool
) -> None:
    layer = _layer(config, return_sequences=True, go_backwards=go_backwards)
    params = [w.data for w in layer.weights]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 2))
    mask = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 0]], dtype=bool)
    ctx = CallContext(mask=mask)
    out, cache = layer.forward(params, x, ctx)
    steps = mask[:, ::-1] if go_backwards else mask
    for b, t in zip(*np.nonzero(~steps[:, 1:]), strict=True):
        np.testing.assert_array_equal(out[b, t + 1], out[b, t])
    assert layer.output_mask(x, mask) is mask

    proj = rng.standard_normal(out.shape)
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, proj, grads, ctx)

    def loss() -> float:
        return float((layer.forward(params, x, CallContext(mask=mask))[0] * proj).sum())

    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_allclose(g, numeric_grad(loss, p), rtol=1e-5, atol=1e-7)


def test_output_mask_only_with_sequences() -> None:
    mask = np.ones((2, 5), dtype=bool)
    assert _layer(KINDS[1]).output_mask(None, mask) is None


@pytest.mark.parametrize("config", KINDS[:3], ids=lambda c: c["type"])
def test_stateful_carries_states_until_reset(config: dict) -> None:
    layer = _layer(config, dtype="float32", stateful=True, return_sequences=True)
    params = [w.data for w in layer.weights]
    x = np.random.default_rng(3).standard_normal((2, 6, 2)).astype(np.float32)
    whole, _ = _layer(config, dtype="float32", return_sequences=True).forward(
        params, x, CallContext()
    )
    first, _ = layer.forward(params, x[:, :3], CallContext())
    second, _ = layer.forward(params, x[:, 3:], CallContext())
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="batch of 2; got a batch of 1"):
        layer.forward(params, x[:1, :3], CallContext())
    layer.reset_states()
    again, _ = layer.forward(params, x[:, :3], CallContext())
    np.testing.assert_array_equal(again, first)


def test_unit_forget_bias_and_bias_layouts() -> None:
    lstm = _layer({"type": "LSTM", "units": 3, "bias_initializer": "zeros"})
    np.testing.assert_array_equal(lstm.weights[2].numpy(), np.r_[[0.0] * 3, [1.0] * 3, [0.0] * 6])
    plain = _layer({"type": "LSTM", "units": 3, "unit_forget_bias": False})
    assert not plain.weights[2].numpy().any()
    assert _layer({"type": "GRU", "units": 3}).weights[2].shape == (2, 9)
    assert _layer({"type": "GRU", "units": 3, "reset_after": False}).weights[2].shape == (9,)
