"""A 2-d convolution with its ReLU and the max pooling after it as one call (the planned step's
fusion of Conv2D and MaxPooling2D, `engine/train/fusion.py`).

Unfused, the convolution writes its whole output (11 MB a batch for W3's first layer), the
ReLU and the pooling read it back, and backward writes the pooling's gradient that size, the
ReLU's masked copy of it, and reads both again for dW. Fused, forward runs the convolution a
few images at a time into one reused buffer that stays in cache, with its bias and ReLU, and
pools from there (`_pool.c`): the same operations on the same values as the two layers, so the
same bits. Backward runs `_conv_pool.c` from the pooling's winners: only a window's winner can
have a nonzero gradient, so dW, db and dX are sums over the winners alone, and the
pre-activation gradient is never written. Those sums run in another order than the dense
kernels', so gradients agree with the unfused passes within float32 rounding and repeat bit
for bit run to run (each element is summed in a fixed order; the batch halves' dW and db are
added in order).

Where the compiled kernels do not take the arrays (no compiler, `MODELSPEC_NATIVE=0`, CuPy or
the fake device, float64), the layer runs the two layers' own passes inside its one call.
W3's step: 39 ms of CPU fused against 61 unfused (`docs/ARCHITECTURE.md`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import native
from engine.kernels import conv, conv_chunks, conv_direct
from engine.kernels.conv_chunks import CHUNK_BYTES, Geometry

Array = Any
Epilogue = Callable[[Array], None]
_NONE = np.empty(0, dtype=np.float32)  # no bias, no dX


@dataclass(frozen=True)
class Pooling:
    """The max pooling's window and strides (disjoint windows: strides >= window)."""

    window: tuple[int, int]
    strides: tuple[int, int]

    def out(self, spatial: tuple[int, ...]) -> tuple[int, int]:
        (h, w), (ph, pw), (sh, sw) = spatial, self.window, self.strides
        return (h - ph) // sh + 1, (w - pw) // sw + 1


@dataclass
class FusedCache:
    """What backward needs: the convolution's input, kernel and geometry, the pooled output (its
    ReLU's mask at the winners) and each output's winner in its window."""

    x: Array
    w: Array
    has_bias: bool
    geometry: Geometry
    pooling: Pooling
    y: Array
    codes: Array
    shards: list[slice]


def applies(x: Array, w: Array, b: Array | None, g: Geometry, pooling: Pooling) -> bool:
    """Whether the compiled fused call takes these arrays: plain float32 NumPy ones, both
    kernels built, and pooled windows that fit (a window of at most 256 elements)."""
    arrays = (x, w) if b is None else (x, w, b)
    fits = min(pooling.out(g.out)) > 0 and math.prod(pooling.window) <= 256
    return (
        fits
        and native.conv_pool(*arrays) is not None
        and native.pool(x) is not None
        and all(d == 1 for d in g.dilation)
    )


def forward(
    x: Array, w: Array, b: Array | None, g: Geometry, pooling: Pooling, relu: Epilogue
) -> tuple[Array, FusedCache]:
    """maxpool(relu(conv(x, w) + b)) for x (N, h, w, Cin), w (kh, kw, Cin, Cout); `applies`
    must hold. The convolution runs as the unfused layer runs it (the direct kernel or chunked
    im2col + sgemm, the bias and `relu` on each chunk's rows), a chunk at a time."""
    cout = w.shape[-1]
    per = math.prod(g.out)
    pooled = pooling.out(g.out)
    y = np.empty((x.shape[0], *pooled, cout), dtype=np.float32)
    codes = np.empty(y.shape, dtype=np.uint8)
    shards = conv.batch_shards(x, x.shape[0] * per * w.size)
    direct = conv_direct.forward_wins(g, x.shape[-1], cout)
    # the chunks the unfused call takes: its rows' values do not depend on the chunking then
    width = cout if direct else w.size // cout
    step = max(1, CHUNK_BYTES // (per * width * x.itemsize))
    if _one_channel(x, w, g) or _in_registers(x, w, g, pooling):
        _registers_forward(x, w, b, g, pooling, y, codes, shards)
        return y, FusedCache(x, w, b is not None, g, pooling, y, codes, shards)
    module = native.pool(y, codes)
    assert module is not None, "applies() checked that the pooling is built"
    geometry = (pooling.window, pooling.strides, pooled)
    finish = conv.bias_epilogue(b, relu)

    def run(i: int, s: slice) -> None:
        xs, ys, cs = x[s], y[s], codes[s]
        buffer = np.empty((min(step, xs.shape[0]) * per, cout), dtype=np.float32)
        for k in range(0, xs.shape[0], step):
            part = xs[k : k + step]
            rows = buffer[: part.shape[0] * per]
            if not conv_direct.forward(part, w, b, g, rows, relu):
                conv_chunks.product(part, g, w.reshape(-1, cout), rows, finish)
            z = rows.reshape(part.shape[0], *g.out, cout)
            module.max_pool(z, ys[k : k + step], cs[k : k + step], z.shape, *geometry)

    conv.run_shards(run, shards)
    return y, FusedCache(x, w, b is not None, g, pooling, y, codes, shards)


def _one_channel(x: Array, w: Array, g: Geometry) -> bool:
    """Whether `_conv_pool.c`'s one-channel forward takes the layer: one input channel, a 3 x 3
    kernel, no padding, and the direct kernel is what the unfused layer would run (the bits it
    repeats), which also means filters in 16s."""
    return (
        w.shape[:3] == (3, 3, 1)
        and all(lo == hi == 0 for lo, hi in g.pads)
        and native.conv_direct(x, w) is not None
        and conv_direct.forward_wins(g, 1, w.shape[-1])
    )


def _in_registers(x: Array, w: Array, g: Geometry, pooling: Pooling) -> bool:
    """Whether `_conv_pool.c`'s pooled forward takes the layer: 2 x 2 windows moved by 2, a
    convolution of stride 1 in width, a CPU with 16-float registers, and the direct kernel's
    v16 blocks are what the unfused layer would run (the bits it repeats)."""
    module = native.conv_pool(x, w)
    return (
        pooling.window == pooling.strides == (2, 2)
        and g.strides[1] == 1
        and module is not None
        and module.wide()
        and native.conv_direct(x, w) is not None
        and conv_direct.forward_wins(g, x.shape[-1], w.shape[-1])
    )


def _registers_forward(
    x: Array,
    w: Array,
    b: Array | None,
    g: Geometry,
    pooling: Pooling,
    y: Array,
    codes: Array,
    shards: list[slice],
) -> None:
    """y and codes from `_conv_pool.c`'s forward, each batch half on its own thread: the
    convolution's outputs stay in registers until pooled (W3's first layer: its 9 taps are too
    few for the direct kernel's blocks, whose loop overhead then dominates; its second: the
    ReLU and pooling passes over a chunk, and the outputs no window reads, are saved)."""
    module = native.conv_pool(x, w, y)
    assert module is not None, "applies() checked that the kernel is built"
    bias = _NONE if b is None else b

    def run(i: int, s: slice) -> None:
        module.forward(
            x[s],
            w,
            bias,
            y[s],
            codes[s],
            x[s].shape,
            w.shape[:2],
            g.strides,
            tuple(lo for lo, _ in g.pads),
            pooling.window,
            pooling.strides,
            y.shape[1:3],
            w.shape[-1],
        )

    conv.run_shards(run, shards)


def backward(
    cache: FusedCache, dy: Array, need_dx: bool
) -> tuple[Array | None, Array, Array | None]:
    """(dx or None, dw, db or None) for the pooled output's gradient dy (N, ph, pw, Cout)."""
    x, w, g = cache.x, cache.w, cache.geometry
    kh, kw, cin, cout = w.shape
    dy = np.ascontiguousarray(dy, dtype=np.float32)
    wt = np.ascontiguousarray(w.transpose(3, 0, 1, 2)) if need_dx else _NONE
    dx = np.empty(x.shape, dtype=np.float32) if need_dx else None
    lows = tuple(lo for lo, _ in g.pads)
    module = native.conv_pool(x, wt, cache.y, dy)
    assert module is not None, "forward ran the compiled call, so the kernel is loaded"

    def run(i: int, s: slice) -> tuple[Array, Array | None]:
        dwt = np.empty((cout, kh, kw, cin), dtype=np.float32)
        db = np.empty(cout, dtype=np.float32) if cache.has_bias else None
        module.backward(
            x[s],
            wt,
            cache.y[s],
            cache.codes[s],
            dy[s],
            _NONE if dx is None else dx[s],
            dwt,
            _NONE if db is None else db,
            x[s].shape,
            (kh, kw),
            g.strides,
            lows,
            cache.pooling.window,
            cache.pooling.strides,
            cache.y.shape[1:3],
            cout,
        )
        return dwt, db

    parts = conv.run_shards(run, cache.shards)
    dwt, db = parts[0]
    for more_dwt, more_db in parts[1:]:
        dwt += more_dwt
        if db is not None:
            db += more_db
    return dx, dwt.transpose(1, 2, 3, 0), db
