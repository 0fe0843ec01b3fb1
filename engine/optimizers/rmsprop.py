"""RMSprop with Keras 3's formula (epsilon inside the square root)."""

from __future__ import annotations

from typing import Any

from engine.backend import backend_of
from engine.config.optimizers import RMSpropConfig
from engine.optimizers.base import Array, Optimizer
from engine.optimizers.underflow import flush_nonnegative, flush_signed


def rmsprop_update(
    param: Array,
    grad: Array,
    velocity: Array,
    average_gradient: Array | None,
    momentum_buffer: Array | None,
    scratch: Array,
    *,
    lr: float,
    rho: float,
    momentum: float,
    epsilon: float,
) -> None:
    """One RMSprop step in place.

    Keras: `v = rho * v + (1 - rho) * g^2`, `p -= lr * g / sqrt(v + eps)` (centered: `v - a^2
    + eps` under the root, `a` the running mean of g). PyTorch puts eps outside the root,
    `g / (sqrt(v) + eps)`, and defaults rho (alpha) to 0.99 and eps to 1e-8.
    State below its dtype's normal range becomes +0 (`engine.optimizers.underflow`): with a
    zero gradient the velocity shrinks by rho every step.
    """
    xp = backend_of(param).xp
    velocity *= rho
    xp.multiply(grad, grad, out=scratch)
    scratch *= 1.0 - rho
    velocity += scratch
    flush_nonnegative(velocity)
    if average_gradient is None:
        xp.add(velocity, epsilon, out=scratch)
    else:
        average_gradient *= rho
        xp.multiply(grad, 1.0 - rho, out=scratch)
        average_gradient += scratch
        flush_signed(average_gradient, scratch)
        xp.multiply(average_gradient, average_gradient, out=scratch)
        xp.subtract(velocity, scratch, out=scratch)
        scratch += epsilon
    xp.sqrt(scratch, out=scratch)
    xp.divide(grad, scratch, out=scratch)
    scratch *= lr
    if momentum_buffer is None:
        param -= scratch
        return
    momentum_buffer *= momentum
    momentum_buffer += scratch
    flush_signed(momentum_buffer, scratch)
    param -= momentum_buffer


class RMSprop(Optimizer):
    """Keras's `RMSprop`."""

    name = "rmsprop"
    config_class = RMSpropConfig
    config: RMSpropConfig

    def slot_names(self) -> tuple[str, ...]:
        extra = (("average_gradient",) if self.config.centered else ()) + (
            ("momentum",) if self.config.momentum > 0 else ()
        )
        return ("velocity", *extra)

    def _update(
        self, param: Array, grad: Array, slots: dict[str, Any], scratch: list[Array], lr: float
    ) -> None:
        c = self.config
        rmsprop_update(
            param,
            grad,
            slots["velocity"],
            slots.get("average_gradient"),
            slots.get("momentum"),
            scratch[0],
            lr=lr,
            rho=c.rho,
            momentum=c.momentum,
            epsilon=c.epsilon,
        )
