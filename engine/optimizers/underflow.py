"""Optimizer state that decays below its dtype's normal range becomes +0.

A slot that shrinks geometrically while its gradient stays zero (the moments of a dead ReLU
unit, RMSprop's velocity, SGD's momentum) leaves float32's normal range after some hundreds of
steps, and Intel cores compute with such denormal numbers in slow microcode: W2's third epoch
took 6.0 s of CPU with Nadam against 2.1 s for its first, 2.7 against 1.7 with RMSprop. XLA
(Keras on JAX) and TensorFlow set the CPU to flush them for the same reason; flushing the state
in the update itself keeps the result the same on every device, with or without the compiled
kernels. Only values below the normal range of the state's own dtype change, which Keras's
arithmetic would have left denormal: float64 state keeps the numbers under float32's range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.backend import backend_of

Array = Any

# float32's smallest normal number
FLOAT32_TINY = 1.1754944e-38
# the smallest normal number of float64 state; every other dtype is flushed at float32's
_TINY = {np.dtype(np.float64): float(np.finfo(np.float64).tiny)}


def _tiny(x: Array) -> float:
    return _TINY.get(x.dtype, FLOAT32_TINY)


def flush_signed(x: Array, scratch: Array) -> None:
    """`x = 0` where `|x|` is below the normal range (-0.0 included), in place; NaN stays."""
    xp = backend_of(x).xp
    xp.abs(x, out=scratch)
    xp.copyto(x, 0.0, where=scratch < _tiny(x))


def flush_nonnegative(x: Array) -> None:
    """`flush_signed` for a slot that is never negative (a running mean of squares): one pass."""
    backend_of(x).xp.copyto(x, 0.0, where=x < _tiny(x))
