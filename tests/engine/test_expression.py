"""Lambda's formula language: what parses, what is refused (with its column), shapes and values."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from engine.expression import ExpressionError, parse
from engine.layers.base import ShapeError
from engine.layers.lambda_layer import Lambda, LambdaConfig
from tests.layers.harness import numeric_grad

x = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])
y = np.array([[2.0, 1.0, -1.0], [0.5, 3.0, 1.5]])


def _sig(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


# formula, inputs, numpy reference
VALUES = [
    ("x * 2.0 + 1.0", [x], x * 2.0 + 1.0),
    ("-x ** 2", [x], -(x**2)),
    ("2 ** -x", [x], 2.0**-x),
    ("(x - 1) / (x * x + 1)", [x], (x - 1) / (x * x + 1)),
    ("1e-1 * x - .5", [x], 0.1 * x - 0.5),
    ("exp(x) + log(abs(x)) + sqrt(square(x))", [x], np.exp(x) + np.log(np.abs(x)) + np.abs(x)),
    ("tanh(x) * sigmoid(x)", [x], np.tanh(x) * _sig(x)),
    ("relu(x) + softplus(x)", [x], np.maximum(x, 0) + np.log1p(np.exp(x))),
    ("sin(x) - cos(x)", [x], np.sin(x) - np.cos(x)),
    ("clip(x, -1.2, 0.8)", [x], np.clip(x, -1.2, 0.8)),
    ("mean(square(x), axis=-1, keepdims=true)", [x], (x**2).mean(-1, keepdims=True)),
    ("sum(x)", [x], x.sum(1)),
    ("max(x, axis=[1], keepdims=False) + min(x, axis=1)", [x], x.max(1) + x.min(1)),
    ("x[0] * sigmoid(x[1])", [x, y], x * _sig(y)),
    ("maximum(x[0], x[1]) - minimum(x[1], 0)", [x, y], np.maximum(x, y) - np.minimum(y, 0)),
    ("x[1] - mean(x[0], axis=1, keepdims=true)", [x, y], y - x.mean(1, keepdims=True)),
]


@pytest.mark.parametrize(("formula", "inputs", "expected"), VALUES, ids=[v[0] for v in VALUES])
def test_values_match_numpy(formula: str, inputs: list[np.ndarray], expected: np.ndarray) -> None:
    expr = parse(formula, len(inputs))
    out, _ = expr.forward(inputs)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert expr.output_shape([(None, *a.shape[1:]) for a in inputs]) == (None, *out.shape[1:])
    out32, _ = expr.forward([a.astype(np.float32) for a in inputs])
    assert out32.dtype == np.float32


@pytest.mark.parametrize(("formula", "inputs", "expected"), VALUES, ids=[v[0] for v in VALUES])
def test_backward_matches_finite_differences(
    formula: str, inputs: list[np.ndarray], expected: np.ndarray
) -> None:
    expr = parse(formula, len(inputs))
    arrays = [a.copy() for a in inputs]
    out, cache = expr.forward(arrays)
    proj = np.random.default_rng(0).standard_normal(out.shape)
    grads = expr.backward(cache, proj)
    for a, g in zip(arrays, grads, strict=True):
        numeric = numeric_grad(lambda: float((expr.forward(arrays)[0] * proj).sum()), a)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


# formula, n_inputs, column of the error, a fragment of the message
ERRORS = [
    ("__import__('os')", 1, 1, "unknown name '__import__'"),
    ("open('f')", 1, 1, "unknown name 'open'"),
    ("exp('f')", 1, 5, "unexpected character"),
    ("x.sum()", 1, 2, "attributes are not allowed"),
    ("y + 1", 1, 1, "unknown name 'y'"),
    ("x[0][1]", 2, 5, "unexpected '['"),
    ("x[a]", 2, 3, "whole number"),
    ("x[2]", 2, 3, "does not exist"),
    ("x + x[1]", None, 1, "not both"),
    ("x * 2", 2, 1, "use x[0]"),
    ("lambda: 1", 1, 1, "unknown name 'lambda'"),
    ("x if x else x", 1, 3, "unexpected 'if'"),
    ("exp(x, x)", 1, 1, "takes 1 argument"),
    ("clip(x, 0)", 1, 1, "takes 3 arguments"),
    ("mean(x, axis=1.5)", 1, 14, "axis takes an integer"),
    ("sum(x, keepdims=yes)", 1, 17, "true or false"),
    ("exp(x, axis=1)", 1, 8, "takes no keyword 'axis'"),
    ("sum(x, axis=1, x)", 1, 16, "positional argument after a keyword"),
    ("sum(x, dims=1)", 1, 8, "reductions take axis and keepdims"),
    ("(x + 1", 1, 7, "expected ')'"),
    ("x +", 1, 4, "found the end"),
    ("", 1, 1, "empty"),
    ("2.0 * 3", 1, 1, "never uses its input"),
    ("x ; 1", 1, 3, "unexpected character ';'"),
    ("(" * 70 + "x" + ")" * 70, 1, 65, "nests deeper"),
    ("-" * 1500 + "x", 1, 65, "nests deeper"),
    ("x" + "**x" * 100, 1, 193, "nests deeper"),
]


@pytest.mark.parametrize(
    ("formula", "n", "column", "message"), ERRORS, ids=[e[0][:24] for e in ERRORS]
)
def test_refused_with_column(formula: str, n: int | None, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(formula, n)
    assert message in info.value.message
    assert info.value.column == column


# formula, input shapes, expected shape or the error fragment
SHAPES = [
    ("x * 2", [(None, 3, 4)], (None, 3, 4)),
    ("sum(x, axis=[1, -1])", [(None, 3, 4, 5)], (None, 4)),
    ("max(x, keepdims=true)", [(None, 3, 4)], (None, 1, 1)),
    ("x[0] + x[1]", [(None, 3, 1), (None, 1, 4)], (None, 3, 4)),
    ("x[0] + x[1]", [(None, None, 4), (None, 1, 4)], (None, None, 4)),
    ("x[0] + x[1]", [(None, 3), (None, 4)], "do not broadcast"),
    ("sum(x, axis=0)", [(None, 3)], "axis 0 is the batch"),
    ("mean(x, axis=3)", [(None, 3)], "out of range"),
]


@pytest.mark.parametrize(("formula", "shapes", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
def test_output_shape(formula: str, shapes: list, expected: object) -> None:
    expr = parse(formula, len(shapes))
    if isinstance(expected, str):
        with pytest.raises(ExpressionError, match=expected):
            expr.output_shape(shapes)
    else:
        assert expr.output_shape(shapes) == expected


def test_config_rejects_bad_formula_at_validation_time() -> None:
    with pytest.raises(pydantic.ValidationError, match="unknown name 'eval'"):
        LambdaConfig(type="Lambda", expression="eval('1')")


@pytest.mark.parametrize(
    ("config", "shape", "fragment"),
    [
        ({"expression": "x[0] + x[1]"}, (None, 3), "takes a list of inputs"),
        ({"expression": "x[0] + x[2]"}, [(None, 3), (None, 3)], "does not exist"),
        ({"expression": "x + 1", "output_shape": [4]}, (None, 3), "does not match"),
    ],
)
def test_lambda_shape_errors(config: dict, shape: object, fragment: str) -> None:
    layer = Lambda(**config)
    with pytest.raises(ShapeError, match=fragment):
        layer.compute_output_shape(shape)


def test_lambda_python_api_positional_and_call() -> None:
    layer = Lambda("x * 3.0")
    out = layer(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(out.numpy(), np.full((2, 3), 3.0, np.float32))
