"""N-d channels-last max and average pooling, as one 1-d pooling pass per spatial axis.

A box window is a product of intervals, so its max (or sum) is the max (or sum) along one axis,
then the next. Each 1-d pass loops over the window offsets along its axis (never over pixels or
samples), a few element-wise ops on strided slices; the outer axes go first because their
slices are long contiguous runs, which NumPy streams several times faster than the short
channel runs of the innermost axis. Max pooling keeps, per pass, the offset of the first
maximum, so backward routes each gradient to exactly one input: among tied maxima, the first
along each axis (outer axes chosen first). Disjoint windows write their slices directly,
overlapping ones accumulate. Average pooling with `same` padding divides by the number of real
(unpadded) elements, as Keras does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.backend import backend_of
from engine.kernels.conv import IntOrSeq, as_tuple, pad_amounts, pad_input, window_view

Array = Any
MODES = ("max", "avg")


@dataclass
class AxisPass:
    """One 1-d pooling pass: its axis, window, stride, input shape and (max) argmax offsets."""

    axis: int
    size: int
    stride: int
    in_shape: tuple[int, ...]
    argmax: Array | None

    def slices(self, offset: int, out_len: int) -> tuple[slice, ...]:
        """The input slice holding every window's element at `offset` along this axis."""
        index = [slice(None)] * len(self.in_shape)
        index[self.axis] = slice(offset, offset + (out_len - 1) * self.stride + 1, self.stride)
        return tuple(index)


@dataclass
class PoolCache:
    """The passes in forward order, the padding to crop, and the average's divisor."""

    mode: str
    pads: tuple[tuple[int, int], ...]
    passes: list[AxisPass]
    count: Array | float


def pool_forward(
    x: Array, pool_size: IntOrSeq, strides: IntOrSeq | None, padding: str, mode: str
) -> tuple[Array, PoolCache]:
    """Pool x (N, *spatial, C) with windows `pool_size` moved by `strides` (default pool_size)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    xp = backend_of(x).xp
    nd = x.ndim - 2
    pool = as_tuple(pool_size, nd, "pool_size")
    st = pool if strides is None else as_tuple(strides, nd, "strides")
    pads = tuple(
        pad_amounts(n, k, s, padding) for n, k, s in zip(x.shape[1:-1], pool, st, strict=True)
    )
    xpad = pad_input(x, pads, -math.inf if mode == "max" else 0.0)
    out = tuple((n - k) // s + 1 for n, k, s in zip(xpad.shape[1:-1], pool, st, strict=True))
    if min(out) <= 0:
        raise ValueError(f"pool {pool} does not fit input {tuple(x.shape[1:-1])}")
    y = xpad
    passes = []
    for axis in range(1, nd + 1):
        step = AxisPass(axis, pool[axis - 1], st[axis - 1], tuple(y.shape), None)
        slices = [step.slices(o, out[axis - 1]) for o in range(step.size)]
        if mode == "max":
            y, step.argmax = _max_windows(xp, y, slices)
        else:
            y = _sum_windows(y, slices)
        passes.append(step)
    count: Array | float = float(math.prod(pool))
    if mode == "avg":
        if any(lo or hi for lo, hi in pads):
            count = _valid_counts(xp, x.shape[1:-1], pads, out, pool, st, x.dtype)
        y /= count
    return y, PoolCache(mode, pads, passes, count)


def pool_backward(cache: PoolCache, dy: Array) -> Array:
    """dx (N, *spatial, C) for the upstream gradient dy (N, *out, C)."""
    xp = backend_of(dy).xp
    g = dy / cache.count if cache.mode == "avg" else dy
    for step in reversed(cache.passes):
        out_len = g.shape[step.axis]
        n = step.in_shape[step.axis]
        # windows that tile the axis exactly write every element, so skip the zero fill
        tiled = step.stride == step.size and out_len * step.size == n
        dprev = (xp.empty if tiled else xp.zeros)(step.in_shape, dtype=g.dtype)
        disjoint = step.stride >= step.size
        for offset in range(step.size):
            sl = step.slices(offset, out_len)
            if step.argmax is None and disjoint:
                dprev[sl] = g
            elif step.argmax is None:
                dprev[sl] += g
            elif disjoint:
                xp.multiply(g, step.argmax == offset, out=dprev[sl])
            else:
                dprev[sl] += g * (step.argmax == offset)
        g = dprev
    inner = tuple(
        slice(lo, size - hi) for (lo, hi), size in zip(cache.pads, g.shape[1:-1], strict=True)
    )
    return g[(slice(None), *inner, slice(None))]


def _max_windows(xp: Any, x: Array, slices: list[tuple[slice, ...]]) -> tuple[Array, Array]:
    """The running maximum over the window offsets and the offset of the first maximum.

    Later offsets carry larger indices, so max(argmax, bigger * offset) records the newest
    strict winner without a data-dependent branch per element.
    """
    first = x[slices[0]]
    index_type = xp.uint8 if len(slices) < 256 else xp.int32
    if len(slices) == 1:
        return first.copy(), xp.zeros(first.shape, dtype=index_type)
    second = x[slices[1]]
    bigger = xp.greater(second, first)
    y = xp.maximum(first, second)
    argmax = bigger.astype(index_type)
    for offset, sl in enumerate(slices[2:], start=2):
        xp.greater(x[sl], y, out=bigger)
        xp.maximum(y, x[sl], out=y)
        xp.maximum(argmax, bigger * index_type(offset), out=argmax)
    return y, argmax


def _sum_windows(x: Array, slices: list[tuple[slice, ...]]) -> Array:
    y = x[slices[0]].copy()
    for sl in slices[1:]:
        y += x[sl]
    return y


def _valid_counts(
    xp: Any,
    spatial: Sequence[int],
    pads: Sequence[tuple[int, int]],
    out: Sequence[int],
    pool: Sequence[int],
    strides: Sequence[int],
    dtype: Any,
) -> Array:
    """How many unpadded elements each window holds, shaped (1, *out, 1) to broadcast."""
    ones = xp.ones((1, *spatial, 1), dtype=dtype)
    view = window_view(pad_input(ones, pads), out, pool, strides, (1,) * len(pool))
    return view.sum(axis=tuple(range(len(pool) + 1, 2 * len(pool) + 1)))
