"""One BLAS thread for a block of code, the engine's policy for every product it plans.

`fit`, `evaluate` and `predict` (`fused.gemm.planned_blas`), the recurrent loops and the split
convolution passes all run inside it; it lives here, in the performance layer, so that none of
them imports another's module for it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

# how many `single_threaded_blas` blocks this thread is inside
_blas_limit = threading.local()


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread (when threadpoolctl is installed).

    A recurrent layer does hundreds of small GEMMs per batch ((N, u) @ (u, k*u) per step);
    OpenBLAS splits even those over its threads, and when the other core is busy every step
    waits for it. Measured on W4 with a loaded 2-core machine: 2.6-28 s per 512-sample epoch
    with OpenBLAS's default 2 threads, 0.43-0.8 s with one (PyTorch, one thread: 0.44-0.55 s).
    Inside an outer block on this thread the limit already holds, so nothing is set again:
    threadpoolctl's set and restore cost 11 us on the Intel machine, 2 us the nested check,
    and a W7 step enters some sixty blocks (each split convolution and BatchNormalization
    pass) inside `fit`'s one.
    """
    depth = getattr(_blas_limit, "depth", 0)
    controller = _blas_controller() if depth == 0 else None
    _blas_limit.depth = depth + 1
    try:
        if controller is None:
            yield
        else:
            with controller.limit(limits=1, user_api="blas"):
                yield
    finally:
        _blas_limit.depth = depth
