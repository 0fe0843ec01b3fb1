"""A one-group convolution as im2col and a product, a few images at a time.

The whole shard's column matrix is kernel-area times the input (37.7 MB per half batch on W7's
first stage): writing it, reading it for the product and again in backward made the layer
memory-bound, and each fresh buffer that size was page-faulted in anew. Built for a few images
at a time into one reused buffer of about CHUNK_BYTES, the columns stay in the core's cache
while the product reads them (W7's 32x32x16 layer: 42 -> 14 ms per half-batch forward). Backward
rebuilds them chunk by chunk for dW, so the cache keeps only the input, not the columns.

dX of a stride-1 convolution is the convolution of dy (padded so that each input position sees
every output its windows reached) with the kernel flipped over its spatial axes and its
channel axes swapped: the same chunked product with K = kernel * Cout, instead of col2im's one
product per kernel offset with K = Cout.

Chunks depend only on shapes, so results are the same from run to run, on the CPU and on the
strict fake device alike; dW sums the chunks' products in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.backend import backend_of
from engine.kernels.im2col import column_source, columns

Array = Any
# about half a core's L2: the chunk's columns, its rows of the output and the kernel fit
CHUNK_BYTES = 576 * 1024


@dataclass(frozen=True)
class Geometry:
    """A convolution's shape: kernel, strides, dilation and (before, after) pads per axis, and
    the input's and output's spatial sizes."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    spatial: tuple[int, ...]
    out: tuple[int, ...]

    def transposed(self) -> Geometry:
        """The stride-1 convolution of dy that gives dX: pads reach every output a window of
        the input position touched."""
        pads = tuple(
            ((k - 1) * d - lo, n + lo - o)
            for k, d, (lo, _), n, o in zip(
                self.kernel, self.dilation, self.pads, self.spatial, self.out, strict=True
            )
        )
        return Geometry(self.kernel, self.strides, self.dilation, pads, self.out, self.spatial)


def _chunks(x: Array, per: int, width: int) -> tuple[list[slice], Array]:
    """Slices of whole images whose columns (per rows of `width` each) fit CHUNK_BYTES, and
    one buffer for them; a device array (CuPy) takes its batch in one piece."""
    n = x.shape[0]
    step = max(1, CHUNK_BYTES // (per * width * x.itemsize)) if isinstance(x, np.ndarray) else n
    step = max(1, min(step, n))
    buffer = backend_of(x).xp.empty(step * per * width, dtype=x.dtype)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)], buffer


def _rows(s: slice, per: int) -> slice:
    return slice(s.start * per, s.stop * per)


def product(x: Array, g: Geometry, kernel_matrix: Array, y: Array, epilogue: Any) -> None:
    """y (rows, Cout) = columns of x (N, *spatial, Cin) @ kernel_matrix, chunk by chunk, with
    `epilogue(rows)` (bias, activation) on each chunk's rows while they are in cache."""
    xp = backend_of(y).xp
    per = math.prod(g.out)
    chunks, buffer = _chunks(x, per, kernel_matrix.shape[0])
    source, pads = column_source(x, g.pads, buffer)
    for s in chunks:
        cols = columns(source[s], g.kernel, g.strides, g.dilation, pads, g.out, buffer)
        rows = y[_rows(s, per)]
        xp.matmul(cols, kernel_matrix, out=rows)
        if epilogue is not None:
            epilogue(rows)


def weight_grad(x: Array, g: Geometry, dy2: Array, kernel_rows: int) -> Array:
    """dW as a (kernel * Cin, Cout) matrix: the chunks' columns transposed times dy's rows,
    summed in chunk order."""
    per = math.prod(g.out)
    chunks, buffer = _chunks(x, per, kernel_rows)
    source, pads = column_source(x, g.pads, buffer)
    dw = None
    for s in chunks:
        cols = columns(source[s], g.kernel, g.strides, g.dilation, pads, g.out, buffer)
        part = cols.T @ dy2[_rows(s, per)]
        if dw is None:
            dw = part
        else:
            dw += part
    if dw is None:  # an empty batch: no chunks, no terms
        return backend_of(dy2).xp.zeros((kernel_rows, dy2.shape[1]), dtype=dy2.dtype)
    return dw


def transposed_kernel(w: Array) -> Array:
    """The (kernel * Cout, Cin) matrix of w (*kernel, Cin, Cout) flipped over its spatial axes."""
    nd = w.ndim - 2
    flipped = backend_of(w).xp.flip(w, axis=tuple(range(nd))).swapaxes(-1, -2)
    return flipped.reshape(-1, w.shape[-2])


def input_grad(dy: Array, g: Geometry, transposed: Array, dx: Array) -> None:
    """dx (n, *spatial, Cin) of a stride-1 convolution from dy (n, *out, Cout)."""
    product(dy, g.transposed(), transposed, dx.reshape(-1, dx.shape[-1]), None)
