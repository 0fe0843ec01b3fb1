"""Write tests/fixtures/keras_einsum_dense.npz: Keras 3's EinsumDense on seeded inputs and
weights (output shapes, parameter counts, outputs), for each of its equation forms.

Run once with Keras in a scratch venv (never a project dependency):
`KERAS_BACKEND=jax /work/kerasvenv/bin/python scripts/keras_einsum_dense_reference.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np

CASES = [
    ("dense", {"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"}, (3,)),
    (
        "heads",
        {"equation": "abc,cde->abde", "output_shape": (None, 4, 8), "bias_axes": "de"},
        (10, 16),
    ),
    (
        "left",
        {"equation": "...b,bc->...c", "output_shape": 5, "bias_axes": "c", "activation": "tanh"},
        (6, 3),
    ),
    ("right", {"equation": "ab...,bc->ac...", "output_shape": 4, "bias_axes": "c"}, (3, 7)),
    ("summed_axis", {"equation": "abc,cd->ad", "output_shape": 5, "activation": "relu"}, (3, 4)),
    (
        "kernel_out_first",
        {"equation": "abc,dc->abd", "output_shape": (3, 2), "bias_axes": "bd"},
        (3, 4),
    ),
]


def main() -> None:
    out: dict[str, np.ndarray] = {}
    meta = {}
    rng = np.random.default_rng(0)
    for name, kwargs, shape in CASES:
        layer = keras.layers.EinsumDense(**kwargs)
        x = rng.standard_normal((2, *shape)).astype("float32")
        layer(x)
        weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layer.weights]
        layer.set_weights(weights)
        y = np.asarray(layer(x))
        out[f"{name}/input"] = x
        for i, w in enumerate(weights):
            out[f"{name}/weight{i}"] = w
        out[f"{name}/output"] = y
        meta[name] = {
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
            "params": int(layer.count_params()),
            "shapes": [list(w.shape) for w in layer.weights],
            "output_shape": list(y.shape[1:]),
        }
    out["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/keras_einsum_dense.npz")
    np.savez(target, **out)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
