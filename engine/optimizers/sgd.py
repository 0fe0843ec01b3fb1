"""Stochastic gradient descent with Keras 3's momentum and Nesterov formulas."""

from __future__ import annotations

from typing import Any

from engine.backend import backend_of
from engine.config.optimizers import SGDConfig
from engine.optimizers.base import Array, Optimizer
from engine.optimizers.underflow import flush_signed


def sgd_update(
    param: Array,
    grad: Array,
    velocity: Array | None,
    scratch: Array,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
) -> None:
    """One SGD step in place.

    Keras keeps a velocity `v = momentum * v - lr * g` and steps `p += v`, or with Nesterov
    `p += momentum * v - lr * g`. PyTorch keeps `b = momentum * b + g` and steps by `lr * b`;
    the two agree for a constant learning rate, not when it changes between steps.
    A velocity below its dtype's normal range becomes +0 (`engine.optimizers.underflow`): with
    a zero gradient it shrinks by `momentum` every step.
    """
    xp = backend_of(param).xp
    xp.multiply(grad, lr, out=scratch)
    if velocity is None:
        param -= scratch
        return
    velocity *= momentum
    velocity -= scratch
    if nesterov:
        param -= scratch
    flush_signed(velocity, scratch)
    if nesterov:
        xp.multiply(velocity, momentum, out=scratch)
        param += scratch
    else:
        param += velocity


class SGD(Optimizer):
    """Keras's `SGD`."""

    name = "sgd"
    config_class = SGDConfig
    config: SGDConfig

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.config.momentum else ()

    def _update(
        self, param: Array, grad: Array, slots: dict[str, Any], scratch: list[Array], lr: float
    ) -> None:
        sgd_update(
            param,
            grad,
            slots.get("momentum"),
            scratch[0],
            lr=lr,
            momentum=self.config.momentum,
            nesterov=self.config.nesterov,
        )
