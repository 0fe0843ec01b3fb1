"""Whole-model shapes and parameter counts, against numbers from Keras 3's formulas.

Each row is a spec and the table Keras prints for it: (name, class, output shape, params,
trainable params) per layer, formulas beside the numbers. Rows whose layer types are not
registered yet are skipped with the missing types named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from engine.layers import registry
from modelspec.check import check_text

Row = tuple[str, str, Any, int, int]


@dataclass
class ModelCase:
    id: str
    spec: str
    rows: list[Row]
    totals: tuple[int, int, int]  # total, trainable, non-trainable


def _types(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["type"]} if isinstance(node.get("type"), str) else set()
        return found.union(*(_types(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_types(v) for v in node)) if node else set()
    return set()


N = None
CASES = [
    ModelCase(
        "tutorial_mlp",
        """
model:
  layers:
    - {type: Dense, units: 16, activation: relu, input_shape: [4]}
    - {type: Dense, units: 8, activation: relu}
    - {type: Dense, units: 1, activation: sigmoid}
""",
        [
            ("input_layer", "InputLayer", (N, 4), 0, 0),
            ("dense", "Dense", (N, 16), 80, 80),  # 4*16 + 16
            ("dense_1", "Dense", (N, 8), 136, 136),  # 16*8 + 8
            ("dense_2", "Dense", (N, 1), 9, 9),  # 8*1 + 1
        ],
        (225, 225, 0),
    ),
    ModelCase(
        "cnn",
        """
model:
  type: sequential
  layers:
    - {type: Input, shape: [28, 28, 1]}
    - {type: Conv2D, filters: 32, kernel_size: 3, activation: relu}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: Conv2D, filters: 64, kernel_size: [3, 3], padding: same}
    - {type: Flatten}
    - {type: Dropout, rate: 0.5}
    - {type: Dense, units: 10, activation: softmax}
""",
        [
            ("input_layer", "InputLayer", (N, 28, 28, 1), 0, 0),
            ("conv2d", "Conv2D", (N, 26, 26, 32), 320, 320),  # 3*3*1*32 + 32
            ("max_pooling2d", "MaxPooling2D", (N, 13, 13, 32), 0, 0),
            ("conv2d_1", "Conv2D", (N, 13, 13, 64), 18496, 18496),  # 3*3*32*64 + 64
            ("flatten", "Flatten", (N, 10816), 0, 0),
            ("dropout", "Dropout", (N, 10816), 0, 0),
            ("dense", "Dense", (N, 10), 108170, 108170),  # 10816*10 + 10
        ],
        (126986, 126986, 0),
    ),
    ModelCase(
        "functional_two_heads",
        """
model:
  type: functional
  inputs:
    - {name: image, shape: [8, 8, 1]}
    - {name: meta, shape: [4]}
  layers:
    - {name: conv, type: Conv2D, filters: 16, kernel_size: 3, activation: relu, inputs: image}
    - {name: flat, type: Flatten}
    - {name: both, type: Concatenate, inputs: [flat, meta]}
    - {name: hidden, type: Dense, units: 32, activation: relu}
    - {name: digit, type: Dense, units: 10, activation: softmax}
    - {name: big, type: Dense, units: 1, activation: sigmoid, inputs: hidden}
  outputs: [digit, big]
""",
        [
            ("image", "InputLayer", (N, 8, 8, 1), 0, 0),
            ("meta", "InputLayer", (N, 4), 0, 0),
            ("conv", "Conv2D", (N, 6, 6, 16), 160, 160),  # 3*3*1*16 + 16
            ("flat", "Flatten", (N, 576), 0, 0),
            ("both", "Concatenate", (N, 580), 0, 0),
            ("hidden", "Dense", (N, 32), 18592, 18592),  # 580*32 + 32
            ("digit", "Dense", (N, 10), 330, 330),
            ("big", "Dense", (N, 1), 33, 33),
        ],
        (19115, 19115, 0),
    ),
    ModelCase(
        "shared_layer_counts_once",
        """
model:
  type: functional
  inputs: [{name: a, shape: [8]}, {name: b, shape: [8]}]
  layers:
    - {name: encode, type: Dense, units: 4, inputs: a}
    - {name: encode_b, shares: encode, inputs: b}
    - {name: sum, type: Add, inputs: [encode, encode_b]}
    - {name: out, type: Dense, units: 1}
  outputs: out
""",
        [
            ("a", "InputLayer", (N, 8), 0, 0),
            ("b", "InputLayer", (N, 8), 0, 0),
            ("encode", "Dense", (N, 4), 36, 36),  # 8*4 + 4, once for both calls
            ("sum", "Add", (N, 4), 0, 0),
            ("out", "Dense", (N, 1), 5, 5),
        ],
        (41, 41, 0),
    ),
    ModelCase(
        "trainable_false",
        """
model:
  layers:
    - {type: Input, shape: [4]}
    - {type: Dense, units: 16, trainable: false}
    - {type: Dense, units: 1}
""",
        [
            ("input_layer", "InputLayer", (N, 4), 0, 0),
            ("dense", "Dense", (N, 16), 80, 0),
            ("dense_1", "Dense", (N, 1), 17, 17),
        ],
        (97, 17, 80),
    ),
    ModelCase(
        "recurrent",
        """
model:
  layers:
    - {type: Input, shape: [10, 8]}
    - {type: LSTM, units: 16, return_sequences: true}
    - {type: GRU, units: 8, return_sequences: true}
    - {type: SimpleRNN, units: 4}
    - {type: Dense, units: 1}
""",
        [
            ("input_layer", "InputLayer", (N, 10, 8), 0, 0),
            ("lstm", "LSTM", (N, 10, 16), 1600, 1600),  # 4 * (8*16 + 16*16 + 16)
            ("gru", "GRU", (N, 10, 8), 624, 624),  # 3 * (16*8 + 8*8 + 2*8), reset_after
            ("simple_rnn", "SimpleRNN", (N, 4), 52, 52),  # 8*4 + 4*4 + 4
            ("dense", "Dense", (N, 1), 5, 5),
        ],
        (2281, 2281, 0),
    ),
    ModelCase(
        "conv1d_pooling",
        """
model:
  layers:
    - {type: Input, shape: [20, 3]}
    - {type: Conv1D, filters: 8, kernel_size: 3, padding: causal}
    - {type: MaxPooling1D, pool_size: 2}
    - {type: AveragePooling1D}
    - {type: GlobalAveragePooling1D}
    - {type: Dense, units: 2}
""",
        [
            ("input_layer", "InputLayer", (N, 20, 3), 0, 0),
            ("conv1d", "Conv1D", (N, 20, 8), 80, 80),  # 3*3*8 + 8
            ("max_pooling1d", "MaxPooling1D", (N, 10, 8), 0, 0),
            ("average_pooling1d", "AveragePooling1D", (N, 5, 8), 0, 0),
            ("global_average_pooling1d", "GlobalAveragePooling1D", (N, 8), 0, 0),
            ("dense", "Dense", (N, 2), 18, 18),
        ],
        (98, 98, 0),
    ),
    ModelCase(
        "conv3d_and_2d_pools",
        """
model:
  type: functional
  inputs: [{name: vol, shape: [4, 4, 4, 1]}, {name: img, shape: [6, 6, 2]}]
  layers:
    - {name: c3, type: Conv3D, filters: 2, kernel_size: 2, inputs: vol}
    - {name: p3, type: MaxPooling3D, pool_size: 3}
    - {name: a3, type: AveragePooling3D, pool_size: 1}
    - {name: f3, type: Flatten}
    - {name: g2, type: GlobalMaxPooling2D, inputs: img}
    - {name: a2, type: AveragePooling2D, inputs: img}
    - {name: ga2, type: GlobalAveragePooling2D}
    - {name: m, type: GlobalMaxPooling1D, inputs: r}
    - {name: r, type: Reshape, target_shape: [1, 2], inputs: g2}
    - {name: all, type: Concatenate, inputs: [f3, ga2, m]}
  outputs: [all]
""",
        [
            ("vol", "InputLayer", (N, 4, 4, 4, 1), 0, 0),
            ("img", "InputLayer", (N, 6, 6, 2), 0, 0),
            ("c3", "Conv3D", (N, 3, 3, 3, 2), 18, 18),  # 2*2*2*1*2 + 2
            ("p3", "MaxPooling3D", (N, 1, 1, 1, 2), 0, 0),
            ("a3", "AveragePooling3D", (N, 1, 1, 1, 2), 0, 0),
            ("f3", "Flatten", (N, 2), 0, 0),
            ("g2", "GlobalMaxPooling2D", (N, 2), 0, 0),
            ("a2", "AveragePooling2D", (N, 3, 3, 2), 0, 0),
            ("ga2", "GlobalAveragePooling2D", (N, 2), 0, 0),
            ("m", "GlobalMaxPooling1D", (N, 2), 0, 0),
            ("r", "Reshape", (N, 1, 2), 0, 0),
            ("all", "Concatenate", (N, 6), 0, 0),
        ],
        (18, 18, 0),
    ),
    ModelCase(
        "reshaping_layers",
        """
model:
  layers:
    - {type: Input, shape: [6]}
    - {type: Reshape, target_shape: [2, 3]}
    - {type: Permute, dims: [2, 1]}
    - {type: Flatten}
    - {type: RepeatVector, n: 3}
    - {type: Rescaling, scale: 0.5}
    - {type: Activation, activation: relu}
""",
        [
            ("input_layer", "InputLayer", (N, 6), 0, 0),
            ("reshape", "Reshape", (N, 2, 3), 0, 0),
            ("permute", "Permute", (N, 3, 2), 0, 0),
            ("flatten", "Flatten", (N, 6), 0, 0),
            ("repeat_vector", "RepeatVector", (N, 3, 6), 0, 0),
            ("rescaling", "Rescaling", (N, 3, 6), 0, 0),
            ("activation", "Activation", (N, 3, 6), 0, 0),
        ],
        (0, 0, 0),
    ),
    ModelCase(
        "activation_layers",
        """
model:
  layers:
    - {type: Input, shape: [5, 4]}
    - {type: Dense, units: 4}
    - {type: ReLU, max_value: 6.0}
    - {type: LeakyReLU}
    - {type: PReLU, shared_axes: [1]}
    - {type: ELU}
    - {type: PReLU}
    - {type: Softmax, axis: 1}
""",
        [
            ("input_layer", "InputLayer", (N, 5, 4), 0, 0),
            ("dense", "Dense", (N, 5, 4), 20, 20),  # 4*4 + 4
            ("re_lu", "ReLU", (N, 5, 4), 0, 0),
            ("leaky_re_lu", "LeakyReLU", (N, 5, 4), 0, 0),
            ("p_re_lu", "PReLU", (N, 5, 4), 4, 4),  # alpha (1, 4)
            ("elu", "ELU", (N, 5, 4), 0, 0),
            ("p_re_lu_1", "PReLU", (N, 5, 4), 20, 20),  # alpha (5, 4)
            ("softmax", "Softmax", (N, 5, 4), 0, 0),
        ],
        (44, 44, 0),
    ),
    ModelCase(
        "merges",
        """
model:
  type: functional
  inputs: [{name: a, shape: [4]}, {name: b, shape: [4]}]
  layers:
    - {name: s, type: Subtract, inputs: [a, b]}
    - {name: m, type: Multiply, inputs: [a, b]}
    - {name: av, type: Average, inputs: [s, m]}
    - {name: mx, type: Maximum, inputs: [av, a]}
    - {name: mn, type: Minimum, inputs: [mx, b]}
    - {name: d, type: Dot, axes: 1, inputs: [mn, a]}
  outputs: [d]
""",
        [
            ("a", "InputLayer", (N, 4), 0, 0),
            ("b", "InputLayer", (N, 4), 0, 0),
            ("s", "Subtract", (N, 4), 0, 0),
            ("m", "Multiply", (N, 4), 0, 0),
            ("av", "Average", (N, 4), 0, 0),
            ("mx", "Maximum", (N, 4), 0, 0),
            ("mn", "Minimum", (N, 4), 0, 0),
            ("d", "Dot", (N, 1), 0, 0),
        ],
        (0, 0, 0),
    ),
    ModelCase(
        "transformer_block",
        """
model:
  type: functional
  inputs: [{name: ids, shape: [10], dtype: int32}]
  layers:
    - {name: tok, type: Embedding, input_dim: 50, output_dim: 16, mask_zero: true}
    - {name: pos, type: PositionEmbedding, sequence_length: 12}
    - {name: x, type: Add, inputs: [tok, pos]}
    - {name: att, type: MultiHeadAttention, num_heads: 2, key_dim: 8, inputs: {query: x, value: x}}
    - {name: cross, type: MultiHeadAttention, num_heads: 2, key_dim: 4, value_dim: 3,
       output_shape: 5, inputs: [att, x, tok]}
  outputs: [cross]
""",
        [
            ("ids", "InputLayer", (N, 10), 0, 0),
            ("tok", "Embedding", (N, 10, 16), 800, 800),  # 50 * 16
            ("pos", "PositionEmbedding", (N, 10, 16), 192, 192),  # 12 * 16
            ("x", "Add", (N, 10, 16), 0, 0),
            # q, k, v: 3 * (16*2*8 + 2*8); output: 2*8*16 + 16 (Keras 3: 1088)
            ("att", "MultiHeadAttention", (N, 10, 16), 1088, 1088),
            # q, k: 2 * (16*2*4 + 8); v: 16*2*3 + 6; output: 2*3*5 + 5
            ("cross", "MultiHeadAttention", (N, 10, 5), 272 + 102 + 35, 272 + 102 + 35),
        ],
        (800 + 192 + 1088 + 409, 800 + 192 + 1088 + 409, 0),
    ),
    ModelCase(
        "reshaping_and_noise",
        """
model:
  type: sequential
  layers:
    - {type: Input, shape: [6, 5, 2]}
    - {type: GaussianNoise, stddev: 0.1}
    - {type: ZeroPadding2D, padding: [[1, 0], [2, 3]]}
    - {type: UpSampling2D, size: [2, 1]}
    - {type: Cropping2D, cropping: 1}
    - {type: SpatialDropout2D, rate: 0.2}
    - {type: Identity}
    - {type: Reshape, target_shape: [96, 2]}
    - {type: ZeroPadding1D, padding: [1, 2]}
    - {type: UpSampling1D, size: 2}
    - {type: Cropping1D, cropping: [4, 2]}
    - {type: SpatialDropout1D, rate: 0.2}
""",
        [
            ("input_layer", "InputLayer", (N, 6, 5, 2), 0, 0),
            ("gaussian_noise", "GaussianNoise", (N, 6, 5, 2), 0, 0),
            ("zero_padding2d", "ZeroPadding2D", (N, 7, 10, 2), 0, 0),  # 6+1, 5+2+3
            ("up_sampling2d", "UpSampling2D", (N, 14, 10, 2), 0, 0),  # 7*2, 10*1
            ("cropping2d", "Cropping2D", (N, 12, 8, 2), 0, 0),  # 14-2, 10-2
            ("spatial_dropout2d", "SpatialDropout2D", (N, 12, 8, 2), 0, 0),
            ("identity", "Identity", (N, 12, 8, 2), 0, 0),
            ("reshape", "Reshape", (N, 96, 2), 0, 0),
            ("zero_padding1d", "ZeroPadding1D", (N, 99, 2), 0, 0),  # 96+1+2
            ("up_sampling1d", "UpSampling1D", (N, 198, 2), 0, 0),
            ("cropping1d", "Cropping1D", (N, 192, 2), 0, 0),  # 198-4-2
            ("spatial_dropout1d", "SpatialDropout1D", (N, 192, 2), 0, 0),
        ],
        (0, 0, 0),
    ),
    ModelCase(
        "luong_and_bahdanau",
        """
model:
  type: functional
  inputs: [{name: q, shape: [5, 4]}, {name: v, shape: [7, 4]}]
  layers:
    - {name: dot, type: Attention, use_scale: true, inputs: [q, v]}
    - {name: concat, type: Attention, score_mode: concat, inputs: {query: dot, value: v}}
    - {name: additive, type: AdditiveAttention, inputs: [concat, v, v]}
    - {name: grouped, type: GroupQueryAttention, head_dim: 2, num_query_heads: 2,
       num_key_value_heads: 1, inputs: [additive, v]}
  outputs: [grouped]
""",
        [
            ("q", "InputLayer", (N, 5, 4), 0, 0),
            ("v", "InputLayer", (N, 7, 4), 0, 0),
            ("dot", "Attention", (N, 5, 4), 1, 1),  # the scale
            ("concat", "Attention", (N, 5, 4), 1, 1),  # concat_score_weight
            ("additive", "AdditiveAttention", (N, 5, 4), 4, 4),  # a scale per feature
            # query 4*2*2 + 4, key and value 4*1*2 + 2 each, output 2*2*4 + 4
            ("grouped", "GroupQueryAttention", (N, 5, 4), 60, 60),
        ],
        (66, 66, 0),
    ),
    ModelCase(
        "conv_variants",
        """
model:
  layers:
    - {type: Input, shape: [7, 6, 3]}
    - {type: DepthwiseConv2D, kernel_size: 3, depth_multiplier: 2}
    - {type: SeparableConv2D, filters: 4, kernel_size: 2, padding: same}
    - {type: Conv2DTranspose, filters: 5, kernel_size: 3, strides: 2, padding: same}
    - {type: EinsumDense, equation: "abcd,de->abce", output_shape: [null, null, 3], bias_axes: e}
""",
        [
            ("input_layer", "InputLayer", (N, 7, 6, 3), 0, 0),
            # 3*3*3*2 + 6; out 7-2, 6-2
            ("depthwise_conv2d", "DepthwiseConv2D", (N, 5, 4, 6), 60, 60),
            # depthwise 2*2*6*1, pointwise 6*4, bias 4
            ("separable_conv2d", "SeparableConv2D", (N, 5, 4, 4), 52, 52),
            # 3*3*5*4 + 5; out 5*2, 4*2
            ("conv2d_transpose", "Conv2DTranspose", (N, 10, 8, 5), 185, 185),
            ("einsum_dense", "EinsumDense", (N, 10, 8, 3), 18, 18),  # 5*3 + 3
        ],
        (315, 315, 0),
    ),
    ModelCase(
        "batch_normalization",
        """
model:
  layers:
    - {type: Input, shape: [5]}
    - {type: Dense, units: 4}
    - {type: BatchNormalization}
    - {type: LayerNormalization}
""",
        [
            ("input_layer", "InputLayer", (N, 5), 0, 0),
            ("dense", "Dense", (N, 4), 24, 24),
            # gamma, beta trainable; moving_mean, moving_variance not: 4 * 4
            ("batch_normalization", "BatchNormalization", (N, 4), 16, 8),
            ("layer_normalization", "LayerNormalization", (N, 4), 8, 8),  # gamma, beta
        ],
        (48, 40, 8),
    ),
    ModelCase(
        "embedding_masking",
        """
model:
  layers:
    - {type: Input, shape: [10], dtype: int32}
    - {type: Embedding, input_dim: 100, output_dim: 8, mask_zero: true}
    - {type: Masking}
    - {type: GlobalAveragePooling1D}
    - {type: Dense, units: 1, activation: sigmoid}
""",
        [
            ("input_layer", "InputLayer", (N, 10), 0, 0),
            ("embedding", "Embedding", (N, 10, 8), 800, 800),  # 100 * 8
            ("masking", "Masking", (N, 10, 8), 0, 0),
            ("global_average_pooling1d", "GlobalAveragePooling1D", (N, 8), 0, 0),
            ("dense", "Dense", (N, 1), 9, 9),
        ],
        (809, 809, 0),
    ),
    ModelCase(
        "normalization",
        """
model:
  layers:
    - {type: Input, shape: [4]}
    - {type: Normalization}
    - {type: Normalization, mean: [0, 0, 0, 0], variance: [1, 1, 1, 1]}
""",
        [
            ("input_layer", "InputLayer", (N, 4), 0, 0),
            ("normalization", "Normalization", (N, 4), 9, 0),  # mean 4, variance 4, count 1
            ("normalization_1", "Normalization", (N, 4), 0, 0),
        ],
        (9, 0, 9),
    ),
    ModelCase(
        "wrappers",
        """
model:
  layers:
    - {type: Input, shape: [10, 4]}
    - {type: TimeDistributed, layer: {type: Dense, units: 3}}
    - {type: Bidirectional, layer: {type: LSTM, units: 8}}
""",
        [
            ("input_layer", "InputLayer", (N, 10, 4), 0, 0),
            ("time_distributed", "TimeDistributed", (N, 10, 3), 15, 15),  # 4*3 + 3
            ("bidirectional", "Bidirectional", (N, 16), 768, 768),  # 2 * 4*(3*8 + 8*8 + 8)
        ],
        (783, 783, 0),
    ),
    ModelCase(
        "lambda",
        """
model:
  layers:
    - {type: Input, shape: [3, 4]}
    - {type: Lambda, expression: "mean(square(x), axis=-1, keepdims=true) * 2.0"}
""",
        [
            ("input_layer", "InputLayer", (N, 3, 4), 0, 0),
            ("lambda", "Lambda", (N, 3, 1), 0, 0),
        ],
        (0, 0, 0),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_whole_model_table(case: ModelCase) -> None:
    missing = _types(yaml.safe_load(case.spec)["model"]["layers"]) - set(registry.all_layers())
    if missing:
        pytest.skip(f"layer types not registered yet: {sorted(missing)}")
    report = check_text(case.spec, f"{case.id}.yaml")
    assert [d for d in report.diagnostics if d.severity == "error"] == []
    assert report.model is not None and report.model.complete
    got = [
        (r.name, r.type, r.output_shape, r.params, r.trainable_params) for r in report.model.rows
    ]
    assert got == case.rows
    totals = tuple(
        report.model.total(k) for k in ("params", "trainable_params", "non_trainable_params")
    )
    assert totals == case.totals


def test_shared_layer_lists_every_call() -> None:
    report = check_text(CASES[3].spec, "shared.yaml")
    assert report.model is not None
    rows = {r.name: r for r in report.model.rows}
    assert rows["encode"].connections == ["a[0][0]", "b[0][0]"]
    assert rows["sum"].connections == ["encode[0][0], encode[1][0]"]
    assert not report.model.chain


def test_float64_doubles_weight_and_activation_bytes() -> None:
    spec = CASES[0].spec
    single = check_text(spec).model
    double = check_text("dtype: float64\n" + spec).model
    assert single is not None and double is not None
    assert single.total("weight_bytes") == 225 * 4
    assert double.total("weight_bytes") == 225 * 8
    assert double.total("activation_bytes") == 2 * single.total("activation_bytes") - 16


def test_every_registered_layer_has_a_whole_model_row() -> None:
    covered = set().union(*(_types(yaml.safe_load(c.spec)["model"]["layers"]) for c in CASES))
    assert set(registry.all_layers()) <= covered
