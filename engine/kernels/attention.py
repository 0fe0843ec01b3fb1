"""Scaled dot-product attention on head-split arrays, forward and backward, as Keras 3 computes it.

Arrays are (batch, heads, T, dim) for the query and (batch, heads, S, dim) for key and value;
`mask` is boolean and broadcasts to the scores (batch, heads, T, S). As Keras's masked softmax
does, masked scores are replaced by -1e9 before the softmax and the probabilities of masked
positions are set to exactly 0 after it, so a query row with nothing to attend to gives 0
(Keras's explicit-scores path; a fused backend kernel would give the mean of the values).

Speed: every product is a stack over the whole batch (`fused.batched_gemm`: one sgemm per
sample and head, the stack cut in two halves over both cores), reading and writing strided
views directly: the (batch, T, heads, dim) layouts of the projections, and the transposed
weights for the key's and value's gradients (P^T g written straight into their layout instead
of (g^T P)^T through two copies). Only the key's and value's (.., S, dim) operands of the
scores and of the weights' gradient are copied transposed first: OpenBLAS packs a transposed
operand of these shapes more slowly than NumPy copies it (1.26 against 0.35 + 0.78 ms for a
(32, 4, 128, 32) half batch, one thread). The softmax and its gradient run in two batch halves
on both cores. No number depends on how the work is cut, so the bits are the same either way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.backend import backend_of
from engine.fused import batched_gemm, gemm, parallel
from engine.kernels.softmax import masked_softmax, softmax_backward

Array = Any
# Below this many score elements per call, one thread does it all (hand-offs cost ~50-75 us).
SPLIT_MIN_SCORES = 1 << 16


@dataclass
class AttentionCache:
    """What backward needs: the scaled query, key, value, probabilities, mask and dropout."""

    q: Array
    k: Array
    v: Array
    probs: Array
    dropped: Array
    mask: Array | None
    keep: Array | None
    scale: float


def causal_mask(xp: Any, t: int, s: int) -> Array:
    """(1, 1, T, S): query i sees keys j <= i (Keras's `_compute_causal_mask`)."""
    return (xp.arange(t).reshape(t, 1) >= xp.arange(s).reshape(1, s)).reshape(1, 1, t, s)


def band_mask(xp: Any, t: int, s: int, window: int) -> Array:
    """(1, 1, T, S): |i - j| < window (Keras's sliding-window mask)."""
    diff = xp.arange(t).reshape(t, 1) - xp.arange(s).reshape(1, s)
    return (xp.abs(diff) < window).reshape(1, 1, t, s)


def dropout_keep(
    shape: tuple[int, ...], dtype: Any, rate: float, rng: np.random.Generator | None, xp: Any
) -> Array | None:
    """Inverted dropout's kept-and-scaled factors for the attention weights (None: no dropout)."""
    if rng is None or rate <= 0.0:
        return None
    keep = xp.asarray(rng.random(shape, dtype=dtype) >= rate)
    return keep * np.dtype(dtype).type(1.0 / (1.0 - rate))


def _transposed(xp: Any, x: Array) -> Array:
    return xp.ascontiguousarray(xp.swapaxes(x, -1, -2))


def _cut(x: Array | None, lo: int, hi: int) -> Array | None:
    """Rows lo:hi of a batch-leading array; masks and factors broadcast over a batch of 1."""
    if x is None or x.shape[0] == 1:
        return x
    return x[lo:hi]


def _halves(rows: int, scores: int) -> list[tuple[int, int]]:
    if rows < 2 or scores < SPLIT_MIN_SCORES or not gemm.splitting():
        return [(0, rows)]
    return [(0, rows // 2), (rows // 2, rows)]


def _by_halves(weights: Array, job: Callable[[int, int], None]) -> None:
    """job(lo, hi) over batch halves of the (batch, heads, T, S) `weights`, on both cores when
    they are large enough, else on this thread."""
    pieces = _halves(weights.shape[0], weights.size)
    if len(pieces) == 1:
        job(*pieces[0])
        return
    parallel.run([functools.partial(job, lo, hi) for lo, hi in pieces])


def _softmax(scores: Array, mask: Array | None, keep: Array | None) -> tuple[Array, Array]:
    """The probabilities (in place on `scores`) and the weights after dropout."""
    xp = backend_of(scores).xp
    dropped = scores if keep is None else xp.empty_like(scores)

    def job(lo: int, hi: int) -> None:
        part = scores[lo:hi]
        probs = masked_softmax(part, _cut(mask, lo, hi))
        if probs is not part:
            part[...] = probs
        if keep is not None:
            xp.multiply(part, keep[lo:hi], out=dropped[lo:hi])

    _by_halves(scores, job)
    return scores, dropped


def attention_forward(
    q: Array,
    k: Array,
    v: Array,
    scale: float,
    mask: Array | None,
    keep: Array | None = None,
    out: Array | None = None,
) -> tuple[Array, AttentionCache]:
    """softmax(scale * q k^T, mask) v, the weights multiplied by `keep` (dropout) if given.

    The result is written into `out` when given: any (batch, heads, T, dim) view that NumPy's
    matmul writes with BLAS, such as the head-split view of a (batch, T, heads, dim) buffer,
    which then needs no copy to merge the heads back (a copy took longer than the product)."""
    xp = backend_of(q).xp
    dtype = xp.result_type(q.dtype, k.dtype, v.dtype)
    if out is None:
        out = xp.empty((*q.shape[:-1], v.shape[-1]), dtype=dtype)
    qs = q * q.dtype.type(scale)
    scores = xp.empty((*q.shape[:-1], k.shape[-2]), dtype=xp.result_type(q.dtype, k.dtype))
    batched_gemm.matmul(qs, _transposed(xp, k), scores)
    probs, dropped = _softmax(scores, mask, keep)
    batched_gemm.matmul(dropped, v, out)
    return out, AttentionCache(qs, k, v, probs, dropped, mask, keep, scale)


def attention_backward(
    cache: AttentionCache,
    grad_output: Array,
    into: tuple[Array, Array, Array] | None = None,
) -> tuple[Array, Array, Array]:
    """Gradients for q, k and v (the query's includes the scale), written into `into` (views
    as `attention_forward`'s `out`) when given."""
    c, g = cache, grad_output
    xp = backend_of(g).xp
    if into is None:
        dtype = xp.result_type(g.dtype, c.q.dtype, c.v.dtype)
        into = (
            xp.empty(c.q.shape, dtype=dtype),
            xp.empty(c.k.shape, dtype=dtype),
            xp.empty(c.v.shape, dtype=dtype),
        )
    dq, dk, dv = into
    batched_gemm.matmul(xp.swapaxes(c.dropped, -1, -2), g, dv)
    dprobs = xp.empty(c.probs.shape, dtype=xp.result_type(g.dtype, c.v.dtype))
    batched_gemm.matmul(g, _transposed(xp, c.v), dprobs)

    def job(lo: int, hi: int) -> None:
        part = dprobs[lo:hi]
        if c.keep is not None:
            part *= c.keep[lo:hi]
        softmax_backward(part, c.probs[lo:hi])

    _by_halves(dprobs, job)
    batched_gemm.matmul(dprobs, c.k, dq)
    dq *= dq.dtype.type(c.scale)
    batched_gemm.matmul(xp.swapaxes(dprobs, -1, -2), c.q, dk)
    return dq, dk, dv


def attention_probs(cache: AttentionCache) -> Array:
    """The attention weights (before dropout) of a forward pass."""
    return cache.probs
