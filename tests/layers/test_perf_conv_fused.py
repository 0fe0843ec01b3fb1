"""The fast paths of W3's layers against their composite versions.

Conv2D's in-place bias + ReLU epilogue and per-shard activation gradient, the two-thread batch
shards of the conv kernels, and max pooling's two-offset gradient routing must give what the
plain composition gives: the same numbers (bit for bit where the order of operations is the
same), gradients that match central finite differences in float64, and ties sent to the first
maximum.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import engine.kernels.conv as conv_kernels
from engine import activations
from engine.kernels.conv import batch_shards, conv_backward, conv_forward
from engine.kernels.pool import pool_backward, pool_forward
from engine.layers.base import CallContext
from engine.layers.conv import Conv1D, Conv2D, in_place_activation
from tests.layers.harness import numeric_grad

# (batch, spatial, cin, kernel, cout, padding, groups)
CONV_ROWS = [
    (6, (12, 12), 1, (3, 3), 8, "valid", 1),
    (5, (9, 9), 4, (3, 3), 6, "same", 1),
    (4, (10, 10), 4, (3, 3), 4, "valid", 2),
    (7, (15,), 3, (3,), 5, "same", 1),
]


@pytest.fixture
def always_shard() -> Iterator[None]:
    """Split every CPU call into two batch shards, however small."""
    old = conv_kernels.SHARD_MIN_MACS
    conv_kernels.SHARD_MIN_MACS = 0
    yield
    conv_kernels.SHARD_MIN_MACS = old


def _relu_in_place(z: np.ndarray) -> None:
    np.maximum(z, 0, out=z)


def _case(row: tuple, dtype: type, seed: int = 0) -> tuple[Any, ...]:
    n, spatial, cin, kernel, cout, _, groups = row
    rng = np.random.default_rng(seed)
    x: Any = rng.standard_normal((n, *spatial, cin)).astype(dtype)
    w: Any = rng.standard_normal((*kernel, cin // groups, cout)).astype(dtype)
    b: Any = rng.standard_normal(cout).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("row", CONV_ROWS)
@pytest.mark.parametrize("sharded", [False, True])
def test_fused_relu_equals_composite(
    row: tuple, sharded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conv_kernels, "SHARD_MIN_MACS", 0 if sharded else 1 << 62)
    x, w, b = _case(row, np.float32)
    padding, groups = row[5], row[6]
    z, plain_cache = conv_forward(x, w, b, 1, padding, 1, groups)
    relu = activations.get("relu")
    y_plain = relu(z)
    y, cache = conv_forward(x, w, b, 1, padding, 1, groups, _relu_in_place)
    np.testing.assert_array_equal(y, y_plain)
    assert len(cache.shards) == (2 if sharded else 1)

    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    want = conv_backward(plain_cache, relu.grad(z, y_plain, dy))
    got = conv_backward(cache, dy, prologue=lambda s, d: relu.grad(y[s], y[s], d))
    for g, expect in zip(got, want, strict=True):
        assert g is not None and expect is not None and g.dtype == np.float32
        np.testing.assert_array_equal(g, expect)


@pytest.mark.parametrize("row", CONV_ROWS)
def test_sharded_kernels_match_one_shard_and_are_deterministic(
    row: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, w, b = _case(row, np.float32)
    padding, groups = row[5], row[6]
    results = {}
    for label, limit in (("one", 1 << 62), ("two", 0), ("two again", 0)):
        monkeypatch.setattr(conv_kernels, "SHARD_MIN_MACS", limit)
        y, cache = conv_forward(x, w, b, 1, padding, 1, groups)
        dy = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
        results[label] = (y, *conv_backward(cache, dy))
    for one, two, again in zip(results["one"], results["two"], results["two again"], strict=True):
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(two, again)


@pytest.mark.usefixtures("always_shard")
@pytest.mark.parametrize("row", CONV_ROWS[:3])
def test_sharded_backward_matches_finite_differences(row: tuple) -> None:
    x, w, b = _case(row, np.float64, seed=2)
    padding, groups = row[5], row[6]
    shape = conv_forward(x, w, b, 1, padding, 1, groups)[0].shape
    proj = np.random.default_rng(3).standard_normal(shape)

    def loss() -> float:
        y, _ = conv_forward(x, w, b, 1, padding, 1, groups, _relu_in_place)
        return float((y * proj).sum())

    y, cache = conv_forward(x, w, b, 1, padding, 1, groups, _relu_in_place)
    assert len(cache.shards) == 2
    dx, dw, db = conv_backward(cache, proj, prologue=lambda s, d: d * (y[s] > 0))
    assert dx is not None and db is not None
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("spec", "fused"),
    [
        ("relu", True),
        ({"type": "relu"}, True),
        ({"type": "relu", "negative_slope": 0.0, "threshold": 0.0}, True),
        ({"type": "relu", "negative_slope": 0.1}, False),
        ({"type": "relu", "max_value": 6.0}, False),
        ({"type": "relu", "threshold": 0.5}, False),
        ("linear", False),
        ("tanh", False),
    ],
)
def test_in_place_activation_only_for_plain_relu(spec: object, fused: bool) -> None:
    assert (in_place_activation(activations.get(spec)) is not None) is fused  # type: ignore[arg-type]


# (layer, input shape): fused ReLU, then activations that take the generic path
LAYER_ROWS = [
    (Conv2D(6, 3, activation="relu"), (6, 10, 10, 2)),
    (Conv2D(4, 3, padding="same", activation={"type": "relu", "max_value": 1.0}), (6, 7, 7, 3)),
    (Conv1D(5, 3, activation="sigmoid"), (6, 11, 2)),
]


@pytest.mark.usefixtures("always_shard")
@pytest.mark.parametrize(("layer", "shape"), LAYER_ROWS)
def test_conv_layer_matches_composite_and_finite_differences(
    layer: Conv2D, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    params = [rng.standard_normal(s.shape) for s in layer.weight_specs((None, *shape[1:]))]
    ctx = CallContext()
    y, cache = layer.forward(params, x, ctx)
    c = layer.config
    z, _ = conv_forward(x, params[0], params[1], 1, c.padding)
    np.testing.assert_allclose(y, layer.activation(z), rtol=1e-12, atol=1e-12)
    proj = rng.standard_normal(y.shape)
    grads: list[Any] = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, proj, grads, ctx)
    assert dx is not None

    def loss() -> float:
        return float((layer.forward(params, x, ctx)[0] * proj).sum())

    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, params, strict=True):
        np.testing.assert_allclose(g, numeric_grad(loss, p), rtol=1e-5, atol=1e-6)


def test_batch_shards_split_only_big_cpu_calls() -> None:
    x = np.zeros((128, 4), np.float32)
    assert batch_shards(x, 1 << 30) == [slice(0, 64), slice(64, 128)]
    assert batch_shards(x, 10) == [slice(0, 128)]
    assert batch_shards(x[:1], 1 << 30) == [slice(0, 1)]


# (spatial, pool): disjoint windows of two and three offsets per axis, tiled or not
POOL_ROWS = [((6, 8), (2, 2)), ((7, 9), (2, 3)), ((9, 6), (3, 2)), ((5,), (2,))]


@pytest.mark.parametrize(("spatial", "pool"), POOL_ROWS)
def test_max_pool_gradient_goes_to_first_of_tied_maxima(
    spatial: tuple[int, ...], pool: tuple[int, ...]
) -> None:
    x = np.ones((2, *spatial, 3), np.float32)
    y, cache = pool_forward(x, pool, None, "valid", "max")
    dx = pool_backward(cache, np.full(y.shape, 2.0, np.float32))
    expect = np.zeros_like(x)
    starts = tuple(slice(0, o * p, p) for o, p in zip(y.shape[1:-1], pool, strict=True))
    expect[(slice(None), *starts, slice(None))] = 2.0
    np.testing.assert_array_equal(dx, expect)


@pytest.mark.parametrize(("spatial", "pool"), POOL_ROWS)
def test_max_pool_gradient_matches_argmax_scatter(
    spatial: tuple[int, ...], pool: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(6)
    # few distinct values, so windows have ties and distinct maxima alike
    x = rng.integers(0, 4, (3, *spatial, 2)).astype(np.float32)
    y, cache = pool_forward(x, pool, None, "valid", "max")
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = pool_backward(cache, g)
    expect = np.zeros_like(x)
    for index in np.ndindex(*y.shape):
        n, *out, ch = index
        window = tuple(slice(o * p, o * p + p) for o, p in zip(out, pool, strict=True))
        block = x[(n, *window, ch)]
        # PyTorch's rule: of tied maxima the first in C order (np.argmax's) wins
        at = np.unravel_index(int(np.argmax(block)), block.shape)
        pick = [w.start + a for w, a in zip(window, at, strict=True)]
        expect[(n, *pick, ch)] += g[index]
    np.testing.assert_array_equal(dx, expect)


# (spatial, pool, strides, padding): tiled, untiled, overlapping and padded windows
SHARD_POOL_ROWS = [
    ((8, 8), (2, 2), None, "valid"),
    ((9, 7), (2, 2), None, "valid"),
    ((7, 7), (3, 3), (1, 1), "valid"),
    ((7, 5), (3, 2), (2, 2), "same"),
    ((9,), (3,), (2,), "same"),
]


@pytest.mark.parametrize(("spatial", "pool", "strides", "padding"), SHARD_POOL_ROWS)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_sharded_pooling_is_bit_identical_to_one_shard(
    spatial: tuple[int, ...],
    pool: tuple[int, ...],
    strides: tuple[int, ...] | None,
    padding: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (5, *spatial, 3)).astype(np.float32)
    results = []
    for limit in (1 << 62, 0):
        monkeypatch.setattr(conv_kernels, "SHARD_MIN_MACS", limit)
        y, cache = pool_forward(x, pool, strides, padding, mode)
        assert len(cache.shards) == (1 if limit else 2)
        g = np.sin(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
        results.append((y, pool_backward(cache, g)))
    for one, two in zip(*results, strict=True):
        assert one.shape == two.shape and two.dtype == np.float32
        np.testing.assert_array_equal(two, one)


@pytest.mark.usefixtures("always_shard")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sharded_conv_still_runs_in_a_forked_child() -> None:
    x, w, b = _case(CONV_ROWS[0], np.float32)
    want, _ = conv_forward(x, w, b)  # starts the helper thread, which a child does not inherit
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if np.array_equal(conv_forward(x, w, b)[0], want) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0
