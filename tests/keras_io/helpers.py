"""The committed Keras fixtures (made by scripts/make_keras_fixtures.py) and how to compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keras"
MODELS = [
    "mlp",
    "embedding_lstm",
    "cnn_batchnorm",
    "multi_io",
    "shared",
    "sequences",
    "shapes_and_norms",
    "merging",
    "conv3d",
    "variants",
    "image_variants",
    "attention",
    "einsum",
    "activations",
]
LEGACY = ["mlp", "multi_io", "activations"]
TOLERANCE = 1e-5


def keras_reference(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The fixed inputs and Keras's predictions on them, keyed by input and output name."""
    data = np.load(FIXTURES / f"{name}.npz")
    inputs = {k[3:]: data[k] for k in data.files if k.startswith("in/")}
    outputs = {str(n): data[f"out/{n}"] for n in data["output_names"]}
    return inputs, outputs


def predict(model: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's predictions on named inputs, one array per output."""
    ordered = [inputs[t.name] for t in model.inputs]
    out = model.predict(ordered if len(ordered) > 1 else ordered[0])
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def max_difference(model: Any, name: str) -> float:
    """The largest difference between the model's predictions and Keras's."""
    inputs, outputs = keras_reference(name)
    got = predict(model, inputs)
    assert len(got) == len(outputs)
    return max(float(np.max(np.abs(g - w))) for g, w in zip(got, outputs.values(), strict=True))
