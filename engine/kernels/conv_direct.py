"""The compiled direct convolution (`_conv_direct.c`): which 2-d layers take it, and its calls.

For few channels im2col + sgemm is bound by the column matrix (kernel-area times the input,
written and read again) and by sgemm's poor speed on products 16 or 32 columns wide; the
direct kernel reads each 3x3 window from an image held in cache instead. Chosen per pass by
what was measured on W7's and W3's layer shapes (one thread, 64 images, CPU time, December 7;
direct against chunked im2col + sgemm):

- forward: 16 -> 16 on 32x32 2.2x faster, 32 -> 32 on 16x16 1.8x, 16 -> 32 strided 1.8x,
  3 -> 16 2.1x, 1 -> 32 on 28x28 1.6x, 32 -> 64 on 13x13 1.2x, 64 -> 64 on 8x8 1.7x, 32 -> 64
  strided 1.5x (the last two were slower, 0.87x and 0.84x, until a row's pixel block was sized
  to waste none past its end: 8 pixels for rows of 8, not 6 and 6);
- dW: 1.2-1.8x faster on every one of those shapes, 1.6x with 1 input channel and 4.2x with 3
  (a kernel row's (column, channel) pairs summed together);
- dX of a stride-1 convolution is the forward kernel on dy with the flipped kernel, chosen by
  the forward rule for that shape.

Those were AVX-512 timings. On an AVX2 CPU (AMD EPYC, 16 registers of 8 floats) the same
blocks were lowered through the stack and ran at 6 GFLOP/s; the kernel now takes blocks of
8-float vectors there (16 filters, 4-6 pixels), 33-64 GFLOP/s of one core's CPU time on W7's
shapes (16 images, December 7, loaded machine), 5-9x the v16 blocks.

Its sums run in another order than sgemm's (and with fused multiply-adds where the CPU has
them), so results agree with the NumPy path within float32 rounding, not bit for bit; each
output element is summed in a fixed order, so a run still repeats bit for bit on one machine.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from engine import native
from engine.kernels.conv_chunks import CHUNK_BYTES, Geometry

Array = Any
Epilogue = Callable[[Array], None]
LANES = 16
MOST_CHANNELS = 64
_NONE = np.empty(0, dtype=np.float32)  # no bias, no db


def _fits(g: Geometry, cout: int) -> bool:
    """What the kernel can do: 2-d, no dilation, no negative pads, filters in 16s."""
    return (
        len(g.kernel) == 2
        and all(d == 1 for d in g.dilation)
        and all(lo >= 0 for lo, _ in g.pads)
        and cout % LANES == 0
    )


def forward_wins(g: Geometry, cin: int, cout: int) -> bool:
    """Whether the direct forward beat im2col + sgemm on this shape: so far every measured one
    (see the module docstring), all of at most 64 channels in and out; wider layers keep
    sgemm, which reaches its full speed there."""
    return _fits(g, cout) and cin <= MOST_CHANNELS and cout <= MOST_CHANNELS


def _call(
    module: ModuleType, fn: str, arrays: tuple[Array, ...], g: Geometry, *layout: tuple[int, ...]
) -> None:
    """`module.fn(*arrays, geometry, *layout)`; the kernel (w or dw) is the second or third
    array."""
    x, kernel = arrays[0], arrays[1 if fn == "forward" else 2]
    lows = tuple(lo for lo, _ in g.pads)
    shape = tuple(x.shape)
    getattr(module, fn)(*arrays, shape, g.kernel, g.strides, lows, g.out, kernel.shape[-1], *layout)


def forward(
    x: Array, w: Array, b: Array | None, g: Geometry, y: Array, epilogue: Epilogue | None
) -> bool:
    """y (rows, Cout) = b + the convolution of x (n, h, w, Cin) with w (kh, kw, Cin, Cout), then
    `epilogue(rows)` a few images at a time while their rows are in cache, when the kernel
    applies to these arrays; returns whether it ran."""
    bias = _NONE if b is None else b
    module = native.conv_direct(x, w, bias, y)
    if module is None or not forward_wins(g, x.shape[-1], w.shape[-1]):
        return False
    if x.shape[0] == 0:
        return True  # nothing to compute, and no chunk size to derive from no rows
    per = y.shape[0] // x.shape[0]
    step = x.shape[0] if epilogue is None else max(1, CHUNK_BYTES // (per * y.shape[1] * 4))
    for i in range(0, x.shape[0], step):
        rows = y[i * per : (i + step) * per]
        _call(module, "forward", (x[i : i + step], w, bias, rows), g)
        if epilogue is not None:
            epilogue(rows)
    return True


def forward_into(
    x: Array, w: Array, g: Geometry, y: Array, start: tuple[int, int], steps: tuple[int, int]
) -> bool:
    """y[:, start[0]::steps[0], start[1]::steps[1]] = the convolution of x with w (no bias) for
    y (n, h, w, Cout), written in place by the kernel rather than through a buffer and a
    strided copy (a phase of a strided convolution's dX); returns whether it ran."""
    module = native.conv_direct(x, w, y)
    if module is None or not forward_wins(g, x.shape[-1], w.shape[-1]):
        return False
    width, channels = y.shape[2], y.shape[3]
    row = width * channels
    layout = (
        start[0] * row + start[1] * channels,
        y.shape[1] * row,
        steps[0] * row,
        steps[1] * channels,
    )
    _call(module, "forward", (x, w, _NONE, y), g, layout)
    return True


def weight_grad(
    x: Array, g: Geometry, dy2: Array, w: Array, with_bias: bool
) -> tuple[Array, Array | None] | None:
    """dW (kh, kw, Cin, Cout) and db (Cout,) when `with_bias` for dy2 (rows, Cout), summed image
    by image, or None where the direct kernel does not apply."""
    module = native.conv_direct(x, dy2, w)
    # the direct dW beat im2col + sgemm on every shape the forward was measured on
    if module is None or not forward_wins(g, x.shape[-1], w.shape[-1]):
        return None
    dw = np.empty_like(w)
    db = np.empty(w.shape[-1], dtype=w.dtype) if with_bias else None
    _call(module, "weight_grad", (x, dy2, dw, _NONE if db is None else db), g)
    return dw, db


def input_grad(dy: Array, g: Geometry, transposed: Array, dx: Array) -> bool:
    """dx (n, h, w, Cin) of a stride-1 convolution from dy (n, oh, ow, Cout) and the flipped
    kernel `conv_chunks.transposed_kernel(w)` ((kh * kw * Cout, Cin)); returns whether it ran."""
    if any(s != 1 for s in g.strides) or len(g.kernel) != 2:
        return False
    flipped = transposed.reshape(*g.kernel, dy.shape[-1], dx.shape[-1])
    return forward(dy, flipped, None, g.transposed(), dx.reshape(-1, dx.shape[-1]), None)
