"""Normalization rows: given mean and variance it has no weights (Keras shows 0 params);
otherwise mean, variance and count, 2n+1, all non-trainable."""

from tests.layers.harness import LayerCase

CASES = [
    # mean/variance given: 0 params
    LayerCase(
        "normalization_given",
        {"type": "Normalization", "mean": [1.0, 2.0, 3.0], "variance": [4.0, 1.0, 0.25]},
        (None, 3),
        (None, 3),
        0,
    ),
    # invert, given as scalars: 0 params
    LayerCase(
        "normalization_given_invert",
        {"type": "Normalization", "mean": 0.5, "variance": 2.0, "invert": True},
        (None, 2, 3),
        (None, 2, 3),
        0,
    ),
    # to adapt, on 4 features: 2*4+1 = 9, none trainable
    LayerCase(
        "normalization_adapt", {"type": "Normalization"}, (None, 4), (None, 4), 9, trainable=0
    ),
    # on (T, 3) sequences, axis -1: 2*3+1 = 7
    LayerCase(
        "normalization_adapt_seq",
        {"type": "Normalization", "axis": -1},
        (None, 5, 3),
        (None, 5, 3),
        7,
        trainable=0,
    ),
]
