"""Initializers against Keras 3's formulas: fans, variance scaling limits and spreads, the
truncated normal's 0.8796 correction, orthogonality, identity and seeding."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine import initializers

TRUNC = 0.87962566103423978


def _draw(spec: Any, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return initializers.get(spec)(shape, np.random.default_rng(seed), np.float32)


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((3, 5), (3, 5)),
        ((3, 3, 4, 8), (36, 72)),
        ((5, 2, 6), (10, 30)),
    ],
)
def test_compute_fans(shape: tuple[int, ...], fans: tuple[int, int]) -> None:
    assert initializers.compute_fans(shape) == fans


SHAPE = (300, 200)  # fan_in 300, fan_out 200
VARIANCE_SCALING = [
    ("glorot_uniform", 1.0, 250, "uniform"),
    ("glorot_normal", 1.0, 250, "normal"),
    ("he_uniform", 2.0, 300, "uniform"),
    ("he_normal", 2.0, 300, "normal"),
    ("lecun_uniform", 1.0, 300, "uniform"),
    ("lecun_normal", 1.0, 300, "normal"),
]


@pytest.mark.parametrize(("name", "scale", "n", "distribution"), VARIANCE_SCALING)
def test_variance_scaling(name: str, scale: float, n: float, distribution: str) -> None:
    w = _draw(name, SHAPE)
    assert w.dtype == np.float32 and w.shape == SHAPE
    assert abs(float(w.mean())) < 0.1 * math.sqrt(scale / n)
    if distribution == "uniform":
        limit = math.sqrt(3 * scale / n)  # glorot_uniform: sqrt(6 / (fan_in + fan_out))
        assert float(np.abs(w).max()) <= limit
        assert float(np.abs(w).max()) > 0.99 * limit
        assert float(w.std()) == pytest.approx(limit / math.sqrt(3), rel=0.02)
    else:
        stddev = math.sqrt(scale / n) / TRUNC  # of the normal before truncation
        assert float(np.abs(w).max()) <= 2 * stddev * (1 + 1e-6)
        assert float(np.abs(w).max()) > 1.95 * stddev
        assert float(w.std()) == pytest.approx(math.sqrt(scale / n), rel=0.02)


def test_glorot_uniform_limit_formula() -> None:
    w = _draw("glorot_uniform", (3, 3, 16, 32))
    fan_in, fan_out = 9 * 16, 9 * 32
    assert float(np.abs(w).max()) <= math.sqrt(6 / (fan_in + fan_out))


@pytest.mark.parametrize(
    ("spec", "mean", "std", "bounds"),
    [
        ("random_normal", 0.0, 0.05, None),
        ({"type": "random_normal", "mean": 1.0, "stddev": 0.2}, 1.0, 0.2, None),
        ("random_uniform", 0.0, 0.1 / math.sqrt(12), (-0.05, 0.05)),
        ({"type": "random_uniform", "minval": 2, "maxval": 4}, 3.0, 2 / math.sqrt(12), (2, 4)),
        ("truncated_normal", 0.0, 0.05 * TRUNC, (-0.1, 0.1)),
    ],
)
def test_random_initializers(
    spec: Any, mean: float, std: float, bounds: tuple[float, float] | None
) -> None:
    w = _draw(spec, SHAPE)
    assert float(w.mean()) == pytest.approx(mean, abs=0.01 * max(std, 0.05))
    assert float(w.std()) == pytest.approx(std, rel=0.02)
    if bounds is not None:
        assert bounds[0] <= float(w.min()) and float(w.max()) <= bounds[1]


@pytest.mark.parametrize(
    ("spec", "value"),
    [("zeros", 0.0), ("ones", 1.0), ({"type": "constant", "value": 2.5}, 2.5), ("constant", 0.0)],
)
def test_constants(spec: Any, value: float) -> None:
    np.testing.assert_array_equal(_draw(spec, (2, 3)), np.full((2, 3), value, np.float32))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 3, 4, 8)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_is_orthogonal(shape: tuple[int, ...], gain: float) -> None:
    w = _draw({"type": "orthogonal", "gain": gain}, shape).astype(np.float64)
    flat = w.reshape(-1, shape[-1]) / gain
    small = min(flat.shape)
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


@pytest.mark.parametrize(("shape", "gain"), [((3, 3), 1.0), ((2, 4), 0.5), ((4, 2), 3.0)])
def test_identity(shape: tuple[int, int], gain: float) -> None:
    w = _draw({"type": "identity", "gain": gain}, shape)
    np.testing.assert_array_equal(w, gain * np.eye(*shape, dtype=np.float32))


@pytest.mark.parametrize(("spec", "shape"), [("identity", (2, 2, 2)), ("orthogonal", (4,))])
def test_shape_errors(spec: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        _draw(spec, shape)


@pytest.mark.parametrize("name", [v[0] for v in VARIANCE_SCALING] + ["orthogonal", "random_normal"])
def test_same_generator_seed_same_weights(name: str) -> None:
    np.testing.assert_array_equal(_draw(name, (8, 5), seed=3), _draw(name, (8, 5), seed=3))
    assert not np.array_equal(_draw(name, (8, 5), seed=3), _draw(name, (8, 5), seed=4))


def test_config_seed_overrides_the_model_generator() -> None:
    spec = {"type": "glorot_uniform", "seed": 42}
    np.testing.assert_array_equal(_draw(spec, (8, 5), seed=1), _draw(spec, (8, 5), seed=2))


def test_unknown_initializer_is_rejected() -> None:
    with pytest.raises(ValidationError, match="type"):
        initializers.get("glorot")
    assert initializers.serialize(initializers.InitializerConfig(type="ones")) == {"type": "ones"}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "glorot_uniform", "stddev": 3.0}, "stddev does not apply to glorot_uniform"),
        ({"type": "identity", "seed": 1}, "seed does not apply to identity"),
        ({"type": "zeros", "value": 1.0}, "it takes no arguments"),
        ({"type": "random_uniform", "mean": 0.0}, "it takes maxval, minval, seed"),
    ],
)
def test_arguments_that_do_not_apply_are_errors(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        initializers.get(spec)
