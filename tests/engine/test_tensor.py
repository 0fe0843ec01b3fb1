"""Tensors as in TensorFlow: dtypes, no silent float64, immutability, strings, repr, indexing,
operators, Variables, creation and seeded random tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import engine as en


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (1.5, en.float32),
        ([1, 2], en.int32),
        (True, en.bool),
        ("text", en.string),
        (np.zeros(2), en.float64),
        (np.zeros(2, np.float32), en.float32),
        (np.zeros(2, np.int64), en.int64),
    ],
)
def test_default_dtypes(value: Any, dtype: en.DType) -> None:
    assert en.constant(value).dtype == dtype


@pytest.mark.parametrize(
    "expr",
    [
        lambda x: x + 1.5,
        lambda x: 2.0 * x,
        lambda x: x / 3,
        lambda x: x + np.ones(3),  # a float64 host array takes the tensor's dtype
        lambda x: np.ones(3) - x,
        lambda x: x**2,
        lambda x: en.reduce_mean(x),
        lambda x: en.sqrt(x),
        lambda x: en.nn.softmax(x),
    ],
)
def test_float32_in_float32_out(expr: Callable[[Any], Any]) -> None:
    out = expr(en.constant([1.0, 2.0, 3.0]))
    assert isinstance(out, en.Tensor)
    assert out.dtype == en.float32
    assert out.data.dtype == np.float32


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (lambda: en.constant([1.0]) + en.constant([1]), "different dtypes"),
        (lambda: en.constant([1]) + 0.5, "float value"),
        (lambda: en.constant(["a"]) + en.constant(["b"]), "string"),
        (lambda: en.constant(["a"]) * 2, "float value|string"),
        (lambda: en.exp(en.constant([1])), "floating"),
        (lambda: en.cast(en.constant(["a"]), en.float32), "cast"),
        (lambda: en.matmul(en.constant([1.0]), en.constant([1.0])), "rank 2"),
    ],
)
def test_type_errors_are_clear(expr: Callable[[], Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        expr()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5, "Tensor(5, shape=(), dtype=int32)"),
        ([1.0, 2.5], "Tensor([1.  2.5], shape=(2,), dtype=float32)"),
        ("hi", "Tensor(b'hi', shape=(), dtype=string)"),
        ([True, False], "Tensor([ True False], shape=(2,), dtype=bool)"),
    ],
)
def test_repr(value: Any, text: str) -> None:
    assert repr(en.constant(value)) == text


def test_strings_compare_but_refuse_arithmetic() -> None:
    s = en.constant(["a", "b"])
    assert (s == "a").numpy().tolist() == [True, False]
    with pytest.raises(TypeError, match="string"):
        en.reduce_sum(s)


def test_immutable_even_when_derived_from_a_variable() -> None:
    v = en.Variable([[1.0, 2.0], [3.0, 4.0]])
    views = [en.reshape(v, (4,)), v[0], en.transpose(v), en.squeeze(en.expand_dims(v, 0))]
    before = [t.numpy() for t in views]
    v.assign([[0.0, 0.0], [0.0, 0.0]])
    for t, b in zip(views, before, strict=True):
        np.testing.assert_array_equal(t.numpy(), b)
    with pytest.raises(TypeError, match="immutable"):
        views[0][0] = 1.0


def test_variable_updates_and_shape_check() -> None:
    v = en.Variable([1.0, 2.0], name="v")
    v.assign_add([1.0, 1.0])
    v.assign_sub(en.constant([0.5, 0.5]))
    assert v.numpy().tolist() == [1.5, 2.5]
    assert v.dtype == en.float32
    with pytest.raises(ValueError, match="cannot assign shape"):
        v.assign([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda t: t[1], [4, 5, 6]),
        (lambda t: t[:, 1:], [[2, 3], [5, 6]]),
        (lambda t: t[..., -1], [3, 6]),
        (lambda t: t[t > 3], [4, 5, 6]),
        (lambda t: t[en.constant([1, 0])], [[4, 5, 6], [1, 2, 3]]),
        (lambda t: t // 2, [[0, 1, 1], [2, 2, 3]]),
        (lambda t: t % 4, [[1, 2, 3], [0, 1, 2]]),
        (lambda t: -t, [[-1, -2, -3], [-4, -5, -6]]),
        (lambda t: 7 // t, [[7, 3, 2], [1, 1, 1]]),
        (lambda t: 7 % t, [[0, 1, 1], [3, 2, 1]]),
        (lambda t: 2**t, [[2, 4, 8], [16, 32, 64]]),
        (lambda t: (t > 2) ^ (t > 4), [[False, False, True], [True, False, False]]),
        (lambda t: abs(-t), [[1, 2, 3], [4, 5, 6]]),
        (lambda t: (t > 2) & (t < 5), [[False, False, True], [True, False, False]]),
        (lambda t: (t < 2) | ~(t < 6), [[True, False, False], [False, False, True]]),
        (lambda t: en.argmax(t, axis=1), [2, 2]),
        (lambda t: en.shape(t), [2, 3]),
        (lambda t: en.reduce_mean(t, axis=1), [2, 5]),
        (lambda t: en.reduce_max(t, axis=0), [4, 5, 6]),
        (lambda t: en.concat([t, t], axis=0).shape, (4, 3)),
        (lambda t: en.stack([t, t], axis=2).shape, (2, 3, 2)),
        (lambda t: len(en.split(t, 3, axis=1)), 3),
        (lambda t: en.where(t > 4).numpy().tolist(), [[1, 1], [1, 2]]),
        (lambda t: en.cast(t, en.float32) / 2, [[0.5, 1.0, 1.5], [2.0, 2.5, 3.0]]),
        (lambda t: en.gather(t, [1, 1]), [[4, 5, 6], [4, 5, 6]]),
        (lambda t: en.pad(t, [[0, 1], [0, 0]]), [[1, 2, 3], [4, 5, 6], [0, 0, 0]]),
        (lambda t: [list(row.numpy()) for row in t], [[1, 2, 3], [4, 5, 6]]),
    ],
)
def test_indexing_operators_and_ops(expr: Callable[[Any], Any], expected: Any) -> None:
    out = expr(en.constant([[1, 2, 3], [4, 5, 6]]))
    got = out.numpy().tolist() if isinstance(out, en.Tensor) else out
    assert got == expected


@pytest.mark.parametrize(
    ("tensor", "shape", "dtype", "values"),
    [
        (lambda: en.zeros((2, 1)), (2, 1), en.float32, [[0.0], [0.0]]),
        (lambda: en.ones((2,), en.int32), (2,), en.int32, [1, 1]),
        (lambda: en.zeros_like(en.constant([1, 2])), (2,), en.int32, [0, 0]),
        (lambda: en.ones_like(en.constant([1.0])), (1,), en.float32, [1.0]),
        (lambda: en.fill((2,), 7), (2,), en.int32, [7, 7]),
        (lambda: en.range(3), (3,), en.int32, [0, 1, 2]),
        (lambda: en.range(1, 2, 0.5), (2,), en.float32, [1.0, 1.5]),
        (lambda: en.eye(2), (2, 2), en.float32, [[1.0, 0.0], [0.0, 1.0]]),
        (lambda: en.one_hot([2, 0], 3), (2, 3), en.float32, [[0, 0, 1], [1, 0, 0]]),
    ],
)
def test_creation(
    tensor: Callable[[], Any], shape: tuple[int, ...], dtype: Any, values: Any
) -> None:
    t = tensor()
    assert t.shape == shape
    assert t.dtype == dtype
    assert t.numpy().tolist() == values


@pytest.mark.parametrize("draw", [en.random.normal, en.random.uniform])
def test_seeded_random_is_reproducible(draw: Callable[..., Any]) -> None:
    a, b = draw((3, 4), seed=3), draw((3, 4), seed=3)
    assert a.dtype == en.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), draw((3, 4), seed=4).numpy())
    en.random.set_seed(11)
    c = draw((3, 4))
    en.random.set_seed(11)
    np.testing.assert_array_equal(c.numpy(), draw((3, 4)).numpy())


def test_uniform_range_and_int_dtype() -> None:
    u = en.random.uniform((1000,), minval=-2.0, maxval=3.0, seed=0).numpy()
    assert u.min() >= -2.0 and u.max() < 3.0
    k = en.random.uniform((50,), maxval=5, dtype=en.int32, seed=0)
    assert k.dtype == en.int32 and set(k.numpy().tolist()) <= set(range(5))


def test_math_namespace_aliases() -> None:
    assert en.math.reduce_sum(en.constant([1, 2])).numpy() == 3
    assert en.math.softplus is en.nn.softplus
