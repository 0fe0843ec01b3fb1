"""Reductions with `axis` (None, int or tuple, negatives allowed) and `keepdims`, with gradients.

As in TensorFlow, integer sums stay in their dtype (NumPy would widen int32 to int64), integer
means truncate, and reduce_max's gradient is shared equally among tied maxima.
"""

from __future__ import annotations

import math
from typing import Any

from engine.autodiff import record
from engine.dtypes import as_dtype
from engine.ops._core import Array, axes_of, floating, numeric, tensor
from engine.ops.elementwise import sqrt
from engine.tensor import Tensor


def _setup(x: Any, axis: Any, op: str) -> tuple[Tensor, tuple[int, ...], Any]:
    t = tensor(x)
    kind = t.data.dtype.kind
    if kind == "O":
        numeric(t, op)
    if kind == "b":
        raise TypeError(f"{op} does not take bool tensors; use reduce_any / reduce_all")
    return t, axes_of(axis, t.ndim), t.backend.xp


def _expand(xp: Any, g: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
    """The reduced gradient with its reduced axes back as size 1, ready to broadcast."""
    return g if keepdims or not axes else xp.expand_dims(g, axes)


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    return math.prod(shape[a] for a in axes)


def reduce_sum(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum over `axis`. Example: reduce_sum([[1, 2], [3, 4]], axis=0) -> [4 6]."""
    t, axes, xp = _setup(input_tensor, axis, "reduce_sum")
    data = t.data
    y = Tensor(data.sum(axis=axes, keepdims=keepdims, dtype=data.dtype))
    return record(y, (t,), lambda g: (xp.broadcast_to(_expand(xp, g, axes, keepdims), data.shape),))


def reduce_mean(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over `axis` (integer tensors: the truncated integer mean, as in TensorFlow)."""
    t, axes, xp = _setup(input_tensor, axis, "reduce_mean")
    data = t.data
    n = _count(data.shape, axes)
    if data.dtype.kind == "f":
        y = Tensor(xp.mean(data, axis=axes, keepdims=keepdims))
    else:
        total = xp.sum(data, axis=axes, keepdims=keepdims, dtype="int64")
        y = Tensor(xp.trunc(total / max(n, 1)).astype(data.dtype))
    return record(
        y, (t,), lambda g: (xp.broadcast_to(_expand(xp, g, axes, keepdims) / n, data.shape),)
    )


def _extremum(name: str, reducer: str) -> Any:
    def op(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
        t, axes, xp = _setup(input_tensor, axis, name)
        data = t.data
        kept = getattr(xp, reducer)(data, axis=axes, keepdims=True)
        y = Tensor(kept if keepdims else xp.squeeze(kept, axis=axes))

        def vjp(g: Array) -> tuple[Array]:
            mask = data == kept
            share = mask.sum(axis=axes, keepdims=True)
            return (mask * (_expand(xp, g, axes, keepdims) / share),)

        return record(y, (t,), vjp)

    op.__name__ = name
    op.__doc__ = f"`{name}` over `axis`; the gradient is split equally among ties."
    return op


reduce_max = _extremum("reduce_max", "amax")
reduce_min = _extremum("reduce_min", "amin")


def reduce_prod(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Product over `axis`; the gradient is exact even where an element is zero."""
    t, axes, xp = _setup(input_tensor, axis, "reduce_prod")
    data = t.data
    y = Tensor(xp.prod(data, axis=axes, keepdims=keepdims, dtype=data.dtype))

    def vjp(g: Array) -> tuple[Array]:
        # product of all the other elements = exclusive cumprod from the left times the right
        rest = [a for a in range(data.ndim) if a not in axes]
        moved = xp.transpose(data, (*rest, *axes))
        flat = moved.reshape(*moved.shape[: len(rest)], -1)
        ones = xp.ones_like(flat[..., :1])
        left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
        right = xp.flip(
            xp.cumprod(xp.concatenate([ones, xp.flip(flat, axis=-1)[..., :-1]], axis=-1), -1),
            axis=-1,
        )
        others = (left * right).reshape(moved.shape)
        inverse = [0] * data.ndim
        for position, a in enumerate((*rest, *axes)):
            inverse[a] = position
        return (xp.transpose(others, inverse) * _expand(xp, g, axes, keepdims),)

    return record(y, (t,), vjp)


def reduce_variance(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population variance (divides by n) over `axis`, as tf.math.reduce_variance."""
    t, axes, xp = _setup(input_tensor, axis, "reduce_variance")
    floating(t, "reduce_variance")
    data = t.data
    n = _count(data.shape, axes)
    centered = data - xp.mean(data, axis=axes, keepdims=True)
    y = Tensor(xp.mean(centered * centered, axis=axes, keepdims=keepdims))
    return record(y, (t,), lambda g: (_expand(xp, g, axes, keepdims) * (2 / n) * centered,))


def reduce_std(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population standard deviation over `axis`."""
    return sqrt(reduce_variance(input_tensor, axis, keepdims))


def reduce_logsumexp(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over `axis`, shifted by the maximum so it never overflows."""
    t, axes, xp = _setup(input_tensor, axis, "reduce_logsumexp")
    floating(t, "reduce_logsumexp")
    data = t.data
    shift = xp.amax(data, axis=axes, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    kept = xp.log(xp.sum(xp.exp(data - shift), axis=axes, keepdims=True)) + shift
    y = Tensor(kept if keepdims else xp.squeeze(kept, axis=axes))
    return record(y, (t,), lambda g: (_expand(xp, g, axes, keepdims) * xp.exp(data - kept),))


def _arg(name: str, reducer: str) -> Any:
    def op(input: Any, axis: int | None = None, output_type: Any = "int64") -> Tensor:  # noqa: A002
        t = numeric(tensor(input), name)
        xp = t.backend.xp
        index = getattr(xp, reducer)(t.data, axis=0 if axis is None else int(axis))
        return Tensor(xp.asarray(index).astype(as_dtype(output_type).np_dtype))

    op.__name__ = name
    op.__doc__ = f"`{name}` along `axis` (default 0), as int64; it has no gradient."
    return op


argmax = _arg("argmax", "argmax")
argmin = _arg("argmin", "argmin")


def reduce_any(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Logical OR over `axis` of a bool tensor."""
    t = tensor(input_tensor)
    return Tensor(t.backend.xp.any(t.data, axis=axes_of(axis, t.ndim), keepdims=keepdims))


def reduce_all(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Logical AND over `axis` of a bool tensor."""
    t = tensor(input_tensor)
    return Tensor(t.backend.xp.all(t.data, axis=axes_of(axis, t.ndim), keepdims=keepdims))
