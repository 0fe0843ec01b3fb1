"""Every layer type of issue 14 inside a model that trains on the strict fake device with the
CPU's bits: device discipline (no host array mixed into device math) and same-seed equality."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import backend
from engine.build import build_model

IMAGE = {
    "type": "sequential",
    "layers": [
        {"type": "Input", "shape": [6, 5, 3]},
        {"type": "GaussianNoise", "stddev": 0.1},
        {"type": "ZeroPadding2D", "padding": [[1, 0], [0, 1]]},
        {"type": "DepthwiseConv2D", "kernel_size": 3, "depth_multiplier": 2, "activation": "relu"},
        {"type": "SeparableConv2D", "filters": 4, "kernel_size": 2, "padding": "same"},
        {"type": "Conv2DTranspose", "filters": 3, "kernel_size": 3, "strides": 2},
        {"type": "Cropping2D", "cropping": 1},
        {"type": "UpSampling2D", "size": [1, 2]},
        {"type": "SpatialDropout2D", "rate": 0.3},
        {"type": "Identity"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
}
SEQUENCE = {
    "type": "functional",
    "inputs": [{"name": "x", "shape": [6, 4]}],
    "layers": [
        {
            "name": "e",
            "type": "EinsumDense",
            "equation": "abc,cd->abd",
            "output_shape": [6, 8],
            "bias_axes": "d",
            "inputs": "x",
        },
        {"name": "pad", "type": "ZeroPadding1D", "padding": 1},
        {"name": "up", "type": "UpSampling1D", "size": 2},
        {"name": "crop", "type": "Cropping1D", "cropping": [3, 1]},
        {"name": "drop", "type": "SpatialDropout1D", "rate": 0.2},
        {
            "name": "dot",
            "type": "Attention",
            "use_scale": True,
            "dropout": 0.1,
            "inputs": ["drop", "e"],
        },
        {
            "name": "add",
            "type": "AdditiveAttention",
            "use_causal_mask": True,
            "inputs": {"query": "dot", "value": "drop"},
        },
        {
            "name": "gqa",
            "type": "GroupQueryAttention",
            "head_dim": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "dropout": 0.1,
            "inputs": ["add", "e"],
        },
        {"name": "pos", "type": "PositionEmbedding", "sequence_length": 12},
        {"name": "sum", "type": "Add", "inputs": ["gqa", "pos"]},
        {"name": "pool", "type": "GlobalAveragePooling1D"},
        {"name": "out", "type": "Dense", "units": 3, "activation": "softmax"},
    ],
    "outputs": ["out"],
}


def _fit(model_spec: dict[str, Any], device: str) -> tuple[Any, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    with backend.use(device):
        model = build_model(model_spec, seed=4)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = rng.standard_normal((12, *model.inputs[0].shape[1:])).astype(np.float32)
        y = rng.integers(0, 3, 12).astype(np.int32)
        history = model.fit(x, y, epochs=2, batch_size=6, verbose=0)
        model.predict(x, batch_size=6, verbose=0)
        return history.history, [backend.backend_of(w.data).to_host(w.data) for w in model.weights]


@pytest.mark.parametrize("model_spec", [IMAGE, SEQUENCE], ids=["image", "sequence"])
def test_fit_on_the_strict_fake_device_matches_the_cpu(model_spec: dict[str, Any]) -> None:
    cpu_history, cpu_weights = _fit(model_spec, "cpu")
    fake_history, fake_weights = _fit(model_spec, "fake")
    assert fake_history == cpu_history
    for a, b in zip(cpu_weights, fake_weights, strict=True):
        np.testing.assert_array_equal(a, b)
