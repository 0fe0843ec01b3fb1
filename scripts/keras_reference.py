"""What the scripts/keras_*_reference.py scripts share: seeded weights set into a Keras layer,
the arrays and metadata of each case, and the .npz fixture they write.

Each script runs once with Keras in a scratch venv (never a project dependency), e.g.
`KERAS_BACKEND=jax /work/kerasvenv/bin/python scripts/keras_attention_reference.py [OUT]`;
the tests read the fixture without Keras.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


def seeded_weights(layer: Any, rng: np.random.Generator, shift: float = 0.0) -> list[np.ndarray]:
    """Give a built layer seeded weights (0.5 N(0, 1) + shift) in Keras's weight order:
    initial values (zero biases, ones) would hide a transposed or misplaced weight."""
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 + shift for w in layer.weights]
    layer.set_weights(weights)
    return weights


def store_weights(out: Arrays, name: str, weights: list[np.ndarray]) -> None:
    for i, w in enumerate(weights):
        out[f"{name}/weight{i}"] = w


def plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """A layer's keyword arguments as JSON holds them (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def as_bytes(meta: Mapping[str, Any]) -> np.ndarray:
    """Metadata stored inside the .npz as UTF-8 JSON bytes (no pickled objects)."""
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


def single_input_cases(
    cases: list[tuple[str, Any, dict[str, Any], tuple[int, ...]]], out: Arrays
) -> dict[str, Any]:
    """Each (name, layer class, kwargs, sample shape) case on a seeded batch of two samples:
    its input, weights and output in `out`; its config, parameter count, weight names and
    output shape returned."""
    meta: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for name, cls, kwargs, shape in cases:
        layer = cls(**kwargs)
        x = rng.standard_normal((2, *shape)).astype("float32")
        layer(x)
        weights = seeded_weights(layer, rng)
        y = np.asarray(layer(x))
        out[f"{name}/input"] = x
        store_weights(out, name, weights)
        out[f"{name}/output"] = y
        meta[name] = {
            "type": cls.__name__,
            "config": plain(kwargs),
            "params": int(layer.count_params()),
            "weights": [w.path.split("/")[-1] for w in layer.weights],
            "shapes": [list(w.shape) for w in layer.weights],
            "output_shape": list(y.shape[1:]),
        }
    return meta


def write(out: Arrays, default: str, shown: Mapping[str, Any]) -> None:
    """Save the fixture (to argv[1] if given, else `default`) and print what it records."""
    target = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    np.savez(target, **out)
    print(json.dumps(shown, indent=1))
