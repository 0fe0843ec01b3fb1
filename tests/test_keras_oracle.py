"""Shapes and parameter counts that Keras 3.15.1 itself reported, checked against our rules.

Each row was produced once by building `keras.Input(shape)` -> the layer with the JAX backend and
reading `layer(inputs).shape`, `count_params()` and the trainable weights (Normalization after
`adapt`). Keras is not a test dependency: the numbers are frozen here, so this is an independent
oracle for every layer's `compute_output_shape` and `weight_specs`.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.layers import registry

KERAS_ROWS: list[tuple[dict[str, Any], Any, tuple[int | None, ...], int, int]] = [
    (
        {"type": "Dense", "units": 16},
        (
            None,
            4,
        ),
        (None, 16),
        80,
        80,
    ),
    ({"type": "Dense", "units": 5, "use_bias": False}, (None, 7, 3), (None, 7, 5), 15, 15),
    ({"type": "Conv1D", "filters": 8, "kernel_size": 3}, (None, 20, 4), (None, 18, 8), 104, 104),
    (
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
        (None, 20, 4),
        (None, 20, 8),
        104,
        104,
    ),
    (
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
        (None, 21, 4),
        (None, 11, 8),
        104,
        104,
    ),
    (
        {"type": "Conv2D", "filters": 32, "kernel_size": 3},
        (None, 28, 28, 3),
        (None, 26, 26, 32),
        896,
        896,
    ),
    (
        {
            "type": "Conv2D",
            "filters": 32,
            "kernel_size": [3, 5],
            "strides": [2, 1],
            "padding": "same",
        },
        (None, 28, 27, 3),
        (None, 14, 27, 32),
        1472,
        1472,
    ),
    (
        {"type": "Conv2D", "filters": 16, "kernel_size": 3, "groups": 2},
        (None, 10, 10, 4),
        (None, 8, 8, 16),
        304,
        304,
    ),
    (
        {"type": "Conv2D", "filters": 16, "kernel_size": 3, "dilation_rate": 2},
        (None, 10, 10, 4),
        (None, 6, 6, 16),
        592,
        592,
    ),
    (
        {"type": "Conv3D", "filters": 4, "kernel_size": 2},
        (None, 6, 6, 6, 2),
        (None, 5, 5, 5, 4),
        68,
        68,
    ),
    ({"type": "MaxPooling1D", "pool_size": 2}, (None, 9, 3), (None, 4, 3), 0, 0),
    ({"type": "MaxPooling2D", "pool_size": 2}, (None, 9, 9, 3), (None, 4, 4, 3), 0, 0),
    (
        {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
        (None, 9, 9, 3),
        (None, 5, 5, 3),
        0,
        0,
    ),
    (
        {"type": "AveragePooling2D", "pool_size": 2, "padding": "same"},
        (None, 9, 9, 3),
        (None, 5, 5, 3),
        0,
        0,
    ),
    ({"type": "MaxPooling3D", "pool_size": 2}, (None, 5, 5, 5, 2), (None, 2, 2, 2, 2), 0, 0),
    ({"type": "AveragePooling1D", "pool_size": 3, "strides": 1}, (None, 9, 3), (None, 7, 3), 0, 0),
    ({"type": "AveragePooling3D", "pool_size": 2}, (None, 4, 4, 4, 2), (None, 2, 2, 2, 2), 0, 0),
    ({"type": "GlobalMaxPooling1D"}, (None, 9, 3), (None, 3), 0, 0),
    ({"type": "GlobalAveragePooling2D"}, (None, 9, 9, 3), (None, 3), 0, 0),
    ({"type": "Flatten"}, (None, 3, 4, 5), (None, 60), 0, 0),
    (
        {"type": "Reshape", "target_shape": [2, -1]},
        (
            None,
            12,
        ),
        (None, 2, 6),
        0,
        0,
    ),
    ({"type": "Permute", "dims": [2, 1]}, (None, 3, 4), (None, 4, 3), 0, 0),
    (
        {"type": "RepeatVector", "n": 3},
        (
            None,
            4,
        ),
        (None, 3, 4),
        0,
        0,
    ),
    (
        {"type": "Dropout", "rate": 0.5},
        (
            None,
            4,
        ),
        (None, 4),
        0,
        0,
    ),
    (
        {"type": "Activation", "activation": "relu"},
        (
            None,
            4,
        ),
        (None, 4),
        0,
        0,
    ),
    (
        {"type": "Rescaling", "scale": 0.5, "offset": 1.0},
        (
            None,
            4,
        ),
        (None, 4),
        0,
        0,
    ),
    (
        {"type": "BatchNormalization"},
        (
            None,
            10,
        ),
        (None, 10),
        40,
        20,
    ),
    ({"type": "BatchNormalization"}, (None, 8, 8, 3), (None, 8, 8, 3), 12, 6),
    (
        {"type": "BatchNormalization", "center": False},
        (
            None,
            10,
        ),
        (None, 10),
        30,
        10,
    ),
    ({"type": "LayerNormalization"}, (None, 5, 10), (None, 5, 10), 20, 20),
    (
        {"type": "Normalization"},
        (
            None,
            7,
        ),
        (None, 7),
        15,
        0,
    ),
    (
        {"type": "Normalization", "mean": 0.0, "variance": 1.0},
        (
            None,
            7,
        ),
        (None, 7),
        0,
        0,
    ),
    (
        {"type": "Embedding", "input_dim": 1000, "output_dim": 64},
        (
            None,
            10,
        ),
        (None, 10, 64),
        64000,
        64000,
    ),
    ({"type": "Masking"}, (None, 10, 3), (None, 10, 3), 0, 0),
    ({"type": "SimpleRNN", "units": 8}, (None, 10, 3), (None, 8), 96, 96),
    (
        {"type": "SimpleRNN", "units": 8, "return_sequences": True},
        (None, 10, 3),
        (None, 10, 8),
        96,
        96,
    ),
    ({"type": "LSTM", "units": 64}, (None, 100, 64), (None, 64), 33024, 33024),
    (
        {"type": "LSTM", "units": 8, "return_sequences": True},
        (None, 10, 3),
        (None, 10, 8),
        384,
        384,
    ),
    ({"type": "GRU", "units": 8}, (None, 10, 3), (None, 8), 312, 312),
    ({"type": "GRU", "units": 8, "reset_after": False}, (None, 10, 3), (None, 8), 288, 288),
    (
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 8}},
        (None, 10, 3),
        (None, 16),
        768,
        768,
    ),
    (
        {
            "type": "Bidirectional",
            "layer": {"type": "GRU", "units": 8, "return_sequences": True},
            "merge_mode": "sum",
        },
        (None, 10, 3),
        (None, 10, 8),
        624,
        624,
    ),
    (
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 5}},
        (None, 10, 3),
        (None, 10, 5),
        20,
        20,
    ),
    ({"type": "Add"}, [(None, 4), (None, 4)], (None, 4), 0, 0),
    ({"type": "Concatenate"}, [(None, 4), (None, 6)], (None, 10), 0, 0),
    ({"type": "Concatenate", "axis": 1}, [(None, 2, 3), (None, 5, 3)], (None, 7, 3), 0, 0),
    ({"type": "Dot", "axes": 1}, [(None, 4), (None, 4)], (None, 1), 0, 0),
    ({"type": "Dot", "axes": [2, 2]}, [(None, 3, 4), (None, 5, 4)], (None, 3, 5), 0, 0),
    ({"type": "Multiply"}, [(None, 4), (None, 4)], (None, 4), 0, 0),
    ({"type": "Average"}, [(None, 4), (None, 4), (None, 4)], (None, 4), 0, 0),
    # Keras 3.15.1 (tests/fixtures/keras_attention.npz, scripts/keras_attention_reference.py)
    (
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 2},
        [(None, 8, 16)] * 2,
        (None, 8, 16),
        284,
        284,
    ),
    (
        {"type": "MultiHeadAttention", "num_heads": 3, "key_dim": 4, "value_dim": 5},
        [(None, 6, 7), (None, 5, 9), (None, 5, 3)],
        (None, 6, 7),
        406,
        406,
    ),
    (
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "output_shape": [2, 3]},
        [(None, 4, 5), (None, 6, 5)],
        (None, 4, 2, 3),
        150,
        150,
    ),
    (
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "attention_axes": [2, 3]},
        [(None, 3, 4, 5, 6)] * 2,
        (None, 3, 4, 5, 6),
        168,
        168,
    ),
    ({"type": "UpSampling1D", "size": 3}, (None, 5, 2), (None, 15, 2), 0, 0),
    ({"type": "UpSampling2D"}, (None, 4, 3, 2), (None, 8, 6, 2), 0, 0),
    ({"type": "UpSampling2D", "size": [1, 3]}, (None, 2, 3, 2), (None, 2, 9, 2), 0, 0),
    ({"type": "ZeroPadding1D"}, (None, 5, 2), (None, 7, 2), 0, 0),
    ({"type": "ZeroPadding1D", "padding": [2, 0]}, (None, 5, 2), (None, 7, 2), 0, 0),
    ({"type": "ZeroPadding2D"}, (None, 3, 4, 2), (None, 5, 6, 2), 0, 0),
    (
        {"type": "ZeroPadding2D", "padding": [[1, 0], [2, 3]]},
        (None, 3, 4, 2),
        (None, 4, 9, 2),
        0,
        0,
    ),
    ({"type": "Cropping1D"}, (None, 6, 2), (None, 4, 2), 0, 0),
    ({"type": "Cropping2D", "cropping": [[1, 0], [0, 2]]}, (None, 5, 6, 2), (None, 4, 4, 2), 0, 0),
    ({"type": "Cropping2D", "cropping": 1}, (None, 5, 6, 2), (None, 3, 4, 2), 0, 0),
    ({"type": "Identity"}, (None, 3, 4), (None, 3, 4), 0, 0),
    ({"type": "GaussianNoise", "stddev": 0.5}, (None, 4, 3), (None, 4, 3), 0, 0),
    ({"type": "SpatialDropout1D", "rate": 0.4}, (None, 6, 3), (None, 6, 3), 0, 0),
    ({"type": "SpatialDropout2D", "rate": 0.4}, (None, 3, 4, 3), (None, 3, 4, 3), 0, 0),
]


@pytest.mark.parametrize(
    ("config", "input_shape", "output_shape", "params", "trainable"),
    KERAS_ROWS,
    ids=[f"{r[0]['type']}-{i}" for i, r in enumerate(KERAS_ROWS)],
)
def test_matches_keras(
    config: dict[str, Any],
    input_shape: Any,
    output_shape: tuple[int | None, ...],
    params: int,
    trainable: int,
) -> None:
    layer = registry.get(config["type"]).from_config(dict(config))
    assert tuple(layer.compute_output_shape(input_shape)) == output_shape
    specs = layer.weight_specs(input_shape)
    assert sum(s.size for s in specs) == params
    assert sum(s.size for s in specs if s.trainable) == trainable
