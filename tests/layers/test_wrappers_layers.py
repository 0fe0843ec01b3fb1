"""Bidirectional and TimeDistributed beyond the layer table: equivalence with running the
wrapped layers by hand, nested-config validation, and the Python API spelling."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from engine.layers import LSTM, Bidirectional, Dense, TimeDistributed, registry
from engine.layers.base import CallContext


def _built(config: dict, input_shape: tuple):  # type: ignore[no-untyped-def]
    layer = registry.get(config["type"]).from_config({**config, "dtype": "float64"})
    layer.build(input_shape, rng=np.random.default_rng(1))
    return layer


MERGES = {
    "concat": lambda a, b: np.concatenate([a, b], -1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


@pytest.mark.parametrize("merge_mode", list(MERGES))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_is_forward_and_flipped_backward(
    merge_mode: str, return_sequences: bool
) -> None:
    inner = {"type": "GRU", "units": 3, "return_sequences": return_sequences}
    layer = _built(
        {"type": "Bidirectional", "layer": inner, "merge_mode": merge_mode}, (None, 4, 2)
    )
    names = [w.name.split("/", 1)[1] for w in layer.weights]
    assert names[:3] == ["forward/kernel", "forward/recurrent_kernel", "forward/bias"]
    assert names[3:] == ["backward/kernel", "backward/recurrent_kernel", "backward/bias"]
    params = [w.data for w in layer.weights]
    x = np.random.default_rng(0).standard_normal((2, 4, 2))
    out, _ = layer.forward(params, x, CallContext())

    fwd = _built(inner, (None, 4, 2))
    yf, _ = fwd.forward(params[:3], x, CallContext())
    yb, _ = fwd.forward(params[3:], x[:, ::-1], CallContext())
    if return_sequences:
        yb = yb[:, ::-1]
    np.testing.assert_allclose(out, MERGES[merge_mode](yf, yb), rtol=1e-12)
    mask = np.ones((2, 4), dtype=bool)
    assert (layer.output_mask(x, mask) is mask) == return_sequences


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"layer": {"type": "LSTM", "units": 2}, "merge_mode": None}, "merge_mode None"),
        ({"layer": {"type": "Dense", "units": 2}}, "wraps a recurrent layer"),
        ({"layer": {"type": "LSTM", "units": -2}}, "greater than 0"),
        ({"layer": {"type": "LSTM", "units": 2, "colour": 1}}, "colour"),
        ({"layer": {"type": "Nope"}}, "unknown layer type 'Nope'"),
        ({"layer": {"units": 2}}, "with a `type`"),
    ],
)
def test_bidirectional_rejects_bad_configs(config: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        registry.get("Bidirectional").from_config(config)


def test_time_distributed_rejects_bad_configs() -> None:
    with pytest.raises(ValidationError, match="one-input layer"):
        registry.get("TimeDistributed").from_config({"layer": {"type": "Add"}})
    layer = registry.get("TimeDistributed").from_config({"layer": {"type": "Dense", "units": 2}})
    with pytest.raises(ValueError, match="rank 3 or more"):
        layer.compute_output_shape((None, 4))


def test_time_distributed_dense_is_dense_per_step() -> None:
    layer = _built(
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 3, "activation": "relu"}},
        (None, 5, 4),
    )
    params = [w.data for w in layer.weights]
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    out, _ = layer.forward(params, x, CallContext())
    np.testing.assert_allclose(out, np.maximum(x @ params[0] + params[1], 0), rtol=1e-12)


def test_python_api_spelling() -> None:
    bi = Bidirectional(LSTM(4, return_sequences=True), merge_mode="sum")
    assert bi.config.layer["type"] == "LSTM"
    assert bi.compute_output_shape((None, 7, 3)) == (None, 7, 4)
    assert sum(s.size for s in bi.weight_specs((None, 7, 3))) == 2 * 4 * (4 * (3 + 4) + 4)
    td = TimeDistributed(Dense(2))
    assert td.compute_output_shape((None, 7, 3)) == (None, 7, 2)
    again = Bidirectional.from_config(bi.get_config())
    assert again.get_config() == bi.get_config()
