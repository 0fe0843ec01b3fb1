"""The layer pairs the planned step runs as one call: a table of (producer, consumer) patterns.

A BatchNormalization or an Add followed by a plain ReLU is two passes over the activations
forward (the layer writes its output, the ReLU reads it and writes its own) and two backward
(the ReLU writes its masked gradient, the layer reads it). Run as one call, the ReLU is the
last step of the producer's pass and its mask the first step of the producer's backward. The
producer's module holds that knowledge (`forward_relu`, and a `backward` that applies the mask
its cache carries); this table only says which pairs may meet and how they join (the
producer's method that runs both), and the executor
(`engine/train/executor.py`) decides where the graph allows it. Results are the same bits as
the two calls: tests/training/test_fusion.py compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.call_context import CallContext
from engine.layers import registry
from engine.layers.base import Layer

Array = Any
Forward = Callable[[list[Array], Any, CallContext], tuple[Array, Any]]

Join = Callable[[Layer, Layer], Forward | None]


def _relu_after(producer: Layer, consumer: Layer) -> Forward | None:
    """A plain ReLU consumer: the producer's `forward_relu(params, inputs, ctx)` gives the
    ReLU's output and the producer's cache, whose `backward` then takes the gradient of the
    ReLU's output."""
    if not getattr(consumer, "is_plain_relu", False):
        return None
    return producer.forward_relu  # type: ignore[attr-defined]


def _pool_after(producer: Layer, consumer: Layer) -> Forward | None:
    """A pooling consumer: the producer's `fuse_pool(pool_layer)` says whether it runs that
    pooling inside its own call (a forward giving the pooled output, whose cache its
    `backward` then takes with the pooled output's gradient) or None."""
    return producer.fuse_pool(consumer)  # type: ignore[attr-defined]


# (producer, consumer): a registered producer type (not a user's subclass) whose output feeds
# only a consumer of the consumer type, and how the pair is joined.
PATTERNS: dict[tuple[str, str], Join] = {
    ("BatchNormalization", "Activation"): _relu_after,
    ("Add", "Activation"): _relu_after,
    ("BatchNormalization", "ReLU"): _relu_after,
    ("Add", "ReLU"): _relu_after,
    ("Conv2D", "MaxPooling2D"): _pool_after,
}


def _is(layer: Layer, type_name: str) -> bool:
    return registry.get(type_name) is type(layer)


def match(producer: Layer, consumer: Layer) -> Forward | None:
    """The forward that runs `producer` then `consumer` as one call, if a pattern allows it."""
    for (producer_type, consumer_type), join in PATTERNS.items():
        if _is(producer, producer_type) and _is(consumer, consumer_type):
            return join(producer, consumer)
    return None
