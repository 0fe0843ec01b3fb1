"""Regularizers (penalty against Keras's formula, gradient against finite differences) and
constraints (against Keras's formulas)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine import constraints, regularizers

EPS = 1e-7
W = np.random.default_rng(0).normal(size=(4, 3))


@pytest.mark.parametrize(
    ("spec", "l1", "l2"),
    [
        ("l1", 0.01, 0.0),
        ("l2", 0.0, 0.01),
        ("l1_l2", 0.01, 0.01),
        ({"type": "l2", "l2": 0.001}, 0.0, 0.001),
        ({"type": "l1", "l1": 0.3}, 0.3, 0.0),
        ({"type": "l1_l2", "l2": 0.001}, 0.0, 0.001),
        ({"type": "l1_l2", "l1": 0.2, "l2": 0.1}, 0.2, 0.1),
    ],
)
def test_regularizer_penalty_and_gradient(spec: Any, l1: float, l2: float) -> None:
    reg = regularizers.get(spec)
    assert reg is not None
    expected = l1 * np.abs(W).sum() + l2 * (W * W).sum()
    assert reg.penalty(W) == pytest.approx(expected, rel=1e-12)
    numeric = np.zeros_like(W)
    h = 1e-6
    for i in np.ndindex(W.shape):
        up, down = W.copy(), W.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (reg.penalty(up) - reg.penalty(down)) / (2 * h)
    np.testing.assert_allclose(reg.grad(W), numeric, rtol=1e-6, atol=1e-9)


def test_regularizer_rejects_negative_factors() -> None:
    with pytest.raises(ValidationError, match="l2"):
        regularizers.get({"type": "l2", "l2": -1})
    assert regularizers.get(None) is None


def _norms(w: np.ndarray, axis: Any) -> np.ndarray:
    return np.sqrt((w * w).sum(axis=axis, keepdims=True))


CONSTRAINTS: list[tuple[Any, Callable[[np.ndarray], np.ndarray]]] = [
    ("non_neg", lambda w: w * (w >= 0)),
    ("unit_norm", lambda w: w / (EPS + _norms(w, 0))),
    ({"type": "unit_norm", "axis": 1}, lambda w: w / (EPS + _norms(w, 1))),
    ("max_norm", lambda w: w * np.clip(_norms(w, 0), 0, 2) / (EPS + _norms(w, 0))),
    (
        {"type": "max_norm", "max_value": 0.5, "axis": [0, 1]},
        lambda w: w * np.clip(_norms(w, (0, 1)), 0, 0.5) / (EPS + _norms(w, (0, 1))),
    ),
    ("min_max_norm", lambda w: w * np.clip(_norms(w, 0), 0, 1) / (EPS + _norms(w, 0))),
    (
        {"type": "min_max_norm", "min_value": 1.5, "max_value": 3.0, "rate": 0.5},
        lambda w: (
            w * (0.5 * np.clip(_norms(w, 0), 1.5, 3.0) + 0.5 * _norms(w, 0)) / (EPS + _norms(w, 0))
        ),
    ),
]


@pytest.mark.parametrize(("spec", "expected"), CONSTRAINTS)
def test_constraint_matches_keras_formula(
    spec: Any, expected: Callable[[np.ndarray], np.ndarray]
) -> None:
    constraint = constraints.get(spec)
    assert constraint is not None
    w = W * 3
    np.testing.assert_allclose(constraint(w), expected(w), rtol=1e-12)


def test_max_norm_caps_column_norms() -> None:
    constraint = constraints.get({"type": "max_norm", "max_value": 1.0})
    assert constraint is not None
    out = constraint(W * 10)
    assert float(_norms(out, 0).max()) <= 1.0 + 1e-6
    small = W * 0.01
    np.testing.assert_allclose(constraint(small), small, rtol=1e-4)


def test_unknown_constraint_is_rejected() -> None:
    with pytest.raises(ValidationError, match="type"):
        constraints.get("positive")


@pytest.mark.parametrize(
    ("getter", "spec", "match"),
    [
        (regularizers.get, {"type": "l1", "l2": 0.1}, "l2 does not apply to l1"),
        (regularizers.get, {"type": "l2", "l1": 0.1}, "l1 does not apply to l2"),
        (constraints.get, {"type": "non_neg", "axis": 1}, "axis does not apply to non_neg"),
        (constraints.get, {"type": "unit_norm", "rate": 1.0}, "it takes axis"),
    ],
)
def test_arguments_that_do_not_apply_are_errors(
    getter: Callable[[Any], Any], spec: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        getter(spec)
