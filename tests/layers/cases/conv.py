"""Conv1D/2D/3D rows: params = prod(kernel_size) * (in // groups) * filters + filters (bias)."""

from tests.layers.harness import LayerCase

CASES = [
    # 3*3*1*32 + 32 = 320 (the benchmark's first layer, on MNIST)
    LayerCase(
        "conv2d_mnist",
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        (None, 28, 28, 1),
        (None, 26, 26, 32),
        320,
        check_grads=False,
    ),
    # 3*3*3*4 + 4 = 112; same padding keeps 7x6
    LayerCase(
        "conv2d_same",
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "tanh"},
        (None, 7, 6, 3),
        (None, 7, 6, 4),
        112,
    ),
    # 3*2*2*3 + 3 = 39; strides (2, 1): ceil((7-2)/2) = 3, (6-1)/1 = 5
    LayerCase(
        "conv2d_strides",
        {"type": "Conv2D", "filters": 3, "kernel_size": [3, 2], "strides": [2, 1]},
        (None, 7, 6, 2),
        (None, 3, 5, 3),
        39,
    ),
    # 3*3*2*4 + 4 = 76 with groups=2 (in 4 -> 2 per group); dilation 2: 9 - 4 = 5
    LayerCase(
        "conv2d_groups_dilation",
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "groups": 2, "dilation_rate": 2},
        (None, 9, 8, 4),
        (None, 5, 4, 4),
        76,
    ),
    # 3*2*3*4 + 4 = 76; same with dilation 2 keeps 7x6 (padding 2 + 2 rows, 1 + 0 columns)
    LayerCase(
        "conv2d_same_dilated",
        {
            "type": "Conv2D",
            "filters": 4,
            "kernel_size": [3, 2],
            "padding": "same",
            "dilation_rate": 2,
        },
        (None, 7, 6, 3),
        (None, 7, 6, 4),
        76,
    ),
    # 3*3*3*4 = 108 (no bias); same with stride 2: ceil(7/2) = 4
    LayerCase(
        "conv2d_same_stride_no_bias",
        {
            "type": "Conv2D",
            "filters": 4,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "use_bias": False,
        },
        (None, 7, 7, 3),
        (None, 4, 4, 4),
        108,
    ),
    # 3*2*5 + 5 = 35
    LayerCase(
        "conv1d_valid",
        {"type": "Conv1D", "filters": 5, "kernel_size": 3, "activation": "relu"},
        (None, 10, 2),
        (None, 8, 5),
        35,
    ),
    # 2*3*4 + 4 = 28; causal with dilation 2 keeps the length
    LayerCase(
        "conv1d_causal",
        {"type": "Conv1D", "filters": 4, "kernel_size": 2, "padding": "causal", "dilation_rate": 2},
        (None, 9, 3),
        (None, 9, 4),
        28,
    ),
    # 4*2*6 + 6 = 54; stride 3 same: ceil(10/3) = 4
    LayerCase(
        "conv1d_same_stride",
        {"type": "Conv1D", "filters": 6, "kernel_size": 4, "strides": 3, "padding": "same"},
        (None, 10, 2),
        (None, 4, 6),
        54,
    ),
    # variable-length sequences: 3*2*2 + 2 = 14
    LayerCase(
        "conv1d_none_length",
        {"type": "Conv1D", "filters": 2, "kernel_size": 3, "padding": "same"},
        (None, None, 2),
        (None, None, 2),
        14,
        fill={None: 6},
    ),
    # 2*2*2*2*3 + 3 = 51
    LayerCase(
        "conv3d_valid",
        {"type": "Conv3D", "filters": 3, "kernel_size": 2},
        (None, 4, 4, 3, 2),
        (None, 3, 3, 2, 3),
        51,
    ),
    # 3*3*3*(4 // 2)*2 + 2 = 110 (groups 2); same with stride 2: ceil(5/2), ceil(4/2), ceil(3/2)
    LayerCase(
        "conv3d_same_groups",
        {
            "type": "Conv3D",
            "filters": 2,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "groups": 2,
        },
        (None, 5, 4, 3, 4),
        (None, 3, 2, 2, 2),
        110,
    ),
]
