"""Dense rows: params = in * units + units (bias)."""

from tests.layers.harness import LayerCase

CASES = [
    # 4 * 16 + 16 = 80 (the tutorial's first layer)
    LayerCase(
        "dense_tutorial",
        {"type": "Dense", "units": 16, "activation": "relu"},
        (None, 4),
        (None, 16),
        80,
    ),
    # 16 * 8 + 8 = 136
    LayerCase(
        "dense_16_8",
        {"type": "Dense", "units": 8, "activation": "tanh"},
        (None, 16),
        (None, 8),
        136,
    ),
    # 8 * 1 + 1 = 9
    LayerCase(
        "dense_sigmoid",
        {"type": "Dense", "units": 1, "activation": "sigmoid"},
        (None, 8),
        (None, 1),
        9,
    ),
    # 100 * 64 + 64 = 6464 (the tutorial's parameter-count example)
    LayerCase(
        "dense_6464",
        {"type": "Dense", "units": 64},
        (None, 100),
        (None, 64),
        6464,
        check_grads=False,
    ),
    # 3 * 5 = 15 (no bias); applies to the last axis of a rank-3 input
    LayerCase(
        "dense_rank3_no_bias",
        {"type": "Dense", "units": 5, "use_bias": False, "activation": "softmax"},
        (None, 4, 3),
        (None, 4, 5),
        15,
    ),
    # trainable: false: 3 * 2 + 2 = 8, none trainable
    LayerCase(
        "dense_frozen",
        {"type": "Dense", "units": 2, "trainable": False},
        (None, 3),
        (None, 2),
        8,
        trainable=0,
    ),
]
