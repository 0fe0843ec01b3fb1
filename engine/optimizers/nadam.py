"""Nadam with Keras 3's momentum schedule `u_t = beta_1 * (1 - 0.5 * 0.96^t)`."""

from __future__ import annotations

from typing import Any

from engine.backend import backend_of
from engine.config.optimizers import NadamConfig
from engine.optimizers.base import Array, Optimizer
from engine.optimizers.underflow import flush_nonnegative, flush_signed

MOMENTUM_DECAY = 0.96


def momentum_schedule(beta_1: float, step: int) -> float:
    """Keras's (and Dozat's) `u_t` for a step counted from 1."""
    return beta_1 * (1.0 - 0.5 * MOMENTUM_DECAY**step)


def nadam_update(
    param: Array,
    grad: Array,
    m: Array,
    v: Array,
    scratch: tuple[Array, Array],
    *,
    lr: float,
    step: int,
    u_product: float,
    beta_1: float,
    beta_2: float,
    epsilon: float,
) -> None:
    """One Nadam step in place; `step` counts from 1 and `u_product` is `u_1 * ... * u_t`.

    Keras: `m_hat = u_{t+1} m / (1 - u_product * u_{t+1}) + (1 - u_t) g / (1 - u_product)`,
    `v_hat = v / (1 - b2^t)`, `p -= lr * m_hat / (sqrt(v_hat) + eps)`. PyTorch's NAdam uses
    the same schedule (momentum_decay 0.004 gives 0.96 per step) but defaults eps to 1e-8.
    Moments below their dtype's normal range become +0, as in Adam (`engine.optimizers.underflow`).
    """
    xp = backend_of(param).xp
    work, denominator = scratch
    u_t = momentum_schedule(beta_1, step)
    u_next = momentum_schedule(beta_1, step + 1)
    xp.subtract(grad, m, out=work)
    work *= 1.0 - beta_1
    m += work
    flush_signed(m, work)
    xp.multiply(grad, grad, out=work)
    work -= v
    work *= 1.0 - beta_2
    v += work
    flush_nonnegative(v)
    xp.multiply(m, u_next / (1.0 - u_product * u_next), out=work)
    xp.multiply(grad, (1.0 - u_t) / (1.0 - u_product), out=denominator)
    work += denominator
    work *= lr
    xp.divide(v, 1.0 - beta_2**step, out=denominator)
    xp.sqrt(denominator, out=denominator)
    denominator += epsilon
    work /= denominator
    param -= work


class Nadam(Optimizer):
    """Keras's `Nadam`."""

    name = "nadam"
    config_class = NadamConfig
    scratch_count = 2
    config: NadamConfig

    def slot_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def initial_scalars(self) -> dict[str, float]:
        return {"u_product": 1.0}

    def next_scalars(self, scalars: dict[str, float], step: int) -> dict[str, float]:
        return {"u_product": scalars["u_product"] * momentum_schedule(self.config.beta_1, step + 1)}

    def _update(
        self, param: Array, grad: Array, slots: dict[str, Any], scratch: list[Array], lr: float
    ) -> None:
        c = self.config
        nadam_update(
            param,
            grad,
            slots["m"],
            slots["v"],
            (scratch[0], scratch[1]),
            lr=lr,
            step=self.iterations + 1,
            u_product=self._scalars["u_product"],
            beta_1=c.beta_1,
            beta_2=c.beta_2,
            epsilon=c.epsilon,
        )
