"""N-d channels-last convolution as im2col over a strided view plus one matmul per group.

Forward pads the input once, takes a zero-copy window view (N, *out, *kernel, Cin) with
`as_strided`, copies it into a (N * out, kernel * Cin) column matrix and multiplies by the kernel
reshaped to (kernel * Cin, Cout). Backward reuses the columns for dW (one matmul) and rebuilds
dX with one small matmul and one slice-add per kernel offset (col2im), so no loop ever runs
over pixels or samples. On the CPU a large call runs as two batch halves on two Python threads
with one BLAS thread each (`run_shards`); the caller's activation and its gradient run inside
the halves too (`epilogue`, `prologue`). dW and db sum the halves' products, so they are
deterministic for a given batch size but may differ from an unsplit call in the last bits.
Padding follows Keras/TensorFlow: `same` pads max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0) with
the extra element at the end; `causal` (1-d) pads (k-1)*d on the left.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from engine import native
from engine.backend import backend_of
from engine.conv_geometry import IntOrSeq, as_tuple, pad_amounts
from engine.fused.blas_threads import single_threaded_blas
from engine.kernels import conv_chunks, conv_direct, conv_phases
from engine.kernels.im2col import pad_input, window_view

Array = Any


def offset_slices(
    offsets: Sequence[int], out: Sequence[int], strides: Sequence[int], dilation: Sequence[int]
) -> tuple[slice, ...]:
    """The (N, *spatial, C) slice covering every window's element at one kernel offset."""
    return (
        slice(None),
        *(
            slice(o * d, o * d + (n - 1) * s + 1, s)
            for o, n, s, d in zip(offsets, out, strides, dilation, strict=True)
        ),
        slice(None),
    )


Epilogue = Callable[[Array], None]
Prologue = Callable[[slice, Array], Array]
T = TypeVar("T")
# below this many multiply-adds a layer call runs on one thread: a hand-off costs ~50 us
SHARD_MIN_MACS = 1 << 22


@functools.cache
def _helper() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="conv-shard")


# a forked child inherits the executor but not its thread: give it a fresh one
os.register_at_fork(after_in_child=_helper.cache_clear)


def batch_shards(x: Array, macs: int) -> list[slice]:
    """Two halves of a host batch (NumPy, or the fake device's NumPy subclass) when the call is
    big enough, else the whole batch: the split is the same on the CPU and the fake device, so
    their results agree bit for bit.

    NumPy and one-thread BLAS release the GIL, so two Python threads each running a half keep
    both cores busy without OpenBLAS's spinning thread pool, which collapses when the other
    core is loaded (measured: a dX pass of W3's second conv went from 7 ms to 60-90 ms).
    """
    n = x.shape[0]
    if n < 2 or macs < SHARD_MIN_MACS or not isinstance(x, np.ndarray):
        return [slice(0, n)]
    return [slice(0, n // 2), slice(n // 2, n)]


def run_shards(fn: Callable[[int, slice], T], shards: list[slice]) -> list[T]:
    """fn(i, shard) for every shard, the first on this thread and the rest on a helper."""
    if len(shards) == 1:
        return [fn(0, shards[0])]
    with single_threaded_blas():
        pending = [_helper().submit(fn, i, s) for i, s in enumerate(shards[1:], start=1)]
        first = fn(0, shards[0])
        return [first, *(p.result() for p in pending)]


@dataclass
class ConvCache:
    """What backward needs: per batch shard the column matrices (one per group) or, for a
    convolution of one group (`conv_chunks`), the input to rebuild them from; and geometry."""

    cols: list[list[Array]]
    x: Array | None
    shards: list[slice]
    w: Array
    x_shape: tuple[int, ...]
    pad_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    has_bias: bool


def conv_forward(
    x: Array,
    w: Array,
    b: Array | None,
    strides: IntOrSeq = 1,
    padding: str = "valid",
    dilation: IntOrSeq = 1,
    groups: int = 1,
    epilogue: Epilogue | None = None,
) -> tuple[Array, ConvCache]:
    """y = conv(x, w) + b for x (N, *spatial, Cin), w (*kernel, Cin // groups, Cout).

    `epilogue` (an in-place activation such as ReLU) runs on each shard's rows while they are
    still in cache, instead of as one more pass over the whole output.
    """
    xp = backend_of(x).xp
    cin, cout = x.shape[-1], w.shape[-1]
    if cin % groups or cout % groups or w.shape[-2] * groups != cin:
        raise ValueError(
            f"input channels {cin} and filters {cout} must split into {groups} groups "
            f"matching the kernel's {w.shape[-2]} channels per group"
        )
    geometry = conv_geometry(x.shape, w.shape, strides, padding, dilation)
    pads, out, st, dl = geometry.pads, geometry.out, geometry.strides, geometry.dilation
    pad_shape = _padded_shape(x.shape, pads)
    kernel = geometry.kernel
    # one group of several channels, or one channel the compiled direct kernel takes: each
    # shard from x itself (columns chunk by chunk, or no columns at all); otherwise per group
    # from a window view, with the bias folded in for one channel a group
    direct = groups == 1 and (cin > 1 or _direct_takes_one_channel(x, w, geometry))
    view = None if direct else window_view(pad_input(x, pads), out, kernel, st, dl)
    per = math.prod(out)
    y = xp.empty((x.shape[0] * per, cout), dtype=x.dtype)
    shards = batch_shards(x, y.shape[0] * w.size // groups)
    finish = bias_epilogue(b, epilogue)

    def run(i: int, s: slice) -> list[Array]:
        part = y[s.start * per : s.stop * per]
        if view is None:
            if not conv_direct.forward(x[s], w, b, geometry, part, epilogue):
                conv_chunks.product(x[s], geometry, w.reshape(-1, cout), part, finish)
            return []
        return _forward_shard(view[s], w, b, part, groups, epilogue)

    cols = run_shards(run, shards)
    cache = ConvCache(
        cols,
        x if direct else None,
        shards,
        w,
        tuple(x.shape),
        pad_shape,
        pads,
        out,
        st,
        dl,
        groups,
        b is not None,
    )
    return y.reshape(x.shape[0], *out, cout), cache


def conv_geometry(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    strides: IntOrSeq,
    padding: str,
    dilation: IntOrSeq,
) -> conv_chunks.Geometry:
    """The geometry of a convolution of an input (N, *spatial, Cin) with a kernel (*kernel, ...):
    Keras's pads and the output's spatial sizes."""
    nd = len(x_shape) - 2
    kernel = tuple(int(k) for k in w_shape[:nd])
    st = as_tuple(strides, nd, "strides")
    dl = as_tuple(dilation, nd, "dilation")
    spatial = tuple(int(n) for n in x_shape[1:-1])
    pads = tuple(
        pad_amounts(n, k, s, padding, d) for n, k, s, d in zip(spatial, kernel, st, dl, strict=True)
    )
    out = tuple(
        (n + lo + hi - (k - 1) * d - 1) // s + 1
        for n, (lo, hi), k, s, d in zip(spatial, pads, kernel, st, dl, strict=True)
    )
    if min(out) <= 0:
        raise ValueError(f"kernel {kernel} does not fit input {spatial}")
    return conv_chunks.Geometry(kernel, st, dl, pads, spatial, out)


def _direct_takes_one_channel(x: Array, w: Array, geometry: conv_chunks.Geometry) -> bool:
    """Whether the compiled direct kernel will run a one-channel convolution. Without it, the
    window view's transposed columns (`_columns`) beat the chunked copy, whose innermost run
    is a window row of 3 floats (W3's first conv without a compiler, CPU medians of 12
    alternated calls: forward 13.2 -> 9.9 ms, dW 10.4 -> 4.9 ms)."""
    usable = native.conv_direct(x, w) is not None
    return usable and conv_direct.forward_wins(geometry, x.shape[-1], w.shape[-1])


def bias_epilogue(b: Array | None, epilogue: Epilogue | None) -> Epilogue | None:
    """`rows += b`, then the caller's epilogue, as one function of a block of output rows."""
    if b is None:
        return epilogue

    def run(rows: Array) -> None:
        rows += b
        if epilogue is not None:
            epilogue(rows)

    return run


def _padded_shape(shape: Sequence[int], pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    spatial = (n + lo + hi for n, (lo, hi) in zip(shape[1:-1], pads, strict=True))
    return (shape[0], *spatial, shape[-1])


def _forward_shard(
    view: Array, w: Array, b: Array | None, y: Array, groups: int, epilogue: Epilogue | None
) -> list[Array]:
    """Fill y (rows, Cout) for one shard's windows; returns its column matrices.

    With one channel per group the columns are built row by row anyway, so a row of ones
    joins them and the bias rides in the product: no separate pass to add it, and backward
    gets db from the same product as dW.
    """
    xp = backend_of(y).xp
    rows, cout = y.shape
    cg, og = view.shape[-1] // groups, cout // groups
    fold = _folds_bias(cg, b is not None)
    cols = []
    for g in range(groups):
        col = _columns(view, g, cg, rows, fold)
        wg = w[..., g * og : (g + 1) * og].reshape(-1, og)
        if b is not None and fold:
            wg = xp.concatenate([wg, b[None, g * og : (g + 1) * og]])
        if groups == 1:
            xp.matmul(col, wg, out=y)
        else:
            y[:, g * og : (g + 1) * og] = col @ wg
        cols.append(col)
    if b is not None and not fold:
        y += b
    if epilogue is not None:
        epilogue(y)
    return cols


def _folds_bias(cg: int, has_bias: bool) -> bool:
    """Whether the columns carry a ones row for the bias (one channel per group only)."""
    return has_bias and cg == 1


def _columns(view: Array, g: int, cg: int, rows: int, ones: bool = False) -> Array:
    """The (rows, kernel * cg) im2col matrix of group g, plus a ones column when `ones`.

    With one channel per group the window view's innermost axis has length 1, which copies
    slowly; building the transpose offset by offset (each a plain strided 2-d copy) measured
    about twice as fast, and BLAS takes the transposed view as it is.
    """
    xp = backend_of(view).xp
    if cg > 1:
        part = view if view.shape[-1] == cg else view[..., g * cg : (g + 1) * cg]
        return xp.ascontiguousarray(part).reshape(rows, -1)
    nd = (view.ndim - 2) // 2
    kernel = view.shape[nd + 1 : 2 * nd + 1]
    size = math.prod(kernel)
    cols_t = xp.empty((size + int(ones), *view.shape[: nd + 1]), dtype=view.dtype)
    for k, offsets in enumerate(all_offsets(kernel)):
        cols_t[k] = view[(slice(None),) * (nd + 1) + offsets + (g,)]
    if ones:
        cols_t[size] = 1
    return cols_t.reshape(len(cols_t), rows).T


def conv_backward(
    cache: ConvCache, dy: Array, need_dx: bool = True, prologue: Prologue | None = None
) -> tuple[Array | None, Array, Array | None]:
    """(dx or None, dw, db or None) for the upstream gradient dy (N, *out, Cout).

    `prologue(shard, dy[shard])` turns the upstream gradient into the pre-activation one
    (the activation's backward) inside each shard, so it runs on both cores too.
    """
    xp = backend_of(dy).xp
    w = cache.w
    cout = w.shape[-1]
    stride_1 = cache.groups == 1 and all(st == 1 for st in cache.strides)
    transposed = conv_chunks.transposed_kernel(w) if need_dx and stride_1 else None
    geometry = conv_chunks.Geometry(
        cache.w.shape[: len(cache.out)],
        cache.strides,
        cache.dilation,
        cache.pads,
        cache.x_shape[1:-1],
        cache.out,
    )
    strided = need_dx and cache.groups == 1 and transposed is None
    phases = conv_phases.plan(geometry, w) if strided else None
    if transposed is not None or phases is not None:
        dx = xp.empty(cache.x_shape, dtype=dy.dtype)
    dpad = None
    if need_dx and transposed is None and phases is None:
        dpad = xp.empty(cache.pad_shape, dtype=dy.dtype)

    def run(i: int, s: slice) -> tuple[Array, Array | None]:
        part = dy[s] if prologue is None else prologue(s, dy[s])
        dy2 = part.reshape(-1, cout)
        if cache.x is None:
            dw, db = _weight_grad(cache.cols[i], dy2, w, cache.groups, cache.has_bias)
        else:
            grads = conv_direct.weight_grad(cache.x[s], geometry, dy2, w, cache.has_bias)
            if grads is None:
                dw = conv_chunks.weight_grad(cache.x[s], geometry, dy2, w.size // cout)
                grads = dw.reshape(w.shape), _column_sums(dy2) if cache.has_bias else None
            dw, db = grads
        if transposed is not None and not conv_direct.input_grad(part, geometry, transposed, dx[s]):
            if _transposed_inflates(geometry):
                _col2im_into(cache, dy2, dx[s])
            else:
                conv_chunks.input_grad(part, geometry, transposed, dx[s])
        elif phases is not None and not conv_phases.input_grad(phases, part, cache.strides, dx[s]):
            _col2im_into(cache, dy2, dx[s])
        elif dpad is not None:
            _col2im(cache, dy2, dpad[s])
        return dw, db

    parts = run_shards(run, cache.shards)
    dw, db = parts[0]
    for more_dw, more_db in parts[1:]:
        dw += more_dw
        if db is not None:
            db += more_db
    if transposed is not None or phases is not None:
        return dx, dw, db
    return (None if dpad is None else _crop(cache, dpad)), dw, db


def _weight_grad(
    cols: list[Array], dy2: Array, w: Array, groups: int, has_bias: bool
) -> tuple[Array, Array | None]:
    """dW and db of one shard: one (kernel * cg, rows) @ (rows, og) product per group.

    When the columns carry the bias's ones row, the product's last row is db.
    """
    xp = backend_of(dy2).xp
    og = w.shape[-1] // groups
    fold = _folds_bias(w.shape[-2], has_bias)
    dw = xp.empty_like(w)
    db = xp.empty(w.shape[-1], dtype=dy2.dtype) if fold else None
    for g, col in enumerate(cols):
        dyg = dy2 if groups == 1 else dy2[:, g * og : (g + 1) * og]
        prod = col.T @ dyg
        if db is not None:
            db[g * og : (g + 1) * og] = prod[-1]
            prod = prod[:-1]
        dw[..., g * og : (g + 1) * og] = prod.reshape(*w.shape[:-1], og)
    if has_bias and db is None:
        db = _column_sums(dy2)
    return dw, db


def _column_sums(dy2: Array) -> Array:
    """db: a matrix-vector product with ones sums the columns about 3x faster than sum(axis=0)."""
    return backend_of(dy2).xp.ones(dy2.shape[0], dtype=dy2.dtype) @ dy2


def _col2im(cache: ConvCache, dy2: Array, dpad: Array) -> None:
    """dX of one shard into its padded slice: per kernel offset one matmul into a reused
    buffer and one strided slice-add.

    Going offset by offset keeps each product contiguous and never materializes the whole
    (rows, kernel * Cin) column gradient, which measured faster than one big matmul.
    """
    xp = backend_of(dy2).xp
    w, groups = cache.w, cache.groups
    nd = len(cache.out)
    og, cg = w.shape[-1] // groups, w.shape[-2]
    dpad[...] = 0
    buf = xp.empty((dy2.shape[0], cg), dtype=dy2.dtype)
    tile = buf.reshape(dpad.shape[0], *cache.out, cg)
    for g in range(groups):
        dyg = dy2 if groups == 1 else dy2[:, g * og : (g + 1) * og]
        target = dpad if groups == 1 else dpad[..., g * cg : (g + 1) * cg]
        for offsets in all_offsets(w.shape[:nd]):
            xp.matmul(dyg, w[offsets][:, g * og : (g + 1) * og].T, out=buf)
            target[offset_slices(offsets, cache.out, cache.strides, cache.dilation)] += tile


# the most input positions per output for which a stride-1 dX runs as the transposed product
TRANSPOSED_MOST_AREA = 1.25


def _transposed_inflates(g: conv_chunks.Geometry) -> bool:
    """Whether the transposed product would sum many more terms than col2im: it computes every
    input position from the zero-bordered dy, so a `valid` convolution's dX sums input-area /
    output-area times the MACs (W3's second layer: 13 x 13 from 11 x 11, 1.40x). Without the
    direct kernel, one thread, 64 images, CPU medians of 7 (December 8): W3's 32 -> 64 on 13 x 13
    6.05 ms transposed against 4.63 col2im; W7's `same` 3 x 3 layers (1.0x) 7.7 / 4.6 / 3.2
    against 12.4 / 6.9 / 4.4."""
    return math.prod(g.spatial) > TRANSPOSED_MOST_AREA * math.prod(g.out)


def _col2im_into(cache: ConvCache, dy2: Array, dx: Array) -> None:
    """`_col2im` for a shard whose dx was allocated unpadded: straight into it when there is no
    padding, else through a padded buffer."""
    if not any(lo or hi for lo, hi in cache.pads):
        _col2im(cache, dy2, dx)
        return
    dpad = backend_of(dx).xp.empty((dx.shape[0], *cache.pad_shape[1:]), dtype=dx.dtype)
    _col2im(cache, dy2, dpad)
    dx[...] = _crop(cache, dpad)


def _crop(cache: ConvCache, dpad: Array) -> Array:
    """The unpadded part of a padded (N, *spatial, C) gradient."""
    inner = tuple(
        slice(lo, size - hi)
        for (lo, hi), size in zip(cache.pads, cache.pad_shape[1:-1], strict=True)
    )
    return dpad[(slice(None), *inner, slice(None))]


def all_offsets(kernel: Sequence[int]) -> list[tuple[int, ...]]:
    """Every kernel offset tuple, in C order."""
    offsets: list[tuple[int, ...]] = [()]
    for k in kernel:
        offsets = [(*o, i) for o in offsets for i in range(k)]
    return offsets


def conv_input_grad(
    dy: Array,
    w: Array,
    x_shape: tuple[int, ...],
    strides: IntOrSeq = 1,
    padding: str = "valid",
    dilation: IntOrSeq = 1,
) -> Array:
    """dX of `conv_forward` for an input of `x_shape`, from dy alone (no forward cache).

    This is the transposed convolution: Conv2DTranspose's forward, with x_shape its output.
    """
    xp = backend_of(dy).xp
    nd = dy.ndim - 2
    kernel = tuple(int(k) for k in w.shape[:nd])
    st = as_tuple(strides, nd, "strides")
    dl = as_tuple(dilation, nd, "dilation")
    pads = tuple(
        pad_amounts(n, k, s, padding, d)
        for n, k, s, d in zip(x_shape[1:-1], kernel, st, dl, strict=True)
    )
    pad_shape = (
        x_shape[0],
        *(n + a + b for n, (a, b) in zip(x_shape[1:-1], pads, strict=True)),
        x_shape[-1],
    )
    out = tuple(int(d) for d in dy.shape[1:-1])
    shards = batch_shards(dy, dy.size * w.shape[-2] * math.prod(kernel))
    cache = ConvCache([], None, shards, w, tuple(x_shape), pad_shape, pads, out, st, dl, 1, False)
    dpad = xp.empty(pad_shape, dtype=dy.dtype)
    cout = w.shape[-1]

    def run(i: int, s: slice) -> None:
        _col2im(cache, dy[s].reshape(-1, cout), dpad[s])

    run_shards(run, shards)
    return _crop(cache, dpad)
