"""Gradients of layers whose backward reshapes by the batch, for a batch of no samples."""

from __future__ import annotations

import numpy as np

from engine.layers.base import CallContext
from engine.layers.embedding import Embedding
from engine.layers.multi_head_attention import MultiHeadAttention


def test_embedding_takes_an_empty_batch() -> None:
    layer = Embedding(5, 2)
    layer(np.array([[1, 2]]))
    params = [w.data for w in layer.weights]
    ctx = CallContext(training=True)
    out, cache = layer.forward(params, np.zeros((0, 3), dtype=np.int64), ctx)
    assert out.shape == (0, 3, 2)
    grads = [np.full_like(params[0], np.nan)]
    layer.backward(params, cache, np.ones(out.shape, dtype=out.dtype), grads, ctx)
    np.testing.assert_array_equal(grads[0], np.zeros_like(params[0]))


def test_multi_head_attention_takes_an_empty_batch() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    layer([np.ones((2, 4, 5), dtype=np.float32)] * 2)
    params = [w.data for w in layer.weights]
    ctx = CallContext(training=True)
    ctx.need_input_grad = True
    x = np.ones((0, 4, 5), dtype=np.float32)
    out, cache = layer.forward(params, [x, x], ctx)
    assert out.shape == (0, 4, 5)
    grads = [np.full_like(p, np.nan) for p in params]
    dx, rest = layer.backward(params, cache, np.ones_like(out), grads, ctx)[:2]
    assert dx.shape == (0, 4, 5) and rest is None  # one array in both roles: one gradient
    for g in grads:
        np.testing.assert_array_equal(g, np.zeros_like(g))
