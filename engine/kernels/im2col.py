"""The im2col matrix of a channels-last convolution: every window of x as one row.

`columns` pads x, takes the zero-copy window view and copies it into a (N * out, kernel * C)
matrix in a given buffer. With the compiled extension a 1-d or 2-d plain float32 call writes
the matrix straight from the unpadded input (the same values: it only copies), without the
padded copy of x and NumPy's strided-copy iterator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from engine import native
from engine.backend import backend_of

Array = Any


def pad_input(x: Array, pads: Sequence[tuple[int, int]], value: float = 0.0) -> Array:
    """Pad the spatial axes of (N, *spatial, C) once; returns x itself when nothing is padded.

    A filled array with x copied into its middle: the same values as `pad`, whose Python-level
    bookkeeping cost about 1 ms a call (measured on W3's chunks of 4 images)."""
    if not any(lo or hi for lo, hi in pads):
        return x
    xp = backend_of(x).xp
    spatial = (n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads, strict=True))
    out = xp.full((x.shape[0], *spatial, x.shape[-1]), value, dtype=x.dtype)
    inner = (slice(lo, lo + n) for n, (lo, _) in zip(x.shape[1:-1], pads, strict=True))
    out[(slice(None), *inner, slice(None))] = x
    return out


def column_source(
    x: Array, pads: Sequence[tuple[int, int]], cols: Array
) -> tuple[Array, tuple[tuple[int, int], ...]]:
    """The array `columns` should read chunk by chunk, and the pads left for it: x itself when
    the compiled kernel will build the columns (it pads as it copies), else x padded once here,
    instead of once per chunk."""
    if x.ndim in (3, 4) and native.im2col(x, cols) is not None:
        return x, tuple(pads)
    return pad_input(x, pads), tuple((0, 0) for _ in pads)


def window_view(
    xpad: Array,
    out: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> Array:
    """A zero-copy (N, *out, *kernel, C) view of the windows of a padded (N, *spatial, C) array."""
    xp = backend_of(xpad).xp
    sn, *ss, sc = xpad.strides
    shape = (xpad.shape[0], *out, *kernel, xpad.shape[-1])
    step = [s * st for s, st in zip(ss, strides, strict=True)]
    dil = [s * d for s, d in zip(ss, dilation, strict=True)]
    return xp.lib.stride_tricks.as_strided(xpad, shape, (sn, *step, *dil, sc))


def columns(
    x: Array,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    pads: Sequence[tuple[int, int]],
    out: Sequence[int],
    buffer: Array,
) -> Array:
    """The (N * prod(out), prod(kernel) * C) column matrix of x (N, *spatial, C) zero-padded by
    `pads` (before, after) per axis, written into the front of the flat `buffer`: row (n, *o)
    holds the window at o, offsets in C order."""
    shape = (x.shape[0] * math.prod(out), math.prod(kernel) * x.shape[-1])
    cols = buffer[: shape[0] * shape[1]].reshape(shape)
    compiled = native.im2col(x, cols) if x.ndim in (3, 4) else None
    if compiled is None:
        view = window_view(pad_input(x, pads), out, kernel, strides, dilation)
        cols.reshape(view.shape)[...] = view
        return cols
    # a 1-d convolution is a 2-d one over an image one row high
    one = (1,) if x.ndim == 3 else ()
    n, *spatial, c = x.shape
    compiled.im2col(
        x,
        cols,
        (n, *one, *spatial, c),
        (*one, *kernel),
        (*one, *strides),
        (*one, *dilation),
        (*((0,) if one else ()), *(lo for lo, _ in pads)),
        (*one, *out),
    )
    return cols
