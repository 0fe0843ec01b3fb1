"""Keras's Python call of the attention layers: the graph call, the eager call, and the eager
call that also returns the attention weights (`return_attention_scores=True`).

`use_causal_mask` is a call argument in Keras: an eager call applies it to that call only. A
graph call records it in the layer's config, which is what the graph's node runs with (a spec
entry is one call and writes it there too)."""

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
    use_causal_mask: bool = False,
) -> Any:
    """`layer(items)` as Layer.__call__ does, or (output, scores(cache)) for the weights."""
    symbolic = any(isinstance(t, SymbolicTensor) for t in items)
    if not use_causal_mask or layer.config.use_causal_mask:
        return _call(layer, items, training, mask, return_attention_scores, scores, symbolic)
    configured = layer.config
    layer.config = configured.model_copy(update={"use_causal_mask": True})
    if symbolic:
        return _call(layer, items, training, mask, return_attention_scores, scores, symbolic)
    try:
        return _call(layer, items, training, mask, return_attention_scores, scores, symbolic)
    finally:
        layer.config = configured


def _call(
    layer: Layer,
    items: list[Any],
    training: bool | None,
    mask: Any,
    return_attention_scores: bool,
    scores: Callable[[Any], Any],
    symbolic: bool,
) -> Any:
    if symbolic:
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
