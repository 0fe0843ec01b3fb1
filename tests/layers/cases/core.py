"""Core rows (Activation, Dropout, Flatten, Reshape, Permute, RepeatVector): 0 params."""

from tests.layers.harness import LayerCase

CASES = [
    LayerCase(
        "activation_relu",
        {"type": "Activation", "activation": "relu"},
        (None, 3, 4),
        (None, 3, 4),
        0,
    ),
    LayerCase(
        "activation_softmax",
        {"type": "Activation", "activation": "softmax"},
        (None, 5),
        (None, 5),
        0,
    ),
    # inference: the identity
    LayerCase("dropout_inference", {"type": "Dropout", "rate": 0.5}, (None, 6), (None, 6), 0),
    # training: the same generator seed in forward and backward makes the mask repeatable
    LayerCase(
        "dropout_training",
        {"type": "Dropout", "rate": 0.3},
        (None, 4, 5),
        (None, 4, 5),
        0,
        training=True,
    ),
    # one draw shared along the time axis
    LayerCase(
        "dropout_noise_shape",
        {"type": "Dropout", "rate": 0.5, "noise_shape": [None, 1, 3]},
        (None, 4, 3),
        (None, 4, 3),
        0,
        training=True,
    ),
    # 5 * 5 * 4 = 100
    LayerCase("flatten", {"type": "Flatten"}, (None, 5, 5, 4), (None, 100), 0),
    LayerCase(
        "reshape", {"type": "Reshape", "target_shape": [4, 3, 1]}, (None, 12), (None, 4, 3, 1), 0
    ),
    # 24 / (2 * 3) = 4 fills the -1
    LayerCase(
        "reshape_minus_one",
        {"type": "Reshape", "target_shape": [2, -1, 3]},
        (None, 4, 6),
        (None, 2, 4, 3),
        0,
    ),
    LayerCase("permute", {"type": "Permute", "dims": [2, 1]}, (None, 3, 5), (None, 5, 3), 0),
    LayerCase(
        "permute_3d", {"type": "Permute", "dims": [3, 1, 2]}, (None, 2, 3, 4), (None, 4, 2, 3), 0
    ),
    LayerCase("repeat_vector", {"type": "RepeatVector", "n": 3}, (None, 4), (None, 3, 4), 0),
]
