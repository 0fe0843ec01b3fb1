"""Embedding rows: params = input_dim * output_dim; integer inputs get no gradient."""

from tests.layers.harness import LayerCase

CASES = [
    # Embedding(10, 4) on length-5 ids: 10*4 = 40
    LayerCase(
        "embedding_10_4",
        {"type": "Embedding", "input_dim": 10, "output_dim": 4},
        (None, 5),
        (None, 5, 4),
        40,
        int_inputs=10,
    ),
    # mask_zero changes the mask, not the math: 6*3 = 18 (batch 4, few ids: repeats)
    LayerCase(
        "embedding_mask_zero",
        {"type": "Embedding", "input_dim": 6, "output_dim": 3, "mask_zero": True},
        (None, 7),
        (None, 7, 3),
        18,
        batch=4,
        int_inputs=3,
    ),
    # rank-3 ids (N, 2, 3): 5*2 = 10
    LayerCase(
        "embedding_rank3_ids",
        {"type": "Embedding", "input_dim": 5, "output_dim": 2},
        (None, 2, 3),
        (None, 2, 3, 2),
        10,
        int_inputs=5,
    ),
    # Embedding(10000, 64), the W4 benchmark layer: 10000*64 = 640000
    LayerCase(
        "embedding_10000_64",
        {"type": "Embedding", "input_dim": 10000, "output_dim": 64},
        (None, 100),
        (None, 100, 64),
        640000,
        int_inputs=10000,
        check_grads=False,
    ),
]
