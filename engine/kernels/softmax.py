"""The masked softmax over the last axis and its gradient, as attention computes them, with one
compiled pass each where `engine.native` has it.

Forward, as Keras's masked softmax: masked scores become -1e9, each row's max is subtracted,
exp, each row is divided by its sum, and masked probabilities are set to exactly 0. Backward:
dS = P * (dP - rowsum(dP * P)). exp is `gate_exp` (float32 operations that the compiled pass
repeats; NumPy's own exp is a routine whose last bits only NumPy knows) and the row sums are
NumPy's pairwise sums, which the compiled pass repeats too, so both paths agree bit for bit.
The NumPy composite makes about ten passes over the (batch, heads, T, S) weights in each
direction; the compiled ones make one, a row at a time in cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import native
from engine.backend import backend_of
from engine.kernels.gate_exp import gate_exp

Array = Any
LARGE_NEGATIVE = -1e9


def _full_mask(mask: Array | None, shape: tuple[int, ...]) -> Array | None:
    """The mask at the scores' full shape, one byte per score, as the compiled pass reads it
    (no copy when it already is one)."""
    if mask is None:
        return None
    return np.ascontiguousarray(np.broadcast_to(mask, shape))


def _compiled_may_run(scores: Array) -> bool:
    """Whether the compiled pass takes these scores: only then is the mask worth spreading to
    their shape (float64 or CuPy scores would make the copy for nothing)."""
    return type(scores) is np.ndarray and scores.dtype == np.float32 and native.available()


def masked_softmax(scores: Array, mask: Array | None) -> Array:
    """The probabilities of `scores` (..., S) where boolean `mask` (broadcasting to them) allows;
    computed in place on `scores` when it can be, and returned."""
    if _compiled_may_run(scores) and native.softmax_rows(scores, _full_mask(mask, scores.shape)):
        return scores
    xp = backend_of(scores).xp
    if mask is not None:
        scores = xp.where(mask, scores, scores.dtype.type(LARGE_NEGATIVE))
    scores -= scores.max(axis=-1, keepdims=True)
    gate_exp(scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    if mask is not None:
        scores *= mask
    return scores


def softmax_backward(dprobs: Array, probs: Array) -> None:
    """dprobs = probs * (dprobs - rowsum(dprobs * probs)) in place: the scores' gradient. Masked
    probabilities are exactly 0, so it is 0 there too."""
    if native.softmax_grad_rows(dprobs, probs):
        return
    dprobs -= (dprobs * probs).sum(axis=-1, keepdims=True)
    dprobs *= probs
