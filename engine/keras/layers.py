"""`keras.layers`: every registered layer class by its Keras name, `Layer` to subclass, and
`Input`, which in Keras is the function returning a symbolic tensor."""

from __future__ import annotations

from typing import Any

from engine import layers as _layers
from engine.layers.base import Layer
from engine.layers.input_layer import InputLayer
from engine.models import Input


def __getattr__(name: str) -> Any:
    return getattr(_layers, name)


__all__ = ["Input", "InputLayer", "Layer"]
