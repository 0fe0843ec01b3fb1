"""Adam with Keras 3's formula (epsilon outside the square root of the raw second moment)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import engine.native as native
from engine.backend import backend_of
from engine.config.optimizers import AdamConfig
from engine.optimizers.base import (
    PARALLEL_MIN_SIZE,
    Array,
    Optimizer,
)
from engine.optimizers.underflow import flush_nonnegative, flush_signed


def adam_rate(lr: float, step: int, beta_1: float, beta_2: float) -> float:
    """Keras's step size with both bias corrections folded in (see `adam_update`)."""
    return lr * math.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)


def adam_update(
    param: Array,
    grad: Array,
    m: Array,
    v: Array,
    v_max: Array | None,
    scratch: Array,
    *,
    lr: float,
    step: int,
    beta_1: float,
    beta_2: float,
    epsilon: float,
) -> None:
    """One Adam step in place; `step` counts from 1.

    Keras folds the bias corrections into the rate, `alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)`,
    and steps `p -= alpha * m / (sqrt(v) + eps)`. PyTorch steps
    `p -= lr * m_hat / (sqrt(v_hat) + eps)`, i.e. its epsilon is scaled by `sqrt(1 - b2^t)`
    relative to Keras's, and its default epsilon is 1e-8 rather than 1e-7. With AMSGrad, Keras
    keeps the running maximum of the raw `v`.

    Moments that fall below their dtype's normal range become +0
    (`engine.optimizers.underflow`): a dead ReLU unit's `m` shrinks by beta_1 every step and
    after some 800 steps would be denormal, and W2's Adam step then took 7 ms instead of 0.3.

    The NumPy operations below are the definition; `engine.native.adam` does the same float32
    operations in one pass, bit for bit, where it applies.
    """
    alpha = adam_rate(lr, step, beta_1, beta_2)
    if v_max is None and native.adam(param, grad, m, v, 1.0 - beta_1, 1.0 - beta_2, epsilon, alpha):
        return
    xp = backend_of(param).xp
    xp.subtract(grad, m, out=scratch)
    scratch *= 1.0 - beta_1
    m += scratch
    flush_signed(m, scratch)
    xp.multiply(grad, grad, out=scratch)
    scratch -= v
    scratch *= 1.0 - beta_2
    v += scratch
    flush_nonnegative(v)
    denominator = v
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
        denominator = v_max
    xp.sqrt(denominator, out=scratch)
    scratch += epsilon
    xp.divide(m, scratch, out=scratch)
    scratch *= alpha
    param -= scratch


class Adam(Optimizer):
    """Keras's `Adam`."""

    name = "adam"
    config_class: ClassVar[type[AdamConfig]] = AdamConfig
    config: AdamConfig

    def slot_names(self) -> tuple[str, ...]:
        return ("m", "v", "v_max") if self.config.amsgrad else ("m", "v")

    def _update_split(
        self, param: Array, grad: Array, slots: dict[str, Any], scratch: list[Array], lr: float
    ) -> None:
        """Large updates without AMSGrad run on both cores in one compiled call (no Python
        thread hand-off); the others split as every optimizer does."""
        c = self.config
        alpha = adam_rate(lr, self.iterations + 1, c.beta_1, c.beta_2)
        if (
            param.size >= PARALLEL_MIN_SIZE
            and "v_max" not in slots
            and native.adam_both_cores(
                param,
                grad,
                slots["m"],
                slots["v"],
                1.0 - c.beta_1,
                1.0 - c.beta_2,
                c.epsilon,
                alpha,
            )
        ):
            return
        super()._update_split(param, grad, slots, scratch, lr)

    def _update(
        self, param: Array, grad: Array, slots: dict[str, Any], scratch: list[Array], lr: float
    ) -> None:
        c = self.config
        adam_update(
            param,
            grad,
            slots["m"],
            slots["v"],
            slots.get("v_max"),
            scratch[0],
            lr=lr,
            step=self.iterations + 1,
            beta_1=c.beta_1,
            beta_2=c.beta_2,
            epsilon=c.epsilon,
        )
