"""Masking rows: no weights; y = x * any(x != mask_value, axis=-1).

The gradient is checked in test_masking_layers.py: finite differences would step off the mask
value and unmask the step.
"""

import numpy as np

from tests.layers.harness import LayerCase


def _padded(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random features with timestep 1 of every sample set to the mask value 0."""
    x = rng.standard_normal(shape)
    x[:, 1] = 0.0
    return x.astype(np.float32)


def _padded_minus_one(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape)
    x[:, ::2] = -1.0
    return x.astype(np.float32)


CASES = [
    # (T, F) sequences with a padded step: 0 params
    LayerCase(
        "masking_zero",
        {"type": "Masking"},
        (None, 4, 3),
        (None, 4, 3),
        0,
        input_fn=_padded,
        check_grads=False,
    ),
    # mask_value -1 on every other step: 0 params
    LayerCase(
        "masking_minus_one",
        {"type": "Masking", "mask_value": -1.0},
        (None, 5, 2),
        (None, 5, 2),
        0,
        input_fn=_padded_minus_one,
        check_grads=False,
    ),
]
