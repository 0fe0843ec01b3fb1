"""Scaled dot-product attention on head-split arrays, forward and backward, as Keras 3 computes it.

Arrays are (batch, heads, T, dim) for the query and (batch, heads, S, dim) for key and value;
`mask` is boolean and broadcasts to the scores (batch, heads, T, S). As Keras's masked softmax
does, masked scores are replaced by -1e9 before the softmax and the probabilities of masked
positions are set to exactly 0 after it, so a query row with nothing to attend to gives 0
(Keras's explicit-scores path; a fused backend kernel would give the mean of the values).

Speed: float32 NumPy arrays go to the compiled kernel (`engine/native/_attention.c`), which
runs each (sample, head) pair's whole chain while its weights are in cache, both cores taking
samples from a shared counter without the GIL (a core slowed by another process does fewer);
its results are close to the chain below (the query is scaled before its product, the key
read transposed in place) and repeat bit for bit, whichever core computes a pair.
Measured on W6's (64, 4, 128, 32) arrays in one process, alternating, on a loaded 2-core AVX2
machine, CPU time per call (medians of 11): forward 19.4 against 29.2 ms and backward 26.7
against 45.5 ms with both cores; 23.4 against 34.4 and 32.5 against 57.1 on one.

Elsewhere (other dtypes, CuPy, the strict fake device, no compiler), inside the planned step
the batch is cut in two halves run on both cores
(`fused.parallel`), each half's whole chain (products, softmax, products) on one thread with
one hand-off per direction; each sample's numbers do not depend on the cut, so the bits are
the same. Measured against running each product as a stack over the whole batch split by the
compiled worker (`fused.batched_gemm`) and only the softmax in halves: 19.0 against 24.9 ms
forward and 27.1 against 34.3 ms backward on W6's (64, 4, 128, 32) arrays, both cores (45
alternations in one process): the halves keep their weights in cache between the steps of
the chain and wait for the other core twice instead of six times. The value's and key's
gradients are P^T g and dS^T q written straight into their (batch, T, heads, dim) layouts
through a transposed operand (1.07 against 2.65 ms for the transposed copy, product and
strided copy back, a (32, 4, 128, 32) half batch on one thread). The key and value are still
copied transposed for the scores and the weights' gradient: OpenBLAS packs a transposed
operand of these shapes more slowly than NumPy copies it (1.26 against 0.35 + 0.78 ms).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import native
from engine.backend import backend_of
from engine.fused import gemm, parallel
from engine.kernels.softmax import masked_softmax, softmax_backward
from engine.rng import kept

Array = Any
# Below this many score elements per call, one thread does it all (hand-offs cost ~50-75 us).
SPLIT_MIN_SCORES = 1 << 16


@dataclass
class AttentionCache:
    """What backward needs: the query (scaled, except for the fused kernel's), key, value,
    probabilities, mask and dropout. The key and value, and the fused kernel's query, are the
    caller's arrays, not copies (a copy of each would cost a pass over 4 MB per W6 layer): a
    caller must not write to them between forward and backward. MultiHeadAttention hands over
    its fresh projections, which nothing else holds."""

    q: Array
    k: Array
    v: Array
    probs: Array
    dropped: Array
    mask: Array | None
    keep: Array | None
    scale: float
    fused: bool = False


def causal_mask(xp: Any, t: int, s: int) -> Array:
    """(1, 1, T, S): query i sees keys j <= i (Keras's `_compute_causal_mask`); read-only and
    shared between calls on NumPy, where it is made once per shape."""
    if xp is np:
        return _numpy_causal(t, s)
    return (xp.arange(t).reshape(t, 1) >= xp.arange(s).reshape(1, s)).reshape(1, 1, t, s)


def band_mask(xp: Any, t: int, s: int, window: int) -> Array:
    """(1, 1, T, S): |i - j| < window (Keras's sliding-window mask); on NumPy read-only and
    made once per shape, like `causal_mask`."""
    if xp is np:
        return _numpy_band(t, s, window)
    diff = xp.arange(t).reshape(t, 1) - xp.arange(s).reshape(1, s)
    return (xp.abs(diff) < window).reshape(1, 1, t, s)


@functools.lru_cache(maxsize=16)
def _numpy_causal(t: int, s: int) -> Array:
    return _frozen(np.arange(t).reshape(t, 1) >= np.arange(s).reshape(1, s), t, s)


@functools.lru_cache(maxsize=16)
def _numpy_band(t: int, s: int, window: int) -> Array:
    diff = np.arange(t).reshape(t, 1) - np.arange(s).reshape(1, s)
    return _frozen(np.abs(diff) < window, t, s)


def _frozen(mask: Array, t: int, s: int) -> Array:
    mask = mask.reshape(1, 1, t, s)
    mask.flags.writeable = False
    return mask


def dropout_keep(
    shape: tuple[int, ...], dtype: Any, rate: float, rng: np.random.Generator | None, xp: Any
) -> Array | None:
    """Inverted dropout's kept-and-scaled factors for the attention weights (None: no dropout)."""
    if rng is None or rate <= 0.0:
        return None
    keep = xp.asarray(kept(rng, shape, rate, dtype))
    return keep * np.dtype(dtype).type(1.0 / (1.0 - rate))


def _transposed(xp: Any, x: Array) -> Array:
    return xp.ascontiguousarray(xp.swapaxes(x, -1, -2))


def _forward(
    q: Array,
    k: Array,
    v: Array,
    scale: float,
    mask: Array | None,
    keep: Array | None,
    out: Array,
) -> AttentionCache:
    xp = backend_of(q).xp
    qs = q * q.dtype.type(scale)
    probs = masked_softmax(qs @ _transposed(xp, k), mask)
    dropped = probs if keep is None else probs * keep
    xp.matmul(dropped, v, out=out)
    return AttentionCache(qs, k, v, probs, dropped, mask, keep, scale)


def _backward(c: AttentionCache, grad_output: Array, dq: Array, dk: Array, dv: Array) -> None:
    xp = backend_of(grad_output).xp
    xp.matmul(xp.swapaxes(c.dropped, -1, -2), grad_output, out=dv)
    dprobs = grad_output @ _transposed(xp, c.v)
    if c.keep is not None:
        dprobs *= c.keep
    softmax_backward(dprobs, c.probs)
    xp.matmul(dprobs, c.k, out=dq)
    dq *= dq.dtype.type(c.scale)
    xp.matmul(xp.swapaxes(dprobs, -1, -2), c.q, out=dk)


def _cut(x: Array | None, lo: int, hi: int) -> Array | None:
    """Rows lo:hi of a batch-leading array; masks and factors broadcast over a batch of 1."""
    if x is None or x.shape[0] == 1:
        return x
    return x[lo:hi]


def _halves(rows: int, scores: int) -> list[tuple[int, int]]:
    if rows < 2 or scores < SPLIT_MIN_SCORES or not gemm.splitting():
        return [(0, rows)]
    return [(0, rows // 2), (rows // 2, rows)]


def _run(pieces: list[tuple[int, int]], job: Callable[[int, int], Any]) -> list[Any]:
    """job(lo, hi) for each piece: on this thread alone for one piece, else on both cores."""
    if len(pieces) == 1:
        return [job(*pieces[0])]
    results: list[Any] = [None] * len(pieces)

    def task(i: int) -> Callable[[], None]:
        def go() -> None:
            results[i] = job(*pieces[i])

        return go

    parallel.run([task(i) for i in range(len(pieces))])
    return results


def _mask_bytes(mask: Array | None, t: int, s: int) -> Array | None:
    """A (batch or 1, heads or 1, T, S) boolean mask as the fused kernel's C-contiguous uint8."""
    if mask is None:
        return None
    full = np.broadcast_to(mask, (*mask.shape[:2], t, s))
    return np.ascontiguousarray(full, dtype=np.bool_).view(np.uint8)


def _fused_forward(
    q: Array,
    k: Array,
    v: Array,
    scale: float,
    mask: Array | None,
    keep: Array | None,
    out: Array,
) -> AttentionCache | None:
    """The compiled kernel's forward (`native.attention_forward`), or None where it does not
    apply (another backend or dtype, layouts it does not take)."""
    if type(q) is not np.ndarray or q.dtype != np.float32 or q.ndim != 4:
        return None
    batch, heads, t, _ = q.shape
    s = k.shape[2]
    if mask is not None and mask.ndim != 4:
        return None
    if keep is not None and keep.shape != (batch, heads, t, s):
        return None
    flags = _mask_bytes(mask, t, s)
    probs = np.empty((batch, heads, t, s), dtype=np.float32)
    split = _split(batch * heads * t * s)
    if not native.attention_forward(q, k, v, flags, keep, probs, out, scale, split):
        return None
    return AttentionCache(q, k, v, probs, probs, mask, keep, scale, fused=True)


def _split(scores: int) -> bool:
    return scores >= SPLIT_MIN_SCORES and gemm.splitting()


def attention_forward(
    q: Array,
    k: Array,
    v: Array,
    scale: float,
    mask: Array | None,
    keep: Array | None = None,
    out: Array | None = None,
) -> tuple[Array, list[tuple[tuple[int, int], AttentionCache]]]:
    """softmax(scale * q k^T, mask) v, the weights multiplied by `keep` (dropout) if given.

    The result is written into `out` when given: any (batch, heads, T, dim) view that NumPy's
    matmul writes with BLAS, such as the head-split view of a (batch, T, heads, dim) buffer,
    which then needs no copy to merge the heads back (a copy took longer than the product)."""
    xp = backend_of(q).xp
    if out is None:
        out = xp.empty((*q.shape[:-1], v.shape[-1]), dtype=xp.result_type(q.dtype, v.dtype))
    fused = _fused_forward(q, k, v, scale, mask, keep, out)
    if fused is not None:
        return out, [((0, q.shape[0]), fused)]
    pieces = _halves(q.shape[0], q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2])
    caches = _run(
        pieces,
        lambda lo, hi: _forward(
            q[lo:hi],
            k[lo:hi],
            v[lo:hi],
            scale,
            _cut(mask, lo, hi),
            _cut(keep, lo, hi),
            out[lo:hi],
        ),
    )
    return out, list(zip(pieces, caches, strict=True))


def attention_backward(
    caches: list[tuple[tuple[int, int], AttentionCache]],
    grad_output: Array,
    into: tuple[Array, Array, Array] | None = None,
) -> tuple[Array, Array, Array]:
    """Gradients for q, k and v (the query's includes the scale), written into `into` (views
    as `attention_forward`'s `out`) when given."""
    xp = backend_of(grad_output).xp
    if into is None:
        first = caches[0][1]
        rows = grad_output.shape[0]
        dtype = xp.result_type(grad_output.dtype, first.q.dtype, first.v.dtype)
        into = (
            xp.empty((rows, *first.q.shape[1:]), dtype=dtype),
            xp.empty((rows, *first.k.shape[1:]), dtype=dtype),
            xp.empty((rows, *first.v.shape[1:]), dtype=dtype),
        )
    dq, dk, dv = into
    if len(caches) == 1 and caches[0][1].fused:
        c = caches[0][1]
        split = _split(c.probs.size)
        ran = native.attention_backward(
            c.q, c.k, c.v, c.keep, c.probs, grad_output, into, c.scale, split
        )
        if ran:
            return dq, dk, dv
        _scale_query(c)
    by_piece = dict(caches)
    _run(
        [piece for piece, _ in caches],
        lambda lo, hi: _backward(
            by_piece[(lo, hi)], grad_output[lo:hi], dq[lo:hi], dk[lo:hi], dv[lo:hi]
        ),
    )
    return dq, dk, dv


def _scale_query(c: AttentionCache) -> None:
    """Turn a fused forward's cache into the NumPy backward's (the kernel declined a gradient
    layout): the scaled query and the dropped weights."""
    c.q = c.q * c.q.dtype.type(c.scale)
    c.dropped = c.probs if c.keep is None else c.probs * c.keep
    c.fused = False


def attention_probs(caches: list[tuple[tuple[int, int], AttentionCache]]) -> Array:
    """The attention weights (before dropout) of a forward pass, whole batch."""
    xp = backend_of(caches[0][1].probs).xp
    return xp.concatenate([c.probs for _, c in caches])
