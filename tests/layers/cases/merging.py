"""Merge rows: no weights (0 params); element-wise merges broadcast, Concatenate and Dot reshape."""

from tests.layers.harness import LayerCase

CASES = [
    LayerCase("add_two", {"type": "Add"}, [(None, 4), (None, 4)], (None, 4), 0),
    LayerCase(
        "add_three_broadcast",
        {"type": "Add"},
        [(None, 3, 4), (None, 1, 4), (None, 3, 1)],
        (None, 3, 4),
        0,
    ),
    LayerCase("subtract", {"type": "Subtract"}, [(None, 5), (None, 5)], (None, 5), 0),
    LayerCase("multiply_three", {"type": "Multiply"}, [(None, 2, 3)] * 3, (None, 2, 3), 0),
    LayerCase(
        "multiply_broadcast", {"type": "Multiply"}, [(None, 4, 3), (None, 4, 1)], (None, 4, 3), 0
    ),
    LayerCase("average", {"type": "Average"}, [(None, 6), (None, 6), (None, 6)], (None, 6), 0),
    LayerCase("maximum", {"type": "Maximum"}, [(None, 3, 2), (None, 3, 2)], (None, 3, 2), 0),
    LayerCase("minimum_three", {"type": "Minimum"}, [(None, 5)] * 3, (None, 5), 0),
    # 3 + 5 = 8 along the default last axis
    LayerCase("concat_last", {"type": "Concatenate"}, [(None, 3), (None, 5)], (None, 8), 0),
    # 2 + 4 = 6 along axis 1
    LayerCase(
        "concat_axis1",
        {"type": "Concatenate", "axis": 1},
        [(None, 2, 3), (None, 4, 3), (None, 1, 3)],
        (None, 7, 3),
        0,
    ),
    LayerCase(
        "concat_middle_negative",
        {"type": "Concatenate", "axis": -2},
        [(None, 2, 2, 3), (None, 2, 1, 3)],
        (None, 2, 3, 3),
        0,
    ),
    # (None, 8) . (None, 8) over axis 1 -> (None, 1)
    LayerCase("dot_vectors", {"type": "Dot", "axes": 1}, [(None, 8), (None, 8)], (None, 1), 0),
    LayerCase(
        "dot_cosine",
        {"type": "Dot", "axes": 1, "normalize": True},
        [(None, 5), (None, 5)],
        (None, 1),
        0,
    ),
    # attention scores: (None, 4, 6) x (None, 3, 6) over [2, 2] -> (None, 4, 3)
    LayerCase(
        "dot_axes_pair",
        {"type": "Dot", "axes": [2, 2]},
        [(None, 4, 6), (None, 3, 6)],
        (None, 4, 3),
        0,
    ),
    LayerCase(
        "dot_axes_1_1",
        {"type": "Dot", "axes": [1, 1], "normalize": True},
        [(None, 4, 2), (None, 4, 3)],
        (None, 2, 3),
        0,
    ),
]
