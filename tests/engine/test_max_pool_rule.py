"""Max pooling's winner rule against PyTorch's `max_pool{n}d(return_indices=True)`.

PyTorch scans a window in C order and lets a later element win when it is greater or NaN: the
first of tied maxima and the last NaN win. Both of our paths (the compiled 2-d kernel and the
NumPy passes) must give the winner's exact bits (NaN payload, sign of zero) and send each
gradient to that index only, +0 elsewhere, even an infinite or NaN gradient. (A -0.0 gradient
keeps its sign at the winner, where PyTorch's sum into zeros gives +0: not tested here.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from engine import native
from engine.kernels.pool import pool_backward, pool_forward

torch = pytest.importorskip("torch")

NAN = np.float32(np.nan)
INF = np.float32(np.inf)
# a NaN of another payload and sign, so that taking the wrong NaN shows in the bits
OTHER_NAN = np.array([0xFFC00001], dtype=np.uint32).view(np.float32)[0]

# (id, one 2x2 window in C order)
WINDOWS = [
    ("ties-first-wins", [0.0, 1.0, 1.0, 0.0]),
    ("ties-down-the-column", [1.0, 0.0, 1.0, 0.0]),
    ("minus-zero-first", [-0.0, 0.0, 0.0, -0.0]),
    ("plus-zero-first", [0.0, -0.0, -0.0, 0.0]),
    ("nan-first", [NAN, 5.0, 7.0, 3.0]),
    ("nan-last", [1.0, 2.0, 3.0, NAN]),
    ("nan-then-bigger", [1.0, NAN, 9.0, 3.0]),
    ("two-nans-last-wins", [NAN, 1.0, OTHER_NAN, 2.0]),
    ("nans-in-both-rows", [NAN, OTHER_NAN, NAN, 0.0]),
    ("nan-and-inf", [INF, NAN, -INF, INF]),
    ("all-minus-inf", [-INF, -INF, -INF, -INF]),
    ("inf-ties", [-1.0, INF, INF, 2.0]),
]

# (id, shape without batch and channels, pool, strides): disjoint windows take the compiled
# kernel in 2-d, overlapping ones and 1-d/3-d the NumPy passes only
GEOMETRIES = [
    ("2d-tiled", (6, 8), (2, 2), (2, 2)),
    ("2d-remainder", (7, 9), (2, 2), (2, 2)),
    ("2d-3x3", (9, 6), (3, 3), (3, 3)),
    ("2d-gaps", (11, 13), (2, 3), (3, 4)),
    ("2d-4x4", (8, 9), (4, 4), (4, 4)),
    ("2d-overlap", (9, 9), (3, 3), (2, 2)),
    ("1d", (11,), (3,), (2,)),
    ("3d", (4, 5, 6), (2, 2, 3), (2, 2, 3)),
]


def _paths(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiled:
        monkeypatch.setattr(native._ext, "pool", None)


def _torch_pool(x: np.ndarray, dy: np.ndarray, pool: Any, strides: Any) -> tuple[Any, Any]:
    """PyTorch's output and input gradient, channels last."""
    nd = x.ndim - 2
    tx = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
    ty = getattr(torch.nn.functional, f"max_pool{nd}d")(tx, pool, strides)
    ty.backward(torch.tensor(np.moveaxis(dy, -1, 1).copy()))
    assert tx.grad is not None
    return np.moveaxis(ty.detach().numpy(), 1, -1), np.moveaxis(tx.grad.numpy(), 1, -1)


def _assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize(("name", "window"), WINDOWS, ids=[w[0] for w in WINDOWS])
def test_one_window_gives_pytorchs_value_and_index(
    name: str, window: list[float], compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _paths(compiled, monkeypatch)
    # the window twice: once on its own, once with a second channel of plain values
    x = np.array(window, dtype=np.float32).reshape(1, 2, 2, 1)
    x = np.concatenate([x, np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)], axis=-1)
    y, cache = pool_forward(x, 2, None, "valid", "max")
    for dy_value in (3.0, np.inf, np.nan, -2.0):
        dy = np.full(y.shape, dy_value, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            dx = pool_backward(cache, dy)
        ty, tdx = _torch_pool(x, dy, 2, 2)
        _assert_same_bits(y, ty)
        _assert_same_bits(dx, tdx)


def _special_inputs(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small integers (ties everywhere), NaNs of two kinds, infinities, zeros of both signs;
    a gradient of small integers with infinities and NaN."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, (6, flat.size // 8), replace=False)
    for where, value in zip(picks, (NAN, OTHER_NAN, INF, -INF, -0.0, 0.0), strict=True):
        flat[where] = value
    return x, rng


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize(
    ("name", "spatial", "pool", "strides"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES]
)
def test_specials_follow_pytorch(
    name: str,
    spatial: tuple[int, ...],
    pool: tuple[int, ...],
    strides: tuple[int, ...],
    compiled: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _paths(compiled, monkeypatch)
    x, rng = _special_inputs((3, *spatial, 5), 11 + len(name))
    y, cache = pool_forward(x, pool, strides, "valid", "max")
    dy = rng.integers(-3, 4, y.shape).astype(np.float32)
    dy.reshape(-1)[:3] = [np.inf, -np.inf, np.nan]
    with np.errstate(invalid="ignore"):
        dx = pool_backward(cache, dy)
        ty, tdx = _torch_pool(x, dy, pool, strides)
    _assert_same_bits(y, ty)
    if all(s >= k for k, s in zip(pool, strides, strict=True)):
        _assert_same_bits(dx, tdx)
    else:  # overlapping windows add up their gradients, in another order than PyTorch's
        np.testing.assert_array_equal(dx, tdx)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_float64_gradient_gives_the_inputs_dtype(
    padding: str, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _paths(compiled, monkeypatch)
    x = np.random.default_rng(0).standard_normal((2, 6, 7, 3)).astype(np.float32)
    y, cache = pool_forward(x, 2, None, padding, "max")
    dx = pool_backward(cache, np.ones(y.shape, dtype=np.float64))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert math.isclose(float(dx.sum()), y.size)
