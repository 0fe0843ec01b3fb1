"""The layer pairs the planned step runs as one call: a table of (producer, consumer) patterns.

A BatchNormalization or an Add followed by a plain ReLU is two passes over the activations
forward (the layer writes its output, the ReLU reads it and writes its own) and two backward
(the ReLU writes its masked gradient, the layer reads it). Run as one call, the ReLU is the
last step of the producer's pass and its mask the first step of the producer's backward. The
producer's module holds that knowledge (`forward_relu`, and a `backward` that applies the mask
its cache carries); this table only says which pairs may meet, and the executor
(`engine/train/executor.py`) decides where the graph allows it. Results are the same bits as
the two calls: tests/training/test_fusion.py compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.call_context import CallContext
from engine.layers import registry
from engine.layers.base import Layer

Array = Any
Forward = Callable[[Layer, list[Array], Any, CallContext], tuple[Array, Any]]


@dataclass(frozen=True)
class Pattern:
    """`producer` (a registered layer type, not a user's subclass) whose output feeds only a
    `consumer` type that `accepts`: `forward(producer, params, inputs, ctx)` gives the
    consumer's output and the producer's cache, whose `backward` then takes the gradient of the
    consumer's output."""

    producer: str
    consumer: str
    accepts: Callable[[Layer], bool]
    forward: Forward


def _plain_relu(layer: Layer) -> bool:
    return bool(getattr(layer, "is_plain_relu", False))


def _then_relu(layer: Layer, params: list[Array], inputs: Any, ctx: CallContext) -> Any:
    return layer.forward_relu(params, inputs, ctx)  # type: ignore[attr-defined]


PATTERNS: tuple[Pattern, ...] = (
    Pattern("BatchNormalization", "Activation", _plain_relu, _then_relu),
    Pattern("Add", "Activation", _plain_relu, _then_relu),
    Pattern("BatchNormalization", "ReLU", _plain_relu, _then_relu),
    Pattern("Add", "ReLU", _plain_relu, _then_relu),
)


def _is(layer: Layer, type_name: str) -> bool:
    return registry.get(type_name) is type(layer)


def match(producer: Layer, consumer: Layer) -> Pattern | None:
    """The pattern that runs `producer` then `consumer` as one call, if any."""
    for p in PATTERNS:
        if _is(producer, p.producer) and _is(consumer, p.consumer) and p.accepts(consumer):
            return p
    return None
