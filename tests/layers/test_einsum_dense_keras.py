"""EinsumDense against numbers Keras 3.15.1 computed once (tests/fixtures/keras_einsum_dense.npz,
from scripts/keras_einsum_dense_reference.py): every equation form, shapes, counts, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import CallContext, ShapeError

DATA = np.load(Path(__file__).parent.parent / "fixtures" / "keras_einsum_dense.npz")
META = json.loads(bytes(DATA["meta"]).decode())


@pytest.mark.parametrize("name", sorted(META))
def test_equals_keras(name: str) -> None:
    case = META[name]
    layer = registry.get("EinsumDense").from_config({"type": "EinsumDense", **case["config"]})
    x = DATA[f"{name}/input"]
    shape = (None, *x.shape[1:])
    assert list(layer.compute_output_shape(shape)[1:]) == case["output_shape"]
    specs = layer.weight_specs(shape)
    assert [list(s.shape) for s in specs] == case["shapes"]
    assert sum(s.size for s in specs) == case["params"]
    weights = [DATA[f"{name}/weight{i}"] for i in range(len(specs))]
    out, _ = layer.forward(weights, x, CallContext())
    np.testing.assert_allclose(out, DATA[f"{name}/output"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("config", "shape", "field"),
    [
        ({"equation": "ab,bc->ac", "output_shape": 4}, (None, 3, 2), "equation"),
        ({"equation": "abc,cd->abd", "output_shape": (7, 4)}, (None, 3, 2), "output_shape"),
        ({"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "x"}, (None, 3), "bias_axes"),
    ],
)
def test_bad_shapes_name_the_field(config: dict[str, object], shape: tuple, field: str) -> None:
    layer = registry.get("EinsumDense").from_config({"type": "EinsumDense", **config})
    with pytest.raises(ShapeError) as info:
        layer.compute_output_shape(shape)
    assert info.value.field == field
