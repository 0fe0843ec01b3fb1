"""A ReLU run inside the pass of the layer before it, split over both cores.

The planned step runs an Add followed by a plain ReLU as one call (`engine/train/fusion.py`):
forward, one compiled pass reads both inputs and writes `maximum(a + b, 0)`, where NumPy
writes the sum and then reads it back for the maximum; backward, ReLU's gradient `dy * (y >
0)` read from the output. Both are element-wise, so each half of the elements goes to one
core with the same result. These functions return None where the kernels do not apply (not
built, not plain float32 arrays of one shape); the caller then runs the NumPy composite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine import native
from engine.kernels.batch_norm import halves
from engine.kernels.conv import run_shards

Array = Any


def _on_both_cores(kernel: Callable[[Array, Array, Array], Any], a: Array, b: Array) -> Any:
    """kernel(a, b, out) on each half of the elements, or None where it does not apply."""
    if not native.elementwise(a, b):
        return None
    out = np.empty_like(b)
    a1, b1, out1 = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    run_shards(lambda i, s: kernel(a1[s], b1[s], out1[s]), halves(a.size, a.size))
    return out


def add_relu(a: Array, b: Array) -> Array | None:
    """`maximum(a + b, 0)`, bit for bit as NumPy's sum and maximum give it."""
    return _on_both_cores(native.add_relu, a, b)


def relu_grad(y: Array, dy: Array) -> Array | None:
    """`dy * (y > 0)` for a ReLU's output y, bit for bit as the ReLU's own backward gives it."""
    return _on_both_cores(native.relu_grad, y, dy)
