"""Write tests/fixtures/keras_conv_variants.npz: Keras 3's DepthwiseConv2D, SeparableConv2D and
Conv2DTranspose on seeded inputs and weights (output shapes, parameter counts, outputs).

Run once with Keras in a scratch venv (never a project dependency):
`KERAS_BACKEND=jax /work/kerasvenv/bin/python scripts/keras_conv_variants_reference.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np

CASES = [
    ("depthwise", "DepthwiseConv2D", {"kernel_size": 3}, (6, 5, 3)),
    (
        "depthwise_dm2_same_strided",
        "DepthwiseConv2D",
        {"kernel_size": (3, 2), "strides": 2, "padding": "same", "depth_multiplier": 2},
        (7, 6, 3),
    ),
    ("separable", "SeparableConv2D", {"filters": 4, "kernel_size": 3}, (6, 5, 3)),
    (
        "separable_dm2_same_no_bias",
        "SeparableConv2D",
        {
            "filters": 5,
            "kernel_size": 2,
            "padding": "same",
            "depth_multiplier": 2,
            "use_bias": False,
        },
        (5, 4, 2),
    ),
    ("transpose", "Conv2DTranspose", {"filters": 4, "kernel_size": 3}, (4, 5, 3)),
    (
        "transpose_same_strided",
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        (4, 3, 3),
    ),
    (
        "transpose_valid_wide_stride",
        "Conv2DTranspose",
        {"filters": 3, "kernel_size": 2, "strides": 3},
        (3, 4, 2),
    ),
    (
        "transpose_dilated",
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "activation": "relu"},
        (4, 4, 2),
    ),
]


def main() -> None:
    out: dict[str, np.ndarray] = {}
    meta = {}
    rng = np.random.default_rng(0)
    for name, cls, kwargs, shape in CASES:
        layer = getattr(keras.layers, cls)(**kwargs)
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
            "type": cls,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
            "params": int(layer.count_params()),
            "weights": [w.path.split("/")[-1] for w in layer.weights],
            "output_shape": list(y.shape[1:]),
        }
    out["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/keras_conv_variants.npz")
    np.savez(target, **out)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
