"""`use_causal_mask` is a call argument, as in Keras: an eager call applies it to that call
only, and a graph call keeps it for the node it builds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import SymbolicTensor
from engine.tensor import Tensor

LAYERS = [
    {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3},
    {"type": "GroupQueryAttention", "head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 1},
    {"type": "Attention"},
]
T, D = 5, 6


def _layer_and_input(config: dict[str, Any]) -> tuple[Any, Tensor]:
    layer = registry.get(config["type"]).from_config(config)
    x = Tensor(np.random.default_rng(0).standard_normal((2, T, D)).astype(np.float32))
    return layer, x


def _call(layer: Any, x: Tensor, **kwargs: Any) -> np.ndarray:
    if layer.type_name == "Attention":
        return np.asarray(layer([x, x], **kwargs).numpy())
    return np.asarray(layer(x, x, **kwargs).numpy())


def _lower_triangle_output(layer: Any, x: Tensor) -> np.ndarray:
    """The causal answer by another road: the first i + 1 positions alone give output i."""
    rows = [_call(layer, Tensor(x.numpy()[:, : i + 1]))[:, i] for i in range(T)]
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("config", LAYERS, ids=lambda c: c["type"])
def test_an_eager_causal_call_masks_that_call_only(config: dict[str, Any]) -> None:
    layer, x = _layer_and_input(config)
    plain = _call(layer, x)
    causal = _call(layer, x, use_causal_mask=True)
    np.testing.assert_allclose(causal, _lower_triangle_output(layer, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(causal[:, :-1], plain[:, :-1])
    assert layer.config.use_causal_mask is False
    np.testing.assert_array_equal(_call(layer, x), plain)


def test_a_graph_call_keeps_the_causal_mask_for_its_node() -> None:
    layer, _ = _layer_and_input(LAYERS[0])
    x = SymbolicTensor((None, T, D), "float32")
    layer(x, x, use_causal_mask=True)
    assert layer.config.use_causal_mask is True
