"""Matrix products for the planned step: one BLAS thread per core, split over both cores.

Measured on the 2-core machine with the other core busy, OpenBLAS's own two threads make a
(128, 784) @ (784, 512) float32 product 10-30x slower (25-64 ms instead of 2 ms) because each
product waits for a descheduled thread several times. Inside `planned_blas()` BLAS runs one
thread and large products are split by output rows into two halves, run by the compiled
split's worker (`native.split_matmul`) or else by `parallel.run`: when the other core is busy
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
from engine.kernels.recurrent import single_threaded_blas

Array = Any

# Below about 8 MFLOP a product takes under ~90 us on one thread: the hand-off costs more.
SPLIT_MIN_FLOPS = 1 << 23
# Two pieces, one per core: four measured no better on the loaded machine.
PIECES = 2
_state = threading.local()


@contextlib.contextmanager
def planned_blas() -> Iterator[None]:
    """Run the block with one BLAS thread and split large products (see the module docstring)."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        if depth:
            yield
        else:
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


@dataclass(frozen=True)
class BiasRelu:
    """A product's epilogue: add `bias` (if any), then relu (if set), on rows just computed."""

    bias: Array | None
    relu: bool

    def __call__(self, out: Array, lo: int, hi: int) -> None:
        rows = out[lo:hi]
        if native.bias_relu(rows, self.bias, self.relu):
            return
        if self.bias is not None:
            rows += self.bias
        if self.relu:
            backend_of(out).xp.maximum(rows, 0, out=rows)


def _rows(a: Array, b: Array, out: Array, lo: int, hi: int, epilogue: BiasRelu | None) -> None:
    backend_of(out).xp.matmul(a[lo:hi], b, out=out[lo:hi])
    if epilogue is not None:
        epilogue(out, lo, hi)


def matmul(a: Array, b: Array, out: Array, epilogue: BiasRelu | None = None) -> Array:
    """`a @ b` written into `out` (2-D arrays), split over two threads when it pays.

    The epilogue runs on each piece's rows as soon as they are computed, on the thread that
    computed them, so a bias and relu run on both cores while the rows are still in cache
    instead of as passes over the whole output afterwards (measured: W5 inference 4% faster).
    Plain NumPy operands go to the compiled split (`native.split_matmul`), which hands the
    second piece to a spinning worker without the GIL; others to two Python threads. Both
    make the same BLAS calls, so the results are the same bits.
    """
    rows = a.shape[0]
    xp = backend_of(out).xp
    if (
        rows < 2
        or 2 * rows * a.shape[1] * b.shape[1] < SPLIT_MIN_FLOPS
        or not splitting()
        or not isinstance(out, np.ndarray)
    ):
        xp.matmul(a, b, out=out)
        if epilogue is not None:
            epilogue(out, 0, rows)
        return out
    bias, relu = (epilogue.bias, epilogue.relu) if epilogue is not None else (None, False)
    if native.split_matmul(a, b, out, bias, relu):
        return out
    bounds = [rows * i // PIECES for i in range(PIECES + 1)]
    parallel.run(
        [
            functools.partial(_rows, a, b, out, lo, hi, epilogue)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
            if hi > lo
        ]
    )
    return out
