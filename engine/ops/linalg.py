"""Matrix multiplication, batched over leading axes that broadcast, with its gradient."""

from __future__ import annotations

from typing import Any

from engine.autodiff import record
from engine.ops._core import Array, numeric, pair
from engine.tensor import Tensor


def _swap(xp: Any, a: Array) -> Array:
    return xp.swapaxes(a, -1, -2)


def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    """`a @ b` over the last two axes; leading axes broadcast. (2, 3) @ (3, 4) -> (2, 4).

    Both operands need rank 2 or more, as in TensorFlow (`matmul([[1, 2]], [[2], [3]])`).
    """
    ta, tb = pair(a, b, "matmul")
    numeric(ta, "matmul")
    if ta.ndim < 2 or tb.ndim < 2:
        raise ValueError(
            f"matmul needs tensors of rank 2 or more; got shapes {ta.shape} and {tb.shape}"
        )
    xp = ta.backend.xp
    x = _swap(xp, ta.data) if transpose_a else ta.data
    w = _swap(xp, tb.data) if transpose_b else tb.data
    if x.shape[-1] != w.shape[-2]:
        raise ValueError(f"matmul: inner dimensions differ: {x.shape} @ {w.shape}")
    y = Tensor(xp.matmul(x, w))

    def vjp(g: Array) -> tuple[Array, Array]:
        ga = xp.matmul(g, _swap(xp, w))
        gb = xp.matmul(_swap(xp, x), g)
        return (_swap(xp, ga) if transpose_a else ga, _swap(xp, gb) if transpose_b else gb)

    return record(y, (ta, tb), vjp)
