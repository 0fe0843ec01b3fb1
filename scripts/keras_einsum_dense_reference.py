"""Write tests/fixtures/keras_einsum_dense.npz: Keras 3's EinsumDense on seeded inputs and
weights (output shapes, parameter counts, outputs), for each of its equation forms.

Run once with Keras in a scratch venv (never a project dependency):
`KERAS_BACKEND=jax /work/kerasvenv/bin/python scripts/keras_einsum_dense_reference.py`.
"""

from __future__ import annotations

import keras
import keras_reference

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
    out: keras_reference.Arrays = {}
    cases = [(name, keras.layers.EinsumDense, kwargs, shape) for name, kwargs, shape in CASES]
    meta = keras_reference.single_input_cases(cases, out)
    out["meta"] = keras_reference.as_bytes(meta)
    keras_reference.write(out, "tests/fixtures/keras_einsum_dense.npz", meta)


if __name__ == "__main__":
    main()
