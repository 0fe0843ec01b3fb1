"""BatchNormalization over channels-last rows, as compiled passes.

The layer's NumPy composite (engine/layers/normalization.py) makes about six passes over the
activations forward and seven backward, each a separate NumPy call; on W7's (128, 32, 32, 16)
activations those passes were a third of a training step. `_batch_norm.c` does the same
float32 operations in the same order in two passes forward and two backward, so the results
are bit-identical. Large calls share the element-wise passes between both cores by rows; the
per-channel sums run on one thread: the kernel sums rows in order to keep NumPy's bits, so
two threads could only split the channels, and then each streams every row's cache lines
(all of them when a row is 16 channels, one 64-byte line) and takes as long as one thread
doing all of them (one process, medians of 21 alternations on W7's (128, 32, 32, 16), CPU
time of the forward statistics 3.12 -> 1.51 ms and of backward's sums 2.65 -> 1.39 ms;
(128, 8, 8, 64): 0.59 -> 0.16 and 0.67 -> 0.26). xhat, which the composite keeps, is
computed again from x in backward instead of written and read (one activation-sized array
less per layer). In inference (moving statistics) the layer is one pass. A plain ReLU after
the layer can run inside these passes (`relu`, `mask`): the planned step fuses the pair
(`engine/train/fusion.py`), which saves writing and reading the layer's output and the
ReLU's gradient. These functions return None where the kernels do not apply (not built, not plain
float32, not channels-last with both gamma and beta); the layer then runs the composite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import native
from engine.kernels.conv import run_shards

Array = Any
# below this many values a call stays on one thread: a hand-off to the helper costs ~50 us
SPLIT_MIN = 1 << 18


def halves(n: int, size: int) -> list[slice]:
    """Two halves of range(n) for the two cores when the call is big enough, else all of it;
    the split depends only on shapes, and each half computes what the whole would."""
    if size < SPLIT_MIN or n < 2:
        return [slice(0, n)]
    return [slice(0, n // 2), slice(n // 2, n)]


def _rows_of_channels(x: Array) -> bool:
    """Whether NumPy sums x over its leading axes row after row, as the kernel does: with one
    channel the rows are contiguous and NumPy sums them pairwise instead."""
    return x.ndim >= 2 and x.shape[-1] >= 2


def _normalize(kernels: Any, x: Array, stats: tuple[Array, ...], relu: bool) -> Array:
    """y = (x - mean) * inv * gamma + beta (then relu) by rows on both cores; stats = (mean,
    inv, gamma, beta)."""
    c = x.shape[-1]
    y = np.empty_like(x)
    x2, y2 = x.reshape(-1, c), y.reshape(-1, c)

    def rows(i: int, s: slice) -> None:
        kernels.normalize(x2[s], y2[s], *stats, c, relu)

    run_shards(rows, halves(len(x2), x.size))
    return y


def train_forward(
    x: Array, gamma: Array, beta: Array, epsilon: float, relu: bool = False
) -> tuple[Array, Array, Array, Array] | None:
    """(y, inv, mean, var) of a training step, statistics over every axis but the last; inv =
    1 / sqrt(var + epsilon) and the three statistics have shape (channels,). With `relu`, y is
    maximum(y, 0). xhat = (x - mean) * inv is not kept: `train_backward` computes it again."""
    kernels = native.batch_norm(x, gamma, beta)
    if kernels is None or not _rows_of_channels(x) or not x.size:  # the kernels take rows
        return None
    c = x.shape[-1]
    mean = np.empty(c, dtype=np.float32)
    var = np.empty(c, dtype=np.float32)
    kernels.stats(x, mean, var, c, (0, c))
    inv = 1.0 / np.sqrt(var + epsilon)
    return _normalize(kernels, x, (mean, inv, gamma, beta), relu), inv, mean, var


def infer_forward(
    x: Array, params: tuple[Array, Array, Array, Array], epsilon: float, relu: bool
) -> tuple[Array, Array] | None:
    """(y, inv) with the moving statistics in one pass over x: params = (gamma, beta,
    moving_mean, moving_variance), inv = 1 / sqrt(moving_variance + epsilon)."""
    kernels = native.batch_norm(x, *params)
    if kernels is None or x.ndim < 2 or not x.size:  # the kernels take rows
        return None
    gamma, beta, mean, var = params
    inv = 1.0 / np.sqrt(var + epsilon)
    return _normalize(kernels, x, (mean, inv, gamma, beta), relu), inv


def train_backward(
    g: Array,
    x: Array,
    stats: tuple[Array, Array, Array],
    need_dx: bool,
    mask: Array | None = None,
) -> tuple[Array, Array, Array | None] | None:
    """(d gamma, d beta, dx or None) of `train_forward` for the upstream gradient g, its input x
    and stats = (mean, inv, gamma); with a ReLU's output `mask`, g is first taken as the ReLU's
    backward gives it, g * (mask > 0)."""
    mean, inv, gamma = stats
    arrays = (g, x, *stats) if mask is None else (g, x, *stats, mask)
    kernels = native.batch_norm(*arrays)
    if kernels is None or g.shape != x.shape or not _rows_of_channels(g):
        return None
    if mask is not None and mask.shape != g.shape:
        return None
    c = g.shape[-1]
    sums = np.empty((4, c), dtype=np.float32)
    kernels.backward_sums(g, mask, x, mean, inv, gamma, sums, c, (0, c))
    if not need_dx:
        return sums[0], sums[1], None
    rows = g.size // c
    # the composite's means: a float32 sum over an intp count, divided in double
    mean_d = (sums[2] / np.intp(rows)).astype(np.float32)
    mean_dx = (sums[3] / np.intp(rows)).astype(np.float32)
    dx = np.empty_like(g)
    g2, x2, dx2 = (a.reshape(-1, c) for a in (g, x, dx))
    mask2 = None if mask is None else mask.reshape(-1, c)

    def input_grad(i: int, s: slice) -> None:
        m = None if mask2 is None else mask2[s]
        kernels.backward_dx(g2[s], m, x2[s], dx2[s], mean, gamma, mean_d, mean_dx, inv, c)

    run_shards(input_grad, halves(len(g2), g.size))
    return sums[0], sums[1], dx
