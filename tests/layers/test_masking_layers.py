"""Masking and Embedding beyond the layer table: masks produced and consumed, the embedding
scatter, and a mask flowing into an LSTM as Keras's padding does."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backend import get_backend
from engine.kernels.scatter import MAX_LEVELS, host_sum_rows
from engine.layers import registry
from engine.layers.base import CallContext


def _layer(config: dict, input_shape: tuple, dtype: str = "float64"):  # type: ignore[no-untyped-def]
    layer = registry.get(config["type"]).from_config({**config, "dtype": dtype})
    layer.build(input_shape, rng=np.random.default_rng(1))
    return layer


@pytest.mark.parametrize("mask_value", [0.0, -1.0])
def test_masking_zeroes_steps_passes_mask_and_gradient(mask_value: float) -> None:
    layer = _layer({"type": "Masking", "mask_value": mask_value}, (None, 4, 3))
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    x[0, 1] = mask_value
    x[1, 3] = mask_value
    x[1, 0, 0] = mask_value  # one feature equal to the mask value does not mask the step
    expected_mask = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(layer.output_mask(x, None), expected_mask)
    out, cache = layer.forward([], x, CallContext())
    np.testing.assert_array_equal(out, x * expected_mask[..., None])
    g = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(
        layer.backward([], cache, g, [], CallContext()), g * expected_mask[..., None]
    )


def test_embedding_mask_zero_and_no_input_gradient() -> None:
    layer = _layer(
        {"type": "Embedding", "input_dim": 5, "output_dim": 2, "mask_zero": True}, (None, 4)
    )
    ids = np.array([[1, 0, 3, 0], [4, 4, 0, 2]], dtype=np.int32)
    np.testing.assert_array_equal(layer.output_mask(ids, None), ids != 0)
    out, cache = layer.forward([layer.weights[0].data], ids, CallContext())
    np.testing.assert_array_equal(out, layer.weights[0].numpy()[ids])
    grads = [np.empty((5, 2))]
    assert (
        layer.backward([layer.weights[0].data], cache, np.ones(out.shape), grads, CallContext())
        is None
    )
    np.testing.assert_array_equal(grads[0][:, 0], [3, 1, 1, 1, 2])
    plain = _layer({"type": "Embedding", "input_dim": 5, "output_dim": 2}, (None, 4))
    assert plain.output_mask(ids, None) is None


@pytest.mark.parametrize(
    "ids",
    [
        np.arange(0),
        np.array([3, 3, 3]),
        np.random.default_rng(0).integers(0, 50, 400),
        np.where(np.random.default_rng(1).random(500) < 0.6, 0, 7),  # padding-heavy
        np.minimum(np.random.default_rng(2).zipf(1.5, 600), 49),
        np.full(MAX_LEVELS + 1, 5),  # exactly one row past the levels
    ],
    ids=["empty", "one_id", "uniform", "padding", "zipf", "levels_plus_one"],
)
def test_host_sum_rows_matches_add_at(ids: np.ndarray) -> None:
    rows = np.random.default_rng(3).standard_normal((ids.size, 4))
    out = np.full((50, 4), np.nan)
    host_sum_rows(ids, rows, out)
    ref = np.zeros((50, 4))
    np.add.at(ref, ids, rows)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", ["fake", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_each_device_sums_rows_by_id_as_add_at(device: str) -> None:
    ids = np.minimum(np.random.default_rng(2).zipf(1.5, 600), 49)
    rows = np.random.default_rng(3).standard_normal((ids.size, 4)).astype(np.float32)
    ref = np.zeros((50, 4), dtype=np.float32)
    np.add.at(ref, ids, rows)
    on = get_backend(device)
    out = on.asarray(np.full((50, 4), np.nan, dtype=np.float32))
    on.sum_rows(on.asarray(ids), on.asarray(rows), out)
    np.testing.assert_allclose(on.to_host(out), ref, rtol=1e-5, atol=1e-5)


def _masked_lstm(front: dict, x: np.ndarray, front_shape: tuple) -> np.ndarray:
    first = _layer(front, front_shape, "float32")
    lstm = _layer({"type": "LSTM", "units": 3}, (None, x.shape[1], 2), "float32")
    params = [w.data for w in first.weights]
    hidden, _ = first.forward(params, x, CallContext())
    mask = first.output_mask(x, None)
    out, _ = lstm.forward([w.data for w in lstm.weights], hidden, CallContext(mask=mask))
    return out


def test_padding_masked_by_embedding_is_ignored_by_lstm() -> None:
    front = {"type": "Embedding", "input_dim": 9, "output_dim": 2, "mask_zero": True}
    padded = np.array([[5, 2, 7, 0, 0]], dtype=np.int32)
    np.testing.assert_allclose(
        _masked_lstm(front, padded, (None, 5)),
        _masked_lstm(front, padded[:, :3], (None, 3)),
        rtol=1e-6,
    )


def test_padding_masked_by_masking_is_ignored_by_lstm() -> None:
    x = np.random.default_rng(4).standard_normal((1, 6, 2)).astype(np.float32)
    x[:, 4:] = 0.0
    front = {"type": "Masking"}
    np.testing.assert_allclose(
        _masked_lstm(front, x, (None, 6, 2)), _masked_lstm(front, x[:, :4], (None, 4, 2)), rtol=1e-6
    )


@pytest.mark.parametrize("bad", [-1, 5])
def test_embedding_rejects_ids_out_of_range(bad: int) -> None:
    layer = _layer({"type": "Embedding", "input_dim": 5, "output_dim": 2}, (None, 3))
    ids = np.array([[0, bad, 1]], dtype=np.int32)
    with pytest.raises(ValueError, match=f"got id {bad}; ids must be in \\[0, input_dim=5\\)"):
        layer.forward([layer.weights[0].data], ids, CallContext())
