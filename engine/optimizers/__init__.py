"""The optimizer registry: Keras 3's optimizers by name and `get` (configs: engine.config).

A spec names an optimizer (`adam`) or gives a config map discriminated on `type`
(`{type: adam, learning_rate: 0.0003}`); `learning_rate` may itself be a schedule config.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from engine.config.optimizers import (
    BaseOptimizerConfig,
    OptimizerConfig,
    OptimizerName,
    OptimizerSpec,
    ScheduleConfig,
)
from engine.optimizers.adagrad import Adagrad
from engine.optimizers.adam import Adam
from engine.optimizers.adamw import AdamW
from engine.optimizers.base import Optimizer
from engine.optimizers.nadam import Nadam
from engine.optimizers.rmsprop import RMSprop
from engine.optimizers.schedules import (
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
)
from engine.optimizers.sgd import SGD

_REGISTRY: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Nadam)
}
_CONFIG_ADAPTER: TypeAdapter[Any] = TypeAdapter(OptimizerConfig)


def names() -> list[str]:
    """The optimizer names a spec may use."""
    return sorted(_REGISTRY)


def get(spec: OptimizerSpec | str | dict[str, Any] | Optimizer) -> Optimizer:
    """A fresh optimizer from a name, a config map or a config model (an Optimizer passes)."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        if key not in _REGISTRY:
            raise ValueError(f"unknown optimizer {spec!r}; expected one of {', '.join(names())}")
        return _REGISTRY[key]()
    config = _CONFIG_ADAPTER.validate_python(spec)
    return _REGISTRY[config.type].from_config(config)


__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "BaseOptimizerConfig",
    "CosineDecay",
    "ExponentialDecay",
    "LearningRateSchedule",
    "Nadam",
    "Optimizer",
    "OptimizerConfig",
    "OptimizerName",
    "OptimizerSpec",
    "PiecewiseConstantDecay",
    "RMSprop",
    "ScheduleConfig",
    "get",
    "names",
]
