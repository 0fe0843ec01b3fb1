"""Spatial reshaping and noise rows: no weights; shapes by Keras 3's formulas."""

from tests.layers.harness import LayerCase

CASES = [
    # T * size = 5 * 3
    LayerCase("upsampling1d", {"type": "UpSampling1D", "size": 3}, (None, 5, 2), (None, 15, 2), 0),
    # (4 * 2, 3 * 2) by default
    LayerCase("upsampling2d", {"type": "UpSampling2D"}, (None, 4, 3, 2), (None, 8, 6, 2), 0),
    LayerCase(
        "upsampling2d_pair",
        {"type": "UpSampling2D", "size": [1, 3]},
        (None, 2, 3, 2),
        (None, 2, 9, 2),
        0,
    ),
    # 5 + 1 + 1
    LayerCase("zeropadding1d", {"type": "ZeroPadding1D"}, (None, 5, 2), (None, 7, 2), 0),
    LayerCase(
        "zeropadding1d_pair",
        {"type": "ZeroPadding1D", "padding": [2, 0]},
        (None, 5, 2),
        (None, 7, 2),
        0,
    ),
    # (3 + 2, 4 + 2) by default
    LayerCase("zeropadding2d", {"type": "ZeroPadding2D"}, (None, 3, 4, 2), (None, 5, 6, 2), 0),
    LayerCase(
        "zeropadding2d_each_side",
        {"type": "ZeroPadding2D", "padding": [[1, 0], [2, 3]]},
        (None, 3, 4, 2),
        (None, 4, 9, 2),
        0,
    ),
    # 6 - 1 - 1
    LayerCase("cropping1d", {"type": "Cropping1D"}, (None, 6, 2), (None, 4, 2), 0),
    LayerCase(
        "cropping2d",
        {"type": "Cropping2D", "cropping": [[1, 0], [0, 2]]},
        (None, 5, 6, 2),
        (None, 4, 4, 2),
        0,
    ),
    LayerCase(
        "cropping2d_symmetric",
        {"type": "Cropping2D", "cropping": 1},
        (None, 5, 6, 2),
        (None, 3, 4, 2),
        0,
    ),
    LayerCase("identity", {"type": "Identity"}, (None, 3, 4), (None, 3, 4), 0),
    LayerCase(
        "gaussian_noise_training",
        {"type": "GaussianNoise", "stddev": 0.5},
        (None, 4, 3),
        (None, 4, 3),
        0,
        training=True,
    ),
    LayerCase(
        "spatial_dropout1d_training",
        {"type": "SpatialDropout1D", "rate": 0.4},
        (None, 6, 3),
        (None, 6, 3),
        0,
        training=True,
    ),
    LayerCase(
        "spatial_dropout2d_training",
        {"type": "SpatialDropout2D", "rate": 0.4},
        (None, 3, 4, 3),
        (None, 3, 4, 3),
        0,
        training=True,
    ),
]
