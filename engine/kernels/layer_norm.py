"""LayerNormalization over the last axis as one compiled pass forward and one backward.

`engine.layers.normalization.LayerNormalization` keeps the NumPy composite (mean, centre,
variance, 1 / sqrt, scale and shift: seven passes over the input forward, and backward nine
plus gamma's and beta's column sums, each a short-row reduction or a broadcast); these
functions run the same float32 operations row by row in cache, NumPy's pairwise row sums and
its row-after-row column sums included, and return None where the compiled kernels do not
apply (other axes, other dtypes, another backend, no C compiler).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import native

Array = Any


def _applies(x: Array) -> bool:
    return native.available() and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim > 0


def _row(p: Array | None) -> Array | None:
    """A (1, ..., 1, C) broadcast view of a weight as the kernel's (C,)."""
    return None if p is None else p.reshape(-1)


def forward_last_axis(
    x: Array, gamma: Array | None, beta: Array | None, eps: float
) -> tuple[Array, Array, Array] | None:
    """(y, xhat, inv) with inv of shape (..., 1), or None."""
    if not _applies(x):
        return None
    x = np.ascontiguousarray(x)
    y, xhat = np.empty_like(x), np.empty_like(x)
    inv = np.empty((*x.shape[:-1], 1), dtype=np.float32)
    if not native.layer_norm_rows(x, _row(gamma), _row(beta), eps, y, xhat, inv):
        return None
    return y, xhat, inv


def backward_last_axis(
    g: Array,
    xhat: Array,
    inv: Array,
    gamma: Array | None,
    dgamma: Array | None,
    dbeta: Array | None,
) -> Array | None:
    """The input's gradient (d - mean(d) - xhat * mean(d * xhat)) * inv with d = g * gamma,
    and gamma's and beta's gradients written into `dgamma` and `dbeta` where given; or None
    (then nothing was written)."""
    if not _applies(g):
        return None
    g = np.ascontiguousarray(g)
    dx = np.empty_like(g)
    if not native.layer_norm_grad_rows(g, xhat, inv, _row(gamma), dx, dgamma, dbeta):
        return None
    return dx
