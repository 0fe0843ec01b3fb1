"""Keras's Python call of the attention layers: the graph call, the eager call, and the eager
call that also returns the attention weights (`return_attention_scores=True`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.layers.base import CallContext, Layer, SymbolicTensor
from engine.tensor import Tensor, as_tensor


def call_attention(
    layer: Layer,
    items: list[Any],
    training: bool | None,
    mask: Any,
    return_attention_scores: bool,
    scores: Callable[[Any], Any],
) -> Any:
    """`layer(items)` as Layer.__call__ does, or (output, scores(cache)) for the weights."""
    if any(isinstance(t, SymbolicTensor) for t in items):
        if return_attention_scores:
            raise ValueError(
                "return_attention_scores works on eager tensors; a model graph takes one "
                "output per layer"
            )
        return Layer.__call__(layer, items)
    if not return_attention_scores:
        return Layer.__call__(layer, items, training=training, mask=mask)
    tensors = [as_tensor(t) for t in items]
    if not layer.built:
        layer.build([(None, *t.shape[1:]) for t in tensors])
    ctx = CallContext(training=bool(training), mask=mask)
    out, cache = layer.forward([w.data for w in layer.weights], [t.data for t in tensors], ctx)
    return Tensor(out), Tensor(scores(cache))
