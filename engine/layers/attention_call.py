"""Keras's Python call of the attention layers: the graph call, the eager call, and the eager
call that also returns the attention weights (`return_attention_scores=True`).

`use_causal_mask` is a call argument in Keras: an eager call applies it to that call only. A
graph call records it in the layer's config, which is what the graph's node runs with (a spec
entry is one call and writes it there too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.layers.base import CallContext, Layer, SymbolicTensor
from engine.lazy import tensor


@contextmanager
def _call_config(layer: Layer, use_causal_mask: bool, keep: bool) -> Iterator[None]:
    """The layer's config with `use_causal_mask` set for the call; kept after it if `keep`."""
    configured = layer.config
    if use_causal_mask and not configured.use_causal_mask:
        layer.config = configured.model_copy(update={"use_causal_mask": True})
    try:
        yield
    finally:
        if not keep:
            layer.config = configured


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
    with _call_config(layer, use_causal_mask, keep=symbolic):
        if symbolic:
            if return_attention_scores:
                raise ValueError(
                    "return_attention_scores works on eager tensors; a model graph takes one "
                    "output per layer"
                )
            return Layer.__call__(layer, items)
        if not return_attention_scores:
            return Layer.__call__(layer, items, training=training, mask=mask)
        tensors = [tensor.as_tensor(t) for t in items]
        if not layer.built:
            layer.build([(None, *t.shape[1:]) for t in tensors])
        ctx = CallContext(training=bool(training), mask=mask)
        out, cache = layer.forward([w.data for w in layer.weights], [t.data for t in tensors], ctx)
        return tensor.Tensor(out), tensor.Tensor(scores(cache))
