"""Keras's activation layers (ReLU, LeakyReLU, Softmax, ELU, PReLU): PReLU alone has weights,
one slope per input value except along shared_axes (Keras 3's `PReLU.build`)."""

import numpy as np

from tests.layers.harness import LayerCase


def _away_from_kinks(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values at least 0.2 from the kinks at 0, 0.5 (threshold) and 2 (max_value), where
    central differences would straddle two slopes."""
    x = rng.uniform(-3.0, 3.0, shape)
    for kink in (0.0, 0.5, 2.0):
        near = np.abs(x - kink) < 0.2
        x[near] += 0.4
    return x


CASES = [
    LayerCase("relu_layer", {"type": "ReLU"}, (None, 3, 4), (None, 3, 4), 0),
    LayerCase(
        "relu_layer_args",
        {"type": "ReLU", "max_value": 2.0, "negative_slope": 0.1, "threshold": 0.5},
        (None, 6),
        (None, 6),
        0,
        input_fn=_away_from_kinks,
    ),
    LayerCase("leaky_relu_layer", {"type": "LeakyReLU"}, (None, 5), (None, 5), 0),
    LayerCase(
        "leaky_relu_layer_slope",
        {"type": "LeakyReLU", "negative_slope": 0.2},
        (None, 2, 3),
        (None, 2, 3),
        0,
    ),
    LayerCase("softmax_layer", {"type": "Softmax"}, (None, 3, 5), (None, 3, 5), 0),
    LayerCase("softmax_layer_axis", {"type": "Softmax", "axis": 1}, (None, 3, 5), (None, 3, 5), 0),
    LayerCase(
        "softmax_layer_axes", {"type": "Softmax", "axis": [1, 2]}, (None, 3, 4), (None, 3, 4), 0
    ),
    LayerCase("elu_layer", {"type": "ELU"}, (None, 4), (None, 4), 0),
    LayerCase("elu_layer_alpha", {"type": "ELU", "alpha": 0.5}, (None, 4), (None, 4), 0),
    # alpha (10, 8): 80
    LayerCase(
        "prelu",
        {"type": "PReLU", "alpha_initializer": {"type": "constant", "value": 0.25}},
        (None, 10, 8),
        (None, 10, 8),
        80,
        input_fn=_away_from_kinks,
    ),
    # shared over height and width: alpha (1, 1, 3), one slope per channel
    LayerCase(
        "prelu_shared_axes",
        {
            "type": "PReLU",
            "shared_axes": [1, 2],
            "alpha_initializer": {"type": "random_uniform", "minval": 0.1, "maxval": 0.5},
        },
        (None, 4, 4, 3),
        (None, 4, 4, 3),
        3,
        input_fn=_away_from_kinks,
    ),
]
