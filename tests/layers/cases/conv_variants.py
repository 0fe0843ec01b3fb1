"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose rows; counts as Keras 3.15.1 reports
them (tests/fixtures/keras_conv_variants.npz)."""

from tests.layers.harness import LayerCase

CASES = [
    # 3*3*3*1 + 3 = 30 (Keras: 30)
    LayerCase(
        "depthwise",
        {"type": "DepthwiseConv2D", "kernel_size": 3},
        (None, 6, 5, 3),
        (None, 4, 3, 3),
        30,
    ),
    # 3*2*3*2 + 6 = 42 (Keras: 42); same, stride 2: ceil(7/2), ceil(6/2)
    LayerCase(
        "depthwise_dm2_same_strided",
        {
            "type": "DepthwiseConv2D",
            "kernel_size": [3, 2],
            "strides": 2,
            "padding": "same",
            "depth_multiplier": 2,
            "activation": "tanh",
        },
        (None, 7, 6, 3),
        (None, 4, 3, 6),
        42,
    ),
    # 3*3*3 + 3*4 + 4 = 43 (Keras: 43)
    LayerCase(
        "separable",
        {"type": "SeparableConv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
        (None, 6, 5, 3),
        (None, 4, 3, 4),
        43,
    ),
    # 2*2*2*2 + 4*5 = 36 (Keras: 36)
    LayerCase(
        "separable_dm2_same_no_bias",
        {
            "type": "SeparableConv2D",
            "filters": 5,
            "kernel_size": 2,
            "padding": "same",
            "depth_multiplier": 2,
            "use_bias": False,
        },
        (None, 5, 4, 2),
        (None, 5, 4, 5),
        36,
    ),
    # 3*3*4*3 + 4 = 112 (Keras: 112); (4-1)+3, (5-1)+3
    LayerCase(
        "conv2d_transpose",
        {"type": "Conv2DTranspose", "filters": 4, "kernel_size": 3},
        (None, 4, 5, 3),
        (None, 6, 7, 4),
        112,
    ),
    # same, stride 2: 4*2, 3*2 (Keras: 56 parameters)
    LayerCase(
        "conv2d_transpose_same_strided",
        {
            "type": "Conv2DTranspose",
            "filters": 2,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "activation": "relu",
        },
        (None, 4, 3, 3),
        (None, 8, 6, 2),
        56,
    ),
    # stride 3 > kernel 2: (n-1)*3 + 3 (Keras: 27 parameters)
    LayerCase(
        "conv2d_transpose_wide_stride",
        {"type": "Conv2DTranspose", "filters": 3, "kernel_size": 2, "strides": 3},
        (None, 3, 4, 2),
        (None, 9, 12, 3),
        27,
    ),
    LayerCase(
        "conv2d_transpose_dilated",
        {"type": "Conv2DTranspose", "filters": 2, "kernel_size": 3, "dilation_rate": 2},
        (None, 4, 4, 2),
        (None, 8, 8, 2),
        38,
    ),
]
