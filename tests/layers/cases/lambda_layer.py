"""Lambda rows: safe formulas, no weights (0 params); shapes inferred from the formula."""

import numpy as np

from tests.layers.harness import LayerCase


def _positive(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape)


CASES = [
    LayerCase(
        "lambda_affine", {"type": "Lambda", "expression": "x * 2.0 + 1.0"}, (None, 3), (None, 3), 0
    ),
    LayerCase(
        "lambda_mean_square",
        {"type": "Lambda", "expression": "mean(square(x), axis=-1, keepdims=true)"},
        (None, 5, 3),
        (None, 5, 1),
        0,
    ),
    LayerCase(
        "lambda_sum_axes",
        {"type": "Lambda", "expression": "sum(tanh(x), axis=[1, 2])"},
        (None, 4, 3, 2),
        (None, 2),
        0,
    ),
    LayerCase(
        "lambda_max_all",
        {"type": "Lambda", "expression": "max(x) - min(x, axis=1)"},
        (None, 6),
        (None,),
        0,
    ),
    LayerCase(
        "lambda_elementwise",
        {"type": "Lambda", "expression": "-sigmoid(x) ** 2 + relu(x) / 3 - softplus(x)"},
        (None, 2, 4),
        (None, 2, 4),
        0,
    ),
    LayerCase(
        "lambda_trig_clip",
        {"type": "Lambda", "expression": "sin(x) * cos(x) + clip(x, -0.5, 0.5) + abs(x)"},
        (None, 7),
        (None, 7),
        0,
    ),
    LayerCase(
        "lambda_positive",
        {"type": "Lambda", "expression": "log(x) + sqrt(x) * exp(-x) + x ** -1.5"},
        (None, 4),
        (None, 4),
        0,
        input_fn=_positive,
    ),
    # two inputs: a gate
    LayerCase(
        "lambda_two_inputs",
        {"type": "Lambda", "expression": "x[0] * sigmoid(x[1])"},
        [(None, 5), (None, 5)],
        (None, 5),
        0,
    ),
    LayerCase(
        "lambda_two_inputs_broadcast",
        {
            "type": "Lambda",
            "expression": "maximum(x[0], x[1]) - minimum(x[0], 0.1) / (1 + square(x[1]))",
        },
        [(None, 3, 4), (None, 3, 1)],
        (None, 3, 4),
        0,
    ),
    LayerCase(
        "lambda_output_shape",
        {"type": "Lambda", "expression": "x[1] - mean(x[0], axis=1)", "output_shape": [4]},
        [(None, 3, 4), (None, 4)],
        (None, 4),
        0,
    ),
]
