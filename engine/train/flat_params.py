"""Every trainable weight as a view of one flat buffer, and its gradient as a view of another.

Rebinding the weights this way lets each layer's `backward` write its gradients in place and
the optimizer update all weights in one call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.backend import backend_of
from engine.tensor import Variable
from engine.train.errors import TrainingError

Array = Any


class FlatParams:
    """Every trainable weight as a view of one flat buffer, and its gradient likewise."""

    def __init__(self, variables: list[Variable]) -> None:
        self.variables = variables
        self.key = tuple(id(v) for v in variables)
        dtypes = {v.data.dtype for v in variables}
        if len(dtypes) > 1:
            raise TrainingError(
                "trainable weights mix dtypes "
                f"({', '.join(sorted(str(d) for d in dtypes))}); give every layer one dtype"
            )
        first = variables[0].data if variables else np.zeros(0, np.float32)
        xp = backend_of(first).xp
        dtype = first.dtype
        sizes = [math.prod(v.shape) for v in variables]
        offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.segments = [slice(a, b) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        self.flat = xp.empty(int(offsets[-1]), dtype=dtype)
        self.grad = xp.zeros(int(offsets[-1]), dtype=dtype)
        self.grad_views: dict[int, Array] = {}
        for v, seg in zip(variables, self.segments, strict=True):
            self.flat[seg] = v.data.reshape(-1)
            v._data = self.flat[seg].reshape(v.shape)
            self.grad_views[id(v)] = self.grad[seg].reshape(v.shape)
        self.regularized = [
            (v, v.regularizer, self.grad_views[id(v)]) for v in variables if v.regularizer
        ]
        self.constrained = [(v, v.constraint) for v in variables if v.constraint is not None]

    @property
    def size(self) -> int:
        return int(self.flat.size)

    def add_regularization(self) -> float:
        """Penalties of the weights' regularizers; their gradients go into the gradient buffer."""
        total = 0.0
        for v, reg, g in self.regularized:
            total += reg.penalty(v.data)
            g += reg.grad(v.data)
        return total

    def penalty(self) -> float:
        return sum(reg.penalty(v.data) for v, reg, _ in self.regularized)

    def apply_constraints(self) -> None:
        for v, constraint in self.constrained:
            v.data[...] = constraint(v.data)
