"""The layer table's row type and the checks every row gets (Keras's `run_layer_test` idea).

A row names a spec entry, an input shape and what Keras 3 reports for it (output shape and
parameter counts, with the formula beside the number). The harness then checks that the
inferred shape and counts match, that the computed output has the inferred shape, that
`backward` agrees with central finite differences in float64, that the tape path gives the same
output as `forward`, and that the config round-trips.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int | None, ...]


@dataclass
class LayerCase:
    id: str
    config: dict[str, Any]
    input_shape: Any  # batch-inclusive (None first); a list of shapes for multi-input layers
    output_shape: Any
    params: int
    trainable: int | None = None  # defaults to `params`
    batch: int = 2
    int_inputs: int | None = None  # inputs are ints in [0, int_inputs) (Embedding)
    check_grads: bool = True
    training: bool = False  # run forward in training mode for the gradient check
    fill: dict[int | None, int] = field(default_factory=dict)  # sizes for None dims
    input_fn: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray] | None = None
    rtol: float = 1e-5


def all_cases() -> list[LayerCase]:
    """Every row of every module in tests/layers/cases/."""
    from tests.layers import cases

    rows: list[LayerCase] = []
    for mod in pkgutil.iter_modules(cases.__path__):
        rows.extend(importlib.import_module(f"{cases.__name__}.{mod.name}").CASES)
    return rows


def concrete(shape: Shape, batch: int, fill: dict[int | None, int]) -> tuple[int, ...]:
    dims = [
        batch if i == 0 else (d if d is not None else fill.get(None, 5))
        for i, d in enumerate(shape)
    ]
    return tuple(int(d) for d in dims)


def make_inputs(case: LayerCase, rng: np.random.Generator, dtype: Any) -> Any:
    shapes = case.input_shape if isinstance(case.input_shape, list) else [case.input_shape]
    arrays = []
    for s in shapes:
        cs = concrete(s, case.batch, case.fill)
        if case.input_fn is not None:
            made = case.input_fn(rng, cs)
            arrays.append(made.astype(dtype) if made.dtype.kind == "f" else made)
        elif case.int_inputs is not None:
            arrays.append(rng.integers(0, case.int_inputs, cs).astype(np.int32))
        else:
            arrays.append(rng.standard_normal(cs).astype(dtype))
    return arrays if isinstance(case.input_shape, list) else arrays[0]


def numeric_grad(f: Callable[[], float], arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of `arr`."""
    g = np.zeros_like(arr)
    flat = arr.reshape(-1)
    gflat = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g
