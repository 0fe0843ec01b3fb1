"""N-d channels-last max and average pooling, as one 1-d pooling pass per spatial axis.

A box window is a product of intervals, so its max (or sum) is the max (or sum) along one axis,
then the next. Each 1-d pass loops over the window offsets along its axis (never over pixels or
samples), a few element-wise ops on strided slices. Max pooling follows PyTorch's CPU kernel,
which scans a window in C order and lets a later element win when it is greater or NaN: the
first of tied maxima wins and the last NaN does, so a window with a NaN gives NaN (as in Keras
and PyTorch) and its gradient goes to the index PyTorch returns. Passes run innermost axis first,
each keeping its first maximum or last NaN per line, which picks that same element. Backward
routes each gradient to exactly that one input and +0 to the others, by bits, so an infinite or
NaN gradient stays where it belongs. Disjoint windows write their slices directly, overlapping
ones accumulate. Padding never wins: where a window's real elements are all -inf, its first real
element does (PyTorch's index; Keras on JAX lets the padding win and loses the gradient). Both
modes send gradients as PyTorch's sum into zeros does, so a -0.0 gradient arrives as +0.0.
Average pooling with `same` padding divides by the number of real (unpadded) elements, as Keras
does. The gradient takes the input's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import native
from engine.backend import backend_of
from engine.kernels.conv import (
    IntOrSeq,
    as_tuple,
    batch_shards,
    pad_amounts,
    pad_input,
    run_shards,
    window_view,
)

Array = Any
MODES = ("max", "avg")


@dataclass
class AxisPass:
    """One 1-d pooling pass: its axis, window, stride, input shape and (max) argmax offsets."""

    axis: int
    size: int
    stride: int
    in_shape: tuple[int, ...]
    argmax: Array  # None for average pooling

    def slices(self, offset: int, out_len: int) -> tuple[slice, ...]:
        """The input slice holding every window's element at `offset` along this axis."""
        index = [slice(None)] * len(self.in_shape)
        index[self.axis] = slice(offset, offset + (out_len - 1) * self.stride + 1, self.stride)
        return tuple(index)


@dataclass
class WindowWinners:
    """A shard pooled by the compiled kernel: per output its window's winner (its C-order
    offset in one byte, see `_pool.c`), and the geometry to route the gradient back with."""

    codes: Array
    geometry: tuple[tuple[int, ...], ...]


@dataclass
class PoolCache:
    """Per batch shard the passes in forward order; the padding to crop; the average's divisor;
    the input's shape and dtype (the gradient's)."""

    mode: str
    pads: tuple[tuple[int, int], ...]
    shards: list[slice]
    passes: list[list[AxisPass] | WindowWinners]
    count: Array | float
    x_shape: tuple[int, ...]
    dtype: Any


def pool_forward(
    x: Array, pool_size: IntOrSeq, strides: IntOrSeq | None, padding: str, mode: str
) -> tuple[Array, PoolCache]:
    """Pool x (N, *spatial, C) with windows `pool_size` moved by `strides` (default pool_size).

    Large batches run as two halves on two threads (see `batch_shards`): every pass is
    element-wise, and NumPy runs each on one core.
    """
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
    y = xp.empty((x.shape[0], *out, x.shape[-1]), dtype=x.dtype)
    shards = batch_shards(x, x.size * math.prod(pool))

    def run(i: int, s: slice) -> list[AxisPass] | WindowWinners:
        winners = _native_max(xpad[s], y[s], pool, st, pads) if mode == "max" else None
        if winners is not None:
            return winners
        y[s], passes = _pool_shard(xp, xpad[s], pool, st, out, mode, pads)
        return passes

    passes = run_shards(run, shards)
    count: Array | float = float(math.prod(pool))
    if mode == "avg":
        if any(lo or hi for lo, hi in pads):
            count = _valid_counts(xp, x.shape[1:-1], pads, out, pool, st, x.dtype)
        y /= count
    return y, PoolCache(mode, pads, shards, passes, count, tuple(x.shape), x.dtype)


def _native_max(
    x: Array,
    y: Array,
    pool: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
) -> WindowWinners | None:
    """Max pooling by `_pool.c` for 2-d disjoint windows of plain float32 arrays, with the
    NumPy passes' bits; None where it does not apply (a window's offset must fit a byte)."""
    disjoint = all(s >= k for k, s in zip(pool, strides, strict=True))
    fits = x.ndim == 4 and math.prod(pool) <= 256
    if not fits or x.dtype != np.float32 or not disjoint:
        return None
    codes = np.empty(y.shape, dtype=np.uint8)
    module = native.pool(x, y, codes)
    if module is None:
        return None
    geometry = (tuple(x.shape), tuple(pool), tuple(strides), tuple(y.shape[1:3]))
    module.max_pool(x, y, codes, *geometry)
    _skip_leading_padding(codes, pool, strides, pads)
    return WindowWinners(codes, geometry)


def _leading_padding(lo: int, stride: int, out_len: int) -> list[int]:
    """For each window that starts in an axis's `lo` leading padding elements, the offset of
    its first real element (windows further on start at a real one)."""
    return [lo - o * stride for o in range(min(-(-lo // stride), out_len))]


def _skip_leading_padding(
    codes: Array, pool: Sequence[int], strides: Sequence[int], pads: Sequence[tuple[int, int]]
) -> None:
    """Move each winner code 0 that names leading padding (the window's real elements are all
    -inf, and the padding came first) to the window's first real element."""
    _, oh, ow, _ = codes.shape
    rows = _leading_padding(pads[0][0], strides[0], oh)
    cols = _leading_padding(pads[1][0], strides[1], ow)
    if not rows and not cols:
        return
    first = np.add.outer(
        np.pad(rows, (0, oh - len(rows))) * pool[1], np.pad(cols, (0, ow - len(cols)))
    ).astype(np.uint8)
    # the windows in the first rows, then those in the first columns of the other rows
    for band in ((slice(0, len(rows)), slice(None)), (slice(len(rows), None), slice(0, len(cols)))):
        part = codes[(slice(None), *band)]
        np.copyto(part, first[band][None, :, :, None], where=part == 0)


def _pool_shard(
    xp: Any,
    xpad: Array,
    pool: Sequence[int],
    strides: Sequence[int],
    out: Sequence[int],
    mode: str,
    pads: Sequence[tuple[int, int]],
) -> tuple[Array, list[AxisPass]]:
    """Max or sum over the windows of one shard, one axis at a time, innermost first; a max
    winner in an axis's leading padding moves to the window's first real element (its real
    elements are all -inf: a running max is -inf there, so later passes keep that too)."""
    y = xpad
    passes = []
    for axis in range(len(pool), 0, -1):
        step = AxisPass(axis, pool[axis - 1], strides[axis - 1], tuple(y.shape), None)
        slices = [step.slices(o, out[axis - 1]) for o in range(step.size)]
        if mode == "max":
            y, step.argmax = _max_windows(xp, y, slices)
            first_real = _leading_padding(pads[axis - 1][0], step.stride, out[axis - 1])
            for o, offset in enumerate(first_real):
                index = (slice(None),) * axis + (o,)
                xp.maximum(step.argmax[index], offset, out=step.argmax[index])
        else:
            y = _sum_windows(y, slices)
        passes.append(step)
    return y, passes


def pool_backward(cache: PoolCache, dy: Array) -> Array:
    """dx (N, *spatial, C), in the input's dtype, for the upstream gradient dy (N, *out, C)."""
    xp = backend_of(dy).xp
    dy = dy.astype(cache.dtype, copy=False)
    g = dy / cache.count if cache.mode == "avg" else dy
    padded = any(lo or hi for lo, hi in cache.pads)
    dx = None if padded else xp.empty(cache.x_shape, dtype=g.dtype)

    def run(i: int, s: slice) -> Array:
        return _unpool(xp, cache.passes[i], g[s], None if dx is None else dx[s])

    parts = run_shards(run, cache.shards)
    if dx is not None:
        return dx
    whole = parts[0] if len(parts) == 1 else xp.concatenate(parts)
    inner = tuple(
        slice(lo, size - hi) for (lo, hi), size in zip(cache.pads, whole.shape[1:-1], strict=True)
    )
    return whole[(slice(None), *inner, slice(None))]


def _unpool(xp: Any, passes: list[AxisPass] | WindowWinners, g: Array, out: Array | None) -> Array:
    """Undo one shard's passes, last first; the first pass writes into `out` when given."""
    if isinstance(passes, WindowWinners):
        return _native_unpool(xp, passes, g, out)
    g = g + 0.0  # the disjoint routes copy bits: -0.0 becomes +0.0 as in a sum into zeros
    for step in reversed(passes):
        out_len = g.shape[step.axis]
        n = step.in_shape[step.axis]
        # windows that tile the axis exactly write every element, so skip the zero fill
        tiled = step.stride == step.size and out_len * step.size == n
        if step is passes[0] and out is not None:
            dprev = out
            if not tiled:
                dprev[...] = 0
        else:
            dprev = (xp.empty if tiled else xp.zeros)(step.in_shape, dtype=g.dtype)
        route = _ROUTES[step.argmax is not None, step.stride >= step.size]
        route(xp, g, step, dprev)
        g = dprev
    return g


def _native_unpool(xp: Any, winners: WindowWinners, g: Array, out: Array | None) -> Array:
    """Backward of `_native_max`, with the bits of `_unpool`'s NumPy passes."""
    dx = np.empty(winners.geometry[0], dtype=np.float32) if out is None else out
    g = np.ascontiguousarray(g, dtype=np.float32)
    module = native.pool(dx, g, winners.codes)
    assert module is not None, "forward ran the compiled kernel, so it is loaded"
    module.max_unpool(dx, g, winners.codes, *winners.geometry)
    return dx


def _max_windows(xp: Any, x: Array, slices: list[tuple[slice, ...]]) -> tuple[Array, Array]:
    """The running maximum over the window offsets and the offset of its winner.

    A later offset wins when it is greater or NaN, PyTorch's rule: the first of tied maxima
    and the last NaN win. The value is taken from x at the winner, so of tied -0.0 and +0.0
    the first keeps its sign and a NaN keeps its bits; NumPy's `maximum` picks between zeros
    differently in its SIMD body and tail, which no compiled loop could follow. Later offsets
    carry larger indices, so max(argmax, later * offset) records the newest winner without a
    data-dependent branch per element.
    """
    first = x[slices[0]]
    index_type = xp.uint8 if len(slices) < 256 else xp.int32
    if len(slices) == 1:
        return first.copy(), xp.zeros(first.shape, dtype=index_type)
    nan = xp.empty(first.shape, dtype=bool)
    wins = _wins(xp, x[slices[1]], first, nan)
    y = _select(xp, wins, x[slices[1]], first)
    # a fresh boolean array already holds offsets 0 and 1 as bytes: view it, don't convert it
    argmax = wins.view(index_type) if index_type == xp.uint8 else wins.astype(index_type)
    later = xp.empty(first.shape, dtype=bool)
    for offset, sl in enumerate(slices[2:], start=2):
        _wins(xp, x[sl], y, nan, later)
        y = _select(xp, later, x[sl], y)
        xp.maximum(argmax, later * index_type(offset), out=argmax)
    return y, argmax


def _wins(xp: Any, candidate: Array, best: Array, nan: Array, out: Array | None = None) -> Array:
    """Where `candidate` beats the running `best`: greater, or NaN (`nan` is scratch)."""
    xp.isnan(candidate, out=nan)
    out = xp.greater(candidate, best, out=out)
    return xp.logical_or(out, nan, out=out)


def _select(xp: Any, mask: Array, a: Array, b: Array) -> Array:
    """`where(mask, a, b)` as bits, b ^ ((a ^ b) * mask): exact, and about 4x faster than
    NumPy's `where` on these strided float slices."""
    out = xp.bitwise_xor(_bits(a), _bits(b))
    xp.multiply(out, mask, out=out)
    xp.bitwise_xor(out, _bits(b), out=out)
    return out.view(a.dtype)


def _bits(a: Array) -> Array:
    """The same memory as signed integers of its item size: masks by integer products."""
    return a.view(f"i{a.dtype.itemsize}")


def _route_disjoint_max(xp: Any, g: Array, step: AxisPass, dprev: Array) -> None:
    """Send each gradient to its window's argmax when windows do not overlap, +0 elsewhere.

    Masking the bits (an integer product with 0 or 1) keeps an infinite or NaN gradient at its
    winner, where a float product with 0 would spread NaN. With two offsets the argmax bytes
    are 0 or 1, so they read as the mask of offset 1 and offset 0 takes the bits of g minus
    that product: exact, and two passes fewer.
    """
    out_len = g.shape[step.axis]
    if step.size == 2:
        second = _bits(dprev[step.slices(1, out_len)])
        xp.multiply(_bits(g), step.argmax.view(bool), out=second)
        xp.subtract(_bits(g), second, out=_bits(dprev[step.slices(0, out_len)]))
        return
    for offset in range(step.size):
        dst = _bits(dprev[step.slices(offset, out_len)])
        xp.multiply(_bits(g), step.argmax == offset, out=dst)


def _route_overlapping_max(xp: Any, g: Array, step: AxisPass, dprev: Array) -> None:
    """Accumulate each gradient at its window's argmax; overlapping windows share inputs."""
    for offset in range(step.size):
        masked = (_bits(g) * (step.argmax == offset)).view(g.dtype)
        dprev[step.slices(offset, g.shape[step.axis])] += masked


def _copy_windows(xp: Any, g: Array, step: AxisPass, dprev: Array) -> None:
    """Average pooling, disjoint windows: every window element takes the gradient."""
    for offset in range(step.size):
        dprev[step.slices(offset, g.shape[step.axis])] = g


def _add_windows(xp: Any, g: Array, step: AxisPass, dprev: Array) -> None:
    """Average pooling, overlapping windows: every window element accumulates the gradient."""
    for offset in range(step.size):
        dprev[step.slices(offset, g.shape[step.axis])] += g


Route = Callable[[Any, Array, AxisPass, Array], None]
# keyed by (max pooling, disjoint windows)
_ROUTES: dict[tuple[bool, bool], Route] = {
    (True, True): _route_disjoint_max,
    (True, False): _route_overlapping_max,
    (False, True): _copy_windows,
    (False, False): _add_windows,
}


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
