"""Max pooling's winner rule against PyTorch's `max_pool{n}d(return_indices=True)`.

PyTorch scans a window in C order and lets a later element win when it is greater or NaN: the
first of tied maxima and the last NaN win. Both of our paths (the compiled 2-d kernel and the
NumPy passes) must give the winner's exact bits (NaN payload, sign of zero) and send each
gradient to that index only, +0 elsewhere, even an infinite or NaN gradient; a -0.0 gradient
arrives as +0.0, as PyTorch's sum into zeros gives. With `same` padding the padding never wins:
a window whose real elements are all -inf sends its gradient to its first real element, where
PyTorch's kernel, which skips the padding, puts its index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine import native
from engine.conv_geometry import as_tuple, pad_amounts
from engine.kernels.pool import pool_backward, pool_forward

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

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

# (id, shape, pool, strides) under `same` padding, each with leading padding on some axis
SAME_GEOMETRIES = [
    ("2d-3x3", (7, 7), (3, 3), (3, 3)),
    ("2d-5x5-two-before", (6, 6), (5, 5), (5, 5)),
    ("2d-4x4-one-axis", (8, 11), (4, 4), (4, 4)),
    ("2d-overlap", (6, 7), (4, 4), (1, 1)),
    ("2d-overlap-strided", (9, 9), (3, 3), (2, 2)),
    ("1d", (10,), (5,), (2,)),
    ("3d", (4, 4, 5), (3, 3, 3), (3, 3, 3)),
]


def _paths(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiled:
        monkeypatch.setattr(native._ext, "pool", None)


def _torch_pool(
    x: np.ndarray, dy: np.ndarray, pool: Any, strides: Any, padding: str = "valid"
) -> tuple[Any, Any]:
    """PyTorch's output and input gradient, channels last. PyTorch pads both sides alike, so
    `same`'s extra element after is -inf added before: it comes after every window's first
    real element, so it can neither win nor hide a winner."""
    nd = x.ndim - 2
    tx = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
    shape = zip(
        x.shape[1:-1], as_tuple(pool, nd, "pool"), as_tuple(strides, nd, "strides"), strict=True
    )
    pads = [pad_amounts(n, k, s, padding) for n, k, s in shape]
    extra = [value for lo, hi in reversed(pads) for value in (0, hi - lo)]
    padded = torch.nn.functional.pad(tx, extra, value=-math.inf)
    pool_nd = getattr(torch.nn.functional, f"max_pool{nd}d")
    ty = pool_nd(padded, pool, strides, padding=[lo for lo, _ in pads])
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
    for dy_value in (3.0, np.inf, np.nan, -2.0, -0.0):
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


def _matches_pytorch(
    x: np.ndarray,
    rng: np.random.Generator,
    pool: tuple[int, ...],
    strides: tuple[int, ...],
    padding: str,
    special: Callable[[np.ndarray], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of x, and its backward for a gradient of small integers that `special`
    edits in place, against PyTorch: the same bits, except where overlapping windows add up
    their gradients (in another order than PyTorch's: the same values). Returns (dx, dy)."""
    y, cache = pool_forward(x, pool, strides, padding, "max")
    dy = rng.integers(-3, 4, y.shape).astype(np.float32)
    special(dy)
    with np.errstate(invalid="ignore"):
        dx = pool_backward(cache, dy)
        ty, tdx = _torch_pool(x, dy, pool, strides, padding)
    _assert_same_bits(y, ty)
    if all(s >= k for k, s in zip(pool, strides, strict=True)):
        _assert_same_bits(dx, tdx)
    else:
        np.testing.assert_array_equal(dx, tdx)
    return dx, dy


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

    def gradient(dy: np.ndarray) -> None:
        dy.reshape(-1)[:3] = [np.inf, -np.inf, np.nan]

    _matches_pytorch(x, rng, pool, strides, "valid", gradient)


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


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize(
    ("name", "spatial", "pool", "strides"), SAME_GEOMETRIES, ids=[g[0] for g in SAME_GEOMETRIES]
)
def test_same_padding_never_wins_over_an_all_minus_inf_window(
    name: str,
    spatial: tuple[int, ...],
    pool: tuple[int, ...],
    strides: tuple[int, ...],
    compiled: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _paths(compiled, monkeypatch)
    x, rng = _special_inputs((2, *spatial, 3), 5 + len(name))
    for axis, k in enumerate(pool, start=1):  # the first windows hold only -inf and padding
        np.moveaxis(x, axis, 0)[:k] = -INF

    def gradient(dy: np.ndarray) -> None:
        dy[dy == 0] = -0.0

    dx, dy = _matches_pytorch(x, rng, pool, strides, "same", gradient)
    assert math.isclose(float(dx.sum()), float(dy.sum()))  # nothing lost to the padding


@pytest.mark.parametrize(("pool", "strides"), [(2, 2), (3, 1)], ids=["disjoint", "overlapping"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_average_pooling_gives_plus_zero_for_a_minus_zero_gradient(
    pool: int, strides: int, padding: str
) -> None:
    """PyTorch and Keras on JAX sum average pooling's gradients into zeros: -0.0 gives +0.0."""
    x = np.arange(2 * 6 * 6 * 2, dtype=np.float32).reshape(2, 6, 6, 2)
    y, cache = pool_forward(x, pool, strides, padding, "avg")
    dx = pool_backward(cache, np.full(y.shape, -0.0, dtype=np.float32))
    _assert_same_bits(dx, np.zeros_like(x))
