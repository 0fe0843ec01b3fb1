"""Stacks of matrix products for the planned step, `out[i] = a[i] @ b[i]`, split over both cores.

Attention's products are one small matrix per sample and head: (batch, heads, T, dim) @
(batch, heads, dim, S) and the like, with operands and results that are often strided views
(the head-split view of a (batch, T, heads, dim) buffer, a transposed stack). NumPy runs such a
stack as one sgemm per matrix on one thread. Here the stack is cut in two fixed halves, run by
the compiled split's worker (`native.batched_matmul`) or else by `parallel.run`; each matrix is
the same sgemm call NumPy makes for it, so the results are NumPy's bits whoever runs a half.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import engine.native as native
from engine.backend import backend_of
from engine.fused import gemm, parallel

Array = Any


def matmul(a: Array, b: Array, out: Array) -> Array:
    """`a @ b` written into `out`, for stacks with the same leading axes: (..., M, K) @
    (..., K, N) -> (..., M, N); any view NumPy's matmul writes (a strided `out` included)."""
    xp = backend_of(out).xp
    lead = out.shape[:-2]
    count = math.prod(lead)
    flops = 2 * count * a.shape[-2] * a.shape[-1] * b.shape[-1]
    same_stack = a.shape[:-2] == b.shape[:-2] == lead
    if (
        count < 2
        or not same_stack
        or flops < gemm.SPLIT_MIN_FLOPS
        or not gemm.splitting()
        or not isinstance(out, np.ndarray)
    ):
        return xp.matmul(a, b, out=out)
    if native.batched_matmul(a, b, out):
        return out
    if lead[0] < 2:
        return xp.matmul(a, b, out=out)
    half = lead[0] // 2
    parallel.run(
        [
            lambda: xp.matmul(a[:half], b[:half], out=out[:half]),
            lambda: xp.matmul(a[half:], b[half:], out=out[half:]),
        ]
    )
    return out


def product(a: Array, b: Array) -> Array:
    """`a @ b` as `matmul` computes it, into a new array."""
    xp = backend_of(a).xp
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = xp.empty((*lead, a.shape[-2], b.shape[-1]), dtype=xp.result_type(a.dtype, b.dtype))
    return matmul(a, b, out)
