"""Pooling rows: no weights (params = 0); output = floor((n - p) / s) + 1 or ceil(n / s)."""

from tests.layers.harness import LayerCase

CASES = [
    # (26 - 2) / 2 + 1 = 13 (the benchmark's pooling); 0 params
    LayerCase(
        "maxpool2d_mnist",
        {"type": "MaxPooling2D", "pool_size": 2},
        (None, 26, 26, 4),
        (None, 13, 13, 4),
        0,
    ),
    # same with stride 2 on 7x5: ceil(7/2) = 4, ceil(5/2) = 3
    LayerCase(
        "maxpool2d_same",
        {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
        (None, 7, 5, 2),
        (None, 4, 3, 2),
        0,
    ),
    # overlapping windows: (6 - 3) / 1 + 1 = 4
    LayerCase(
        "maxpool2d_overlap",
        {"type": "MaxPooling2D", "pool_size": [3, 2], "strides": 1},
        (None, 6, 5, 2),
        (None, 4, 4, 2),
        0,
    ),
    # (9 - 2) / 2 + 1 = 4
    LayerCase("maxpool1d", {"type": "MaxPooling1D"}, (None, 9, 3), (None, 4, 3), 0),
    LayerCase(
        "maxpool3d",
        {"type": "MaxPooling3D", "padding": "same"},
        (None, 3, 4, 5, 2),
        (None, 2, 2, 3, 2),
        0,
    ),
    LayerCase(
        "avgpool1d_same",
        {"type": "AveragePooling1D", "pool_size": 3, "strides": 2, "padding": "same"},
        (None, 8, 2),
        (None, 4, 2),
        0,
    ),
    LayerCase("avgpool2d", {"type": "AveragePooling2D"}, (None, 6, 7, 3), (None, 3, 3, 3), 0),
    LayerCase(
        "avgpool2d_same",
        {"type": "AveragePooling2D", "pool_size": 3, "padding": "same"},
        (None, 5, 4, 2),
        (None, 2, 2, 2),
        0,
    ),
    LayerCase(
        "avgpool3d",
        {"type": "AveragePooling3D", "pool_size": [2, 1, 2]},
        (None, 4, 3, 4, 2),
        (None, 2, 3, 2, 2),
        0,
    ),
    LayerCase("gmaxpool1d", {"type": "GlobalMaxPooling1D"}, (None, 6, 3), (None, 3), 0),
    LayerCase(
        "gmaxpool2d_keepdims",
        {"type": "GlobalMaxPooling2D", "keepdims": True},
        (None, 4, 3, 2),
        (None, 1, 1, 2),
        0,
    ),
    LayerCase(
        "gavgpool1d",
        {"type": "GlobalAveragePooling1D"},
        (None, None, 3),
        (None, 3),
        0,
        fill={None: 5},
    ),
    LayerCase("gavgpool2d", {"type": "GlobalAveragePooling2D"}, (None, 4, 5, 3), (None, 3), 0),
]
