"""Rescaling rows: y = x * scale + offset, no weights (0 params)."""

from tests.layers.harness import LayerCase

CASES = [
    LayerCase(
        "rescaling",
        {"type": "Rescaling", "scale": 0.5, "offset": -1.0},
        (None, 4, 3),
        (None, 4, 3),
        0,
    ),
    # uint8-like pixels as ints: cast to float, no input gradient
    LayerCase(
        "rescaling_ints",
        {"type": "Rescaling", "scale": 1 / 255},
        (None, 6),
        (None, 6),
        0,
        int_inputs=256,
    ),
]
