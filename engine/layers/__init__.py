"""Layers, one type (or one close family) per module; importing this package registers them all.

`from engine import layers; layers.Dense(16, activation="relu")`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from engine.layers.base import Layer, LayerConfig, ShapeError, WeightSpec
from engine.layers.registry import LAYERS, register

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_module.name}")


def __getattr__(name: str) -> Any:
    if name in LAYERS:
        return LAYERS[name]
    raise AttributeError(f"module 'engine.layers' has no attribute {name!r}")


__all__ = ["LAYERS", "Layer", "LayerConfig", "ShapeError", "WeightSpec", "register"]
