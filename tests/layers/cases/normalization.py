"""BatchNormalization (gamma, beta trainable + moving_mean, moving_variance: 4*C, 2*C trainable)
and LayerNormalization (gamma, beta: 2 * normalized size) rows."""

from tests.layers.harness import LayerCase

CASES = [
    # BatchNormalization on 3 features, inference: 4*3 = 12, 2*3 = 6 trainable
    LayerCase(
        "batch_norm_inference",
        {"type": "BatchNormalization"},
        (None, 3),
        (None, 3),
        12,
        trainable=6,
    ),
    # same in training mode (batch statistics; gradients through mean and variance)
    LayerCase(
        "batch_norm_training",
        {"type": "BatchNormalization"},
        (None, 3),
        (None, 3),
        12,
        trainable=6,
        batch=4,
        training=True,
    ),
    # images (H, W, C=2), training, no scale: 3*2 = 6 (beta + moving), 2 trainable
    LayerCase(
        "batch_norm_images_no_scale",
        {"type": "BatchNormalization", "scale": False, "momentum": 0.9},
        (None, 3, 2, 2),
        (None, 3, 2, 2),
        6,
        trainable=2,
        training=True,
    ),
    # axis 1 of (C=3, 4), no center: 3*3 = 9, 3 trainable
    LayerCase(
        "batch_norm_axis1_no_center",
        {"type": "BatchNormalization", "axis": 1, "center": False},
        (None, 3, 4),
        (None, 3, 4),
        9,
        trainable=3,
        training=True,
    ),
    # 64 channels: 4*64 = 256, 128 trainable
    LayerCase(
        "batch_norm_64",
        {"type": "BatchNormalization"},
        (None, 8, 8, 64),
        (None, 8, 8, 64),
        256,
        trainable=128,
        check_grads=False,
    ),
    # LayerNormalization on 5 features: 2*5 = 10
    LayerCase("layer_norm", {"type": "LayerNormalization"}, (None, 5), (None, 5), 10),
    # over the last two axes of (4, 3): gamma, beta (4, 3) each: 24
    LayerCase(
        "layer_norm_two_axes",
        {"type": "LayerNormalization", "axis": [-2, -1], "epsilon": 1e-5},
        (None, 4, 3),
        (None, 4, 3),
        24,
    ),
    # sequences, no center: gamma only, 3
    LayerCase(
        "layer_norm_seq_no_center",
        {"type": "LayerNormalization", "center": False},
        (None, 4, 3),
        (None, 4, 3),
        3,
    ),
]
