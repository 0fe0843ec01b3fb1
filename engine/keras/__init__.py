"""Keras's namespace over the engine: with `import engine as tf`, `tf.keras.layers.Dense`,
`tf.keras.Sequential` and `from engine.keras.models import Model` run as Keras code is written.

`layers`, `models` and `utils` are modules of their own (Keras's `layers.Input` is the function,
and `models` and `utils` gather names from several places); the other namespaces are the
engine's own modules, registered under `engine.keras.` so that `from engine.keras.losses
import ...` finds them too.
"""

from __future__ import annotations

import sys
from types import ModuleType

from engine import (
    activations,
    callbacks,
    constraints,
    initializers,
    losses,
    metrics,
    optimizers,
    regularizers,
)
from engine.keras import layers, models, utils
from engine.loading import load_model
from engine.models import Input, Model, Sequential

for _module in [m for m in list(globals().values()) if isinstance(m, ModuleType)]:
    if _module.__name__.count(".") == 1 and _module.__name__.startswith("engine."):
        sys.modules[f"{__name__}.{_module.__name__.split('.')[1]}"] = _module

__all__ = [
    "Input",
    "Model",
    "Sequential",
    "activations",
    "callbacks",
    "constraints",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "utils",
]
