"""Scaled dot-product attention on head-split arrays, forward and backward, as Keras 3 computes it.

Arrays are (batch, heads, T, dim) for the query and (batch, heads, S, dim) for key and value;
`mask` is boolean and broadcasts to the scores (batch, heads, T, S). As Keras's masked softmax
does, masked scores are replaced by -1e9 before the softmax and the probabilities of masked
positions are set to exactly 0 after it, so a query row with nothing to attend to gives 0
(Keras's explicit-scores path; a fused backend kernel would give the mean of the values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.backend import backend_of

Array = Any
LARGE_NEGATIVE = -1e9


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


def softmax_masked(scores: Array, mask: Array | None) -> Array:
    xp = backend_of(scores).xp
    if mask is not None:
        scores = xp.where(mask, scores, scores.dtype.type(LARGE_NEGATIVE))
    e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    if mask is not None:
        e = xp.where(mask, e, scores.dtype.type(0))
    return e


def attention_forward(
    q: Array,
    k: Array,
    v: Array,
    scale: float,
    mask: Array | None,
    rate: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[Array, AttentionCache]:
    """softmax(scale * q k^T, mask) v, with inverted dropout of rate `rate` on the weights
    when `rng` is given (training)."""
    xp = backend_of(q).xp
    qs = q * q.dtype.type(scale)
    probs = softmax_masked(qs @ xp.swapaxes(k, -1, -2), mask)
    keep = None
    dropped = probs
    if rng is not None and rate > 0.0:
        keep = xp.asarray(rng.random(probs.shape, dtype=probs.dtype) >= rate)
        dropped = probs * (keep * probs.dtype.type(1.0 / (1.0 - rate)))
    return dropped @ v, AttentionCache(qs, k, v, probs, dropped, mask, keep, scale)


def attention_backward(
    cache: AttentionCache, grad_output: Array, rate: float = 0.0
) -> tuple[Array, Array, Array]:
    """Gradients for q, k and v (the query's includes the scale)."""
    xp = backend_of(grad_output).xp
    c = cache
    dv = xp.swapaxes(c.dropped, -1, -2) @ grad_output
    dprobs = grad_output @ xp.swapaxes(c.v, -1, -2)
    if c.keep is not None:
        dprobs = dprobs * (c.keep * dprobs.dtype.type(1.0 / (1.0 - rate)))
    # masked probabilities are exactly 0, so this is also zero where the mask is false
    dscores = c.probs * (dprobs - (dprobs * c.probs).sum(axis=-1, keepdims=True))
    dq = (dscores @ c.k) * dscores.dtype.type(c.scale)
    dk = xp.swapaxes(dscores, -1, -2) @ c.q
    return dq, dk, dv
