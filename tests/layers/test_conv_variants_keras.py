"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose against numbers Keras 3.15.1 computed
once (tests/fixtures/keras_conv_variants.npz, from scripts/keras_conv_variants_reference.py):
output shapes, parameter counts, weight names and the outputs themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import CallContext

DATA = np.load(Path(__file__).parent.parent / "fixtures" / "keras_conv_variants.npz")
META = json.loads(bytes(DATA["meta"]).decode())


@pytest.mark.parametrize("name", sorted(META))
def test_equals_keras(name: str) -> None:
    case = META[name]
    layer = registry.get(case["type"]).from_config({"type": case["type"], **case["config"]})
    x = DATA[f"{name}/input"]
    shape = (None, *x.shape[1:])
    assert list(layer.compute_output_shape(shape)[1:]) == case["output_shape"]
    specs = layer.weight_specs(shape)
    assert sum(s.size for s in specs) == case["params"]
    assert [s.name for s in specs] == case["weights"]
    weights = [DATA[f"{name}/weight{i}"] for i in range(len(specs))]
    out, _ = layer.forward(weights, x, CallContext())
    np.testing.assert_allclose(out, DATA[f"{name}/output"], rtol=1e-4, atol=1e-5)
