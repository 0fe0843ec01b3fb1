"""Matrix products for the planned step: one BLAS thread per core, split over both cores.

Measured on the 2-core machine with the other core busy, OpenBLAS's own two threads make a
(128, 784) @ (784, 512) float32 product 10-30x slower (25-64 ms instead of 2 ms) because each
product waits for a descheduled thread several times. Inside `planned_blas()` BLAS runs one
thread and large products are split by output rows into two halves, run by the compiled
split's worker (`native.split_matmul`) or else by `parallel.run` (by columns when the output
is wider than tall, see `halves`): when the other core is busy
this thread computes both, and when it is free it takes one. The split is fixed by the
shapes, so results are bit-identical from run to run; it changes the last bits against an
unsplit product, so it applies to every array in host memory (the strict fake device
included, which then matches the CPU bit for bit) and never to CuPy's.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import engine.native as native
from engine.backend import backend_of
from engine.fused import parallel
from engine.fused.blas_threads import single_threaded_blas

Array = Any

# Below about 8 MFLOP a product takes under ~90 us on one thread: the hand-off costs more.
SPLIT_MIN_FLOPS = 1 << 23
_state = threading.local()


@contextlib.contextmanager
def planned_blas() -> Iterator[None]:
    """Run the block with one BLAS thread and split large products (see the module docstring)."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        with single_threaded_blas():
            yield
    finally:
        _state.depth = depth


@contextlib.contextmanager
def whole_products() -> Iterator[None]:
    """Compute every product in the block whole, on this thread.

    For callers that already keep both cores busy with independent work (`parallel.share`):
    splitting as well would only add hand-offs.
    """
    whole = getattr(_state, "whole", False)
    _state.whole = True
    try:
        yield
    finally:
        _state.whole = whole


def splitting() -> bool:
    """Whether work may be split over both cores here: inside `planned_blas`, and not under
    `whole_products` (whose caller already keeps both cores busy)."""
    return bool(getattr(_state, "depth", 0)) and not getattr(_state, "whole", False)


ALL = slice(None)


@dataclass(frozen=True)
class BiasRelu:
    """A product's epilogue: add `bias` (if any), then relu (if set), on a block just computed:
    rows `lo:hi` and the columns `cols` of `out`."""

    bias: Array | None
    relu: bool

    def __call__(self, out: Array, lo: int, hi: int, cols: slice = ALL) -> None:
        block = out[lo:hi, cols]
        bias = None if self.bias is None else self.bias[cols]
        if native.bias_relu(block, bias, self.relu):
            return
        if bias is not None:
            block += bias
        if self.relu:
            backend_of(out).xp.maximum(block, 0, out=block)


def halves(rows: int, cols: int) -> list[tuple[slice, slice]]:
    """The two pieces (rows, columns) of a split product's output: by columns when it has
    fewer rows than columns, else by rows.

    Each piece's BLAS call packs the whole of the operand it does not split: split by rows, both
    pieces pack all of `b`; by columns, all of `a`. Keeping the smaller operand whole packs
    less (W2's (128, 784) @ (784, 512), one thread: 568 us for two column pieces against 628
    for two row pieces and 567 unsplit; its (512, 128)-transposed weight gradients favour rows).
    """
    if rows < cols:
        return [(ALL, slice(0, cols // 2)), (ALL, slice(cols // 2, cols))]
    return [(slice(0, rows // 2), ALL), (slice(rows // 2, rows), ALL)]


def _piece(a: Array, b: Array, out: Array, piece: tuple[slice, slice], epilogue: Any) -> None:
    rows, cols = piece
    backend_of(out).xp.matmul(a[rows], b[:, cols], out=out[rows, cols])
    if epilogue is not None:
        lo, hi, _ = rows.indices(out.shape[0])
        epilogue(out, lo, hi, cols)


def matmul(a: Array, b: Array, out: Array, epilogue: BiasRelu | None = None) -> Array:
    """`a @ b` written into `out` (2-D arrays), split over two threads when it pays.

    The epilogue runs on each piece as soon as it is computed, on the thread that
    computed it, so a bias and relu run on both cores while the rows are still in cache
    instead of as passes over the whole output afterwards (measured: W5 inference 4% faster).
    Plain NumPy operands go to the compiled split (`native.split_matmul`), which hands the
    second piece to a spinning worker without the GIL; others to two Python threads. Both
    make the same BLAS calls, so the results are the same bits.
    """
    rows = a.shape[0]
    if (
        rows < 2
        or 2 * rows * a.shape[1] * b.shape[1] < SPLIT_MIN_FLOPS
        or not splitting()
        or not isinstance(out, np.ndarray)
    ):
        _whole(a, b, out, epilogue)
        return out
    if native.split_matmul(a, b, out, *_bias_relu(epilogue)):
        return out
    parallel.run(
        [functools.partial(_piece, a, b, out, piece, epilogue) for piece in halves(*out.shape)]
    )
    return out


def _bias_relu(epilogue: BiasRelu | None) -> tuple[Array | None, bool]:
    return (None, False) if epilogue is None else (epilogue.bias, epilogue.relu)


def _whole(a: Array, b: Array, out: Array, epilogue: BiasRelu | None) -> None:
    """The product on this thread: by the compiled split's own sgemm where BLAS runs one
    thread anyway (inside `planned_blas`) and it applies (NumPy's bits, 4-6% faster on W5's
    products), else NumPy's."""
    one_thread = bool(getattr(_state, "depth", 0)) and isinstance(out, np.ndarray)
    if one_thread and native.whole_matmul(a, b, out, *_bias_relu(epilogue)):
        return
    backend_of(out).xp.matmul(a, b, out=out)
    if epilogue is not None:
        epilogue(out, 0, a.shape[0])


Product = tuple[Array, Array, Array]


def matmuls(products: list[Product]) -> None:
    """`out = a @ b` for each independent `(a, b, out)` (2-D arrays).

    Two of them large enough to split run whole, one on each core: one hand-off instead of
    one per product, and no operand packed twice as the halves of a split product pack it (a
    Dense layer's weight and input gradients need the same work, so the cores finish
    together). Each is NumPy's whole product, so the results are those of `whole_products`.
    """
    if len(products) != 2 or not _pair_pays(products):
        for a, b, out in products:
            matmul(a, b, out)
        return
    first, second = products
    if native.pair_matmul(first, second):
        return
    xp = backend_of(first[2]).xp
    parallel.run([functools.partial(xp.matmul, a, b, out=out) for a, b, out in products])


def _pair_pays(products: list[Product]) -> bool:
    (a1, b1, out1), (a2, b2, out2) = products
    flops = 2 * (a1.shape[0] * a1.shape[1] * b1.shape[1] + a2.shape[0] * a2.shape[1] * b2.shape[1])
    plain = isinstance(out1, np.ndarray) and isinstance(out2, np.ndarray)
    return flops >= SPLIT_MIN_FLOPS and plain and splitting()
