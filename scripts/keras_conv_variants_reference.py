"""Write tests/fixtures/keras_conv_variants.npz: Keras 3's DepthwiseConv2D, SeparableConv2D and
Conv2DTranspose on seeded inputs and weights (output shapes, parameter counts, outputs).

Run once with Keras in a scratch venv (never a project dependency):
`KERAS_BACKEND=jax /work/kerasvenv/bin/python scripts/keras_conv_variants_reference.py`.
"""

from __future__ import annotations

import keras
import keras_reference

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
    out: keras_reference.Arrays = {}
    cases = [
        (name, getattr(keras.layers, cls), kwargs, shape) for name, cls, kwargs, shape in CASES
    ]
    meta = keras_reference.single_input_cases(cases, out)
    out["meta"] = keras_reference.as_bytes(meta)
    keras_reference.write(out, "tests/fixtures/keras_conv_variants.npz", meta)


if __name__ == "__main__":
    main()
