"""Learning-rate schedules with Keras 3's names, arguments and formulas.

A schedule is a callable `schedule(step) -> float` evaluated by the optimizer at its
`iterations` count before each update, as Keras does (the first update sees step 0).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from pydantic import TypeAdapter

from engine.config.optimizers import (
    CosineDecayConfig,
    ExponentialDecayConfig,
    PiecewiseConstantDecayConfig,
    ScheduleConfig,
)


class LearningRateSchedule(Protocol):
    """What an optimizer needs from a schedule: a rate for a step, and its config."""

    def __call__(self, step: int) -> float: ...

    def get_config(self) -> dict[str, Any]: ...


class ExponentialDecay:
    """Keras's ExponentialDecay."""

    def __init__(self, config: ExponentialDecayConfig) -> None:
        self.config = config

    def __call__(self, step: int) -> float:
        c = self.config
        p = step / c.decay_steps
        if c.staircase:
            p = math.floor(p)
        return c.initial_learning_rate * c.decay_rate**p

    def get_config(self) -> dict[str, Any]:
        return self.config.model_dump()


class CosineDecay:
    """Keras's CosineDecay: optional linear warmup, then a half cosine down to `alpha * peak`."""

    def __init__(self, config: CosineDecayConfig) -> None:
        self.config = config

    def __call__(self, step: int) -> float:
        c = self.config
        if c.warmup_target is None:
            peak = c.initial_learning_rate
        else:
            peak = c.warmup_target
            if step < c.warmup_steps:
                fraction = step / c.warmup_steps
                return (peak - c.initial_learning_rate) * fraction + c.initial_learning_rate
        decay_step = min(step - c.warmup_steps, c.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * decay_step / c.decay_steps))
        return peak * ((1.0 - c.alpha) * cosine + c.alpha)

    def get_config(self) -> dict[str, Any]:
        return self.config.model_dump()


class PiecewiseConstantDecay:
    """Keras's PiecewiseConstantDecay (a step equal to a boundary still gets the earlier value)."""

    def __init__(self, config: PiecewiseConstantDecayConfig) -> None:
        self.config = config

    def __call__(self, step: int) -> float:
        c = self.config
        for boundary, value in zip(c.boundaries, c.values, strict=False):
            if step <= boundary:
                return value
        return c.values[-1]

    def get_config(self) -> dict[str, Any]:
        return self.config.model_dump()


_SCHEDULES: dict[str, type[ExponentialDecay | CosineDecay | PiecewiseConstantDecay]] = {
    "exponential_decay": ExponentialDecay,
    "cosine_decay": CosineDecay,
    "piecewise_constant_decay": PiecewiseConstantDecay,
}


_ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleConfig)


def names() -> list[str]:
    """The schedule types a spec may name."""
    return sorted(_SCHEDULES)


def get(config: ScheduleConfig | dict[str, Any]) -> LearningRateSchedule:
    """Build a schedule from its config model or config map."""
    model = _ADAPTER.validate_python(config) if isinstance(config, dict) else config
    return _SCHEDULES[model.type](model)  # type: ignore[arg-type]
