"""Adagrad with Keras 3's formula and defaults (accumulator starts at 0.1)."""

from __future__ import annotations

from typing import Any

from engine.backend import backend_of
from engine.config.optimizers import AdagradConfig
from engine.optimizers.base import Array, Optimizer


def adagrad_update(
    param: Array, grad: Array, accumulator: Array, scratch: Array, *, lr: float, epsilon: float
) -> None:
    """One Adagrad step in place.

    Keras: `acc += g^2`, `p -= lr * g / sqrt(acc + eps)`. PyTorch puts eps outside the root,
    `g / (sqrt(acc) + eps)`, and starts the accumulator at 0 and eps at 1e-10.
    """
    xp = backend_of(param).xp
    xp.multiply(grad, grad, out=scratch)
    accumulator += scratch
    xp.add(accumulator, epsilon, out=scratch)
    xp.sqrt(scratch, out=scratch)
    xp.divide(grad, scratch, out=scratch)
    scratch *= lr
    param -= scratch


class Adagrad(Optimizer):
    """Keras's `Adagrad`."""

    name = "adagrad"
    config_class = AdagradConfig
    config: AdagradConfig

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def slot_initial_value(self, slot: str) -> float:
        return self.config.initial_accumulator_value

    def _update(
        self, param: Array, grad: Array, slots: dict[str, Any], scratch: list[Array], lr: float
    ) -> None:
        adagrad_update(
            param, grad, slots["accumulator"], scratch[0], lr=lr, epsilon=self.config.epsilon
        )
