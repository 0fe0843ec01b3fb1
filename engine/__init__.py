"""modelspec's engine: tensors with autodiff on NumPy or CuPy, layers, models and training.

`import engine as en` gives the tensor API of the tutorial (`en.constant`, `en.Variable`,
`en.GradientTape`, `en.matmul`, `en.reduce_sum`, ...); `from engine import layers, Sequential,
Model, Input` gives the Keras-style model API.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.autodiff import GradientTape
    from engine.dtypes import (
        DType,
        bool_,
        float16,
        float32,
        float64,
        int8,
        int16,
        int32,
        int64,
        string,
        uint8,
    )
    from engine.tensor import Tensor, Variable, constant

    bool = bool_  # noqa: A001  (TensorFlow's spelling: en.bool)

__all__ = [
    "DType",
    "GradientTape",
    "Tensor",
    "Variable",
    "constant",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "string",
]

# Every module and package of engine: `from engine import x` of one not yet imported asks
# __getattr__ first, which must not load the tensor API (and its ops) for it.
_SUBMODULES = {m.name for m in pkgutil.iter_modules(__path__)}

# Where the names of __all__ live (the rest are dtypes).
_TENSOR_API = {
    "GradientTape": "engine.autodiff",
    "Tensor": "engine.tensor",
    "Variable": "engine.tensor",
    "constant": "engine.tensor",
}

# Names resolved on first use, so importing the tensor API does not load training code, and
# importing a subpackage (the layers, for `modelspec lint`) does not load NumPy.
_LAZY = {
    **{name: (_TENSOR_API.get(name, "engine.dtypes"), name) for name in __all__},
    "bool": ("engine.dtypes", "bool_"),
    "layers": ("engine.layers", None),
    "keras": ("engine.keras", None),
    "Sequential": ("engine.models", "Sequential"),
    "Model": ("engine.models", "Model"),
    "Input": ("engine.models", "Input"),
    "from_spec": ("engine.build", "from_spec"),
    "load_model": ("engine.loading", "load_model"),
    "losses": ("engine.losses", None),
    "metrics": ("engine.metrics", None),
    "optimizers": ("engine.optimizers", None),
    "callbacks": ("engine.callbacks", None),
    "initializers": ("engine.initializers", None),
    "regularizers": ("engine.regularizers", None),
    "constraints": ("engine.constraints", None),
    "activations": ("engine.activations", None),
    "nn": ("engine.api", "nn"),
    "random": ("engine.api", "random"),
    "math": ("engine.api", "math"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    if not name.startswith("__") and name not in _SUBMODULES:
        api = importlib.import_module("engine.api")
        if hasattr(api, name):
            return getattr(api, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
