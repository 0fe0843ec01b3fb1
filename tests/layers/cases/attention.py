"""Attention rows; parameter counts as Keras 3.15.1 reports them.

MultiHeadAttention: 3 projections of (features * heads * dim + heads * dim) and an output
projection of (heads * value_dim * out + out).
"""

from tests.layers.harness import LayerCase

MHA = "MultiHeadAttention"

CASES = [
    # 3 * (16*2*2 + 2*2) + 2*2*16 + 16 = 284 (Keras: 284)
    LayerCase(
        "mha_self",
        {"type": MHA, "num_heads": 2, "key_dim": 2},
        [(None, 8, 16)] * 2,
        (None, 8, 16),
        284,
    ),
    # query 7, value 9, key 3: (7*12+12) + (3*12+12) + (9*15+15) + (15*7+7) = 406 (Keras: 406)
    LayerCase(
        "mha_cross_key",
        {"type": MHA, "num_heads": 3, "key_dim": 4, "value_dim": 5},
        [(None, 6, 7), (None, 5, 9), (None, 5, 3)],
        (None, 6, 7),
        406,
    ),
    # no bias, output_shape 4: 3 * 6*2*3 + 2*3*4 = 132 (Keras: 132)
    LayerCase(
        "mha_no_bias_output_shape",
        {"type": MHA, "num_heads": 2, "key_dim": 3, "use_bias": False, "output_shape": 4},
        [(None, 5, 6)] * 2,
        (None, 5, 4),
        132,
    ),
    # output_shape (2, 3): 3 * (5*6+6) + 6*6 + 6 = 150 (Keras: 150)
    LayerCase(
        "mha_output_tuple",
        {"type": MHA, "num_heads": 2, "key_dim": 3, "output_shape": [2, 3]},
        [(None, 4, 5), (None, 6, 5)],
        (None, 4, 2, 3),
        150,
    ),
    # attention over axes 2 and 3 of (3, 4, 5, 6): 3 * (6*6+6) + 6*6 + 6 = 168 (Keras: 168)
    LayerCase(
        "mha_attention_axes",
        {"type": MHA, "num_heads": 2, "key_dim": 3, "attention_axes": [2, 3]},
        [(None, 2, 3, 2, 4)] * 2,
        (None, 2, 3, 2, 4),
        3 * (4 * 6 + 6) + 6 * 4 + 4,
    ),
    # attention over axis 1 of (3, 2, 4), axis 2 joining the batch: the head-split view of a
    # (B, 3, 2, heads, dim) buffer is a copy, so the heads are merged after the products
    LayerCase(
        "mha_attention_first_axis",
        {"type": MHA, "num_heads": 2, "key_dim": 3, "attention_axes": [1]},
        [(None, 3, 2, 4)] * 2,
        (None, 3, 2, 4),
        3 * (4 * 6 + 6) + 6 * 4 + 4,
    ),
    # causal self attention: 3 * (8*8+8) + 8*8 + 8 = 288 (Keras: 288)
    LayerCase(
        "mha_causal",
        {"type": MHA, "num_heads": 2, "key_dim": 4, "use_causal_mask": True},
        [(None, 6, 8)] * 2,
        (None, 6, 8),
        288,
    ),
    LayerCase(
        "mha_window_dropout_training",
        {"type": MHA, "num_heads": 2, "key_dim": 4, "sliding_window": 2, "dropout": 0.3},
        [(None, 6, 8)] * 2,
        (None, 6, 8),
        288,
        training=True,
    ),
]

CASES += [
    # Keras-Hub builds embeddings (sequence_length, features): 12 * 4 = 48
    LayerCase(
        "position_embedding",
        {"type": "PositionEmbedding", "sequence_length": 12},
        (None, 5, 4),
        (None, 5, 4),
        48,
    ),
    LayerCase(
        "position_embedding_rank4",
        {"type": "PositionEmbedding", "sequence_length": 3},
        (None, 2, 3, 4),
        (None, 2, 3, 4),
        12,
    ),
]

CASES += [
    LayerCase(
        "attention_dot",
        {"type": "Attention"},
        [(None, 5, 4), (None, 6, 3), (None, 6, 4)],
        (None, 5, 3),
        0,
    ),
    # the scalar scale: 1 (Keras: 1)
    LayerCase(
        "attention_scaled_self",
        {"type": "Attention", "use_scale": True},
        [(None, 5, 4)] * 2,
        (None, 5, 4),
        1,
    ),
    # scale and concat_score_weight: 2 (Keras: 2)
    LayerCase(
        "attention_concat_causal_dropout",
        {
            "type": "Attention",
            "use_scale": True,
            "score_mode": "concat",
            "dropout": 0.3,
            "use_causal_mask": True,
        },
        [(None, 5, 4), (None, 5, 3), (None, 5, 4)],
        (None, 5, 3),
        2,
        training=True,
    ),
    # a scale per query feature: 4 (Keras: 4)
    LayerCase(
        "additive_attention",
        {"type": "AdditiveAttention"},
        [(None, 5, 4), (None, 6, 4)],
        (None, 5, 4),
        4,
    ),
    LayerCase(
        "additive_attention_no_scale",
        {"type": "AdditiveAttention", "use_scale": False, "use_causal_mask": True},
        [(None, 5, 4), (None, 5, 2), (None, 5, 4)],
        (None, 5, 2),
        0,
    ),
]

GQA = "GroupQueryAttention"
CASES += [
    # query 8*4*3 + 12, key and value 8*2*3 + 6 each, output 4*3*8 + 8 = 320 (Keras: 320)
    LayerCase(
        "gqa",
        {"type": GQA, "head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2},
        [(None, 5, 8), (None, 6, 8)],
        (None, 5, 8),
        320,
    ),
    # no bias: 7*12 + 3*6 + 4*6 + 12*7 = 210 (Keras: 210)
    LayerCase(
        "gqa_causal_no_bias_dropout",
        {
            "type": GQA,
            "head_dim": 2,
            "num_query_heads": 6,
            "num_key_value_heads": 3,
            "use_bias": False,
            "use_causal_mask": True,
            "dropout": 0.2,
        },
        [(None, 5, 7), (None, 5, 4), (None, 5, 3)],
        (None, 5, 7),
        210,
        training=True,
    ),
]
