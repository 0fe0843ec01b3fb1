"""EinsumDense rows; counts as Keras 3.15.1 reports them (tests/fixtures/keras_einsum_dense.npz)."""

from tests.layers.harness import LayerCase

ED = "EinsumDense"
CASES = [
    # kernel (3, 4) + bias (4,) = 16 (Keras: 16)
    LayerCase(
        "einsum_dense",
        {"type": ED, "equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"},
        (None, 3),
        (None, 4),
        16,
    ),
    # kernel (6, 2, 3) + bias (2, 3) = 42
    LayerCase(
        "einsum_dense_heads",
        {"type": ED, "equation": "abc,cde->abde", "output_shape": [None, 2, 3], "bias_axes": "de"},
        (None, 4, 6),
        (None, 4, 2, 3),
        42,
    ),
    # kernel (3, 5) + bias (5,) = 20 (Keras: 20)
    LayerCase(
        "einsum_dense_left_elided",
        {
            "type": ED,
            "equation": "...b,bc->...c",
            "output_shape": 5,
            "bias_axes": "c",
            "activation": "tanh",
        },
        (None, 2, 6, 3),
        (None, 2, 6, 5),
        20,
    ),
    # kernel (3, 4) + bias (4, 1) = 16 (Keras: 16)
    LayerCase(
        "einsum_dense_right_elided",
        {"type": ED, "equation": "ab...,bc->ac...", "output_shape": 4, "bias_axes": "c"},
        (None, 3, 7),
        (None, 4, 7),
        16,
    ),
    # the input's axis b is summed away: kernel (4, 5) = 20 (Keras: 20)
    LayerCase(
        "einsum_dense_summed_axis",
        {"type": ED, "equation": "abc,cd->ad", "output_shape": 5, "activation": "relu"},
        (None, 3, 4),
        (None, 5),
        20,
    ),
    # kernel (2, 4) + bias (3, 2) = 14 (Keras: 14)
    LayerCase(
        "einsum_dense_kernel_out_first",
        {"type": ED, "equation": "abc,dc->abd", "output_shape": [3, 2], "bias_axes": "bd"},
        (None, 3, 4),
        (None, 3, 2),
        14,
    ),
]
