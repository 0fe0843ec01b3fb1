"""The Embedding gradient (`Backend.sum_rows`) at the edges of a batch."""

from __future__ import annotations

import numpy as np

from engine.layers.base import CallContext
from engine.layers.embedding import Embedding


def test_an_empty_batch_gives_a_zero_gradient() -> None:
    layer = Embedding(5, 2)
    layer(np.array([[1, 2]]))
    params = [w.data for w in layer.weights]
    ctx = CallContext(training=True)
    out, cache = layer.forward(params, np.zeros((0, 3), dtype=np.int64), ctx)
    assert out.shape == (0, 3, 2)
    grads = [np.full_like(params[0], np.nan)]
    layer.backward(params, cache, np.ones(out.shape, dtype=out.dtype), grads, ctx)
    np.testing.assert_array_equal(grads[0], np.zeros_like(params[0]))
