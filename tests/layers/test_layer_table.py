"""Runs every row of the layer table (tests/layers/cases/*.py) through the same checks."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers import registry
from engine.layers.base import CallContext
from engine.tensor import Tensor
from tests.layers.harness import LayerCase, all_cases, concrete, make_inputs, numeric_grad

CASES = all_cases()


def _layer(case: LayerCase, dtype: str = "float32") -> object:
    cls = registry.get(case.config["type"])
    return cls.from_config({**case.config, "dtype": dtype})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_inferred_shape_and_params(case: LayerCase) -> None:
    layer = _layer(case)
    assert layer.compute_output_shape(case.input_shape) == case.output_shape
    specs = layer.weight_specs(case.input_shape)
    total = sum(s.size for s in specs)
    trainable = sum(s.size for s in specs if s.trainable and case.config.get("trainable", True))
    assert total == case.params
    assert trainable == (case.params if case.trainable is None else case.trainable)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_config_round_trip(case: LayerCase) -> None:
    layer = _layer(case)
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forward_shape_and_tape_path(case: LayerCase) -> None:
    rng = np.random.default_rng(0)
    layer = _layer(case)
    layer.build(case.input_shape, rng=np.random.default_rng(1))
    assert layer.count_params() == case.params
    x = make_inputs(case, rng, np.float32)
    params = [w.data for w in layer.weights]
    out, _ = layer.forward(params, x, CallContext(training=False, rng=np.random.default_rng(2)))
    expected = concrete(case.output_shape, case.batch, case.fill)
    assert out.shape == expected
    assert out.dtype == np.float32
    via_call = layer(x if not isinstance(x, list) else [Tensor(a) for a in x])
    np.testing.assert_allclose(via_call.numpy(), out, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.check_grads], ids=[c.id for c in CASES if c.check_grads]
)
def test_backward_matches_finite_differences(case: LayerCase) -> None:
    rng = np.random.default_rng(0)
    layer = _layer(case, "float64")
    layer.build(case.input_shape, rng=np.random.default_rng(1))
    x = make_inputs(case, rng, np.float64)
    xs = x if isinstance(x, list) else [x]
    params = [w.data for w in layer.weights]
    seed = 3

    def run() -> tuple[object, object]:
        ctx = CallContext(training=case.training, rng=np.random.default_rng(seed))
        return layer.forward(params, x, ctx)

    out, cache = run()
    proj = rng.standard_normal(out.shape)

    def loss() -> float:
        return float((run()[0] * proj).sum())

    grads = [
        np.empty_like(p) if w.trainable else None
        for w, p in zip(layer.weights, params, strict=True)
    ]
    ctx = CallContext(training=case.training, rng=np.random.default_rng(seed))
    gin = layer.backward(params, cache, proj, grads, ctx)
    gins = gin if isinstance(gin, list) else [gin]
    for i, (xi, gi) in enumerate(zip(xs, gins, strict=True)):
        if xi.dtype.kind != "f":
            continue
        np.testing.assert_allclose(
            gi, numeric_grad(loss, xi), rtol=case.rtol, atol=1e-6, err_msg=f"input {i}"
        )
    for w, p, g in zip(layer.weights, params, grads, strict=True):
        if g is not None:
            np.testing.assert_allclose(
                g, numeric_grad(loss, p), rtol=case.rtol, atol=1e-6, err_msg=f"weight {w.name}"
            )


# Input is the model's placeholder, not a computation: tests/spec and tests/training cover it.
NOT_IN_TABLE = {"Input"}


def test_every_registered_layer_has_a_table_row() -> None:
    """A layer is registered in one line; forgetting its row in tests/layers/cases/ fails here."""
    covered = {c.config["type"] for c in CASES}
    missing = sorted(set(registry.all_layers()) - covered - NOT_IN_TABLE)
    assert missing == [], f"layers without a row in tests/layers/cases/: {missing}"
