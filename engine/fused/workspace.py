"""The call context of a planned executor: scratch buffers a layer reuses at every step.

The tape path and direct layer calls get a plain `CallContext` and allocate fresh arrays, since
their caches may outlive the next call. A planned executor runs each call's forward and backward
once per step, so a layer may keep its activations and gradients in buffers that the next step
overwrites; planning them per batch shape leaves no allocation in the hot loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.call_context import CallContext

Array = Any


@dataclass
class PlannedContext(CallContext):
    """A `CallContext` with buffers kept across steps.

    `preactivation_grad` is set by the trainer when the loss fuses this call's output
    activation into its gradient (softmax or sigmoid with cross-entropy): `backward` then
    receives d loss / d pre-activation and must not apply the activation's Jacobian again.
    """

    buffers: dict[tuple[Any, ...], Array] = field(default_factory=dict)
    preactivation_grad: bool = False

    def buffer(self, xp: Any, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """The buffer `name` of this shape and dtype, allocated on first use only."""
        key = (name, shape, dtype)
        buf = self.buffers.get(key)
        if buf is None:
            buf = self.buffers[key] = xp.empty(shape, dtype=dtype)
        return buf
