"""The spec's optimizer settings: Keras 3's optimizers and learning-rate schedules as configs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.config.base import SpecConfig


class ExponentialDecayConfig(SpecConfig):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)` (floored when staircase)."""

    type: Literal["exponential_decay"]
    initial_learning_rate: float = Field(gt=0)
    decay_steps: int = Field(gt=0)
    decay_rate: float = Field(gt=0)
    staircase: bool = False


class CosineDecayConfig(SpecConfig):
    """Keras's CosineDecay, with its optional linear warmup to `warmup_target`."""

    type: Literal["cosine_decay"]
    initial_learning_rate: float = Field(ge=0)
    decay_steps: int = Field(gt=0)
    alpha: float = Field(default=0.0, ge=0, le=1)
    warmup_target: float | None = Field(default=None, ge=0)
    warmup_steps: int = Field(default=0, ge=0)


class PiecewiseConstantDecayConfig(SpecConfig):
    """`values[i]` while `boundaries[i-1] < step <= boundaries[i]`."""

    type: Literal["piecewise_constant_decay"]
    boundaries: list[int] = Field(min_length=1)
    values: list[float]

    @model_validator(mode="after")
    def _check_lengths(self) -> PiecewiseConstantDecayConfig:
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "values must have one more entry than boundaries; got "
                f"{len(self.values)} values for {len(self.boundaries)} boundaries"
            )
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise ValueError(f"boundaries must be strictly increasing; got {self.boundaries}")
        return self


ScheduleConfig = Annotated[
    ExponentialDecayConfig | CosineDecayConfig | PiecewiseConstantDecayConfig,
    Field(discriminator="type"),
]


class BaseOptimizerConfig(SpecConfig):
    """Arguments every Keras 3 optimizer takes."""

    learning_rate: float | ScheduleConfig = 0.001
    weight_decay: float | None = Field(default=None, ge=0)
    clipnorm: float | None = Field(default=None, gt=0)
    clipvalue: float | None = Field(default=None, gt=0)
    global_clipnorm: float | None = Field(default=None, gt=0)

    @field_validator("learning_rate")
    @classmethod
    def _positive_rate(cls, value: Any) -> Any:
        if isinstance(value, float) and not value > 0:
            raise ValueError(f"learning_rate must be positive; got {value:g}")
        return value

    @model_validator(mode="after")
    def _one_clip(self) -> BaseOptimizerConfig:
        set_ = [n for n in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, n)]
        if len(set_) > 1:
            raise ValueError(
                "only one of clipnorm, clipvalue and global_clipnorm can be set; got "
                + ", ".join(set_)
            )
        return self


class SGDConfig(BaseOptimizerConfig):
    """`{type: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}`."""

    type: Literal["sgd"]
    learning_rate: float | ScheduleConfig = 0.01
    momentum: float = Field(default=0.0, ge=0, le=1)
    nesterov: bool = False


class AdamConfig(BaseOptimizerConfig):
    """`{type: adam, learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7}`."""

    type: Literal["adam"]
    learning_rate: float | ScheduleConfig = 0.001
    beta_1: float = Field(default=0.9, ge=0, lt=1)
    beta_2: float = Field(default=0.999, ge=0, lt=1)
    epsilon: float = Field(default=1e-7, gt=0)
    amsgrad: bool = False


class AdamWConfig(AdamConfig):
    """`{type: adamw, weight_decay: 0.004, ...}` with Adam's other arguments and defaults.

    The decay is the shared `p -= lr * weight_decay * p` step applied before the Adam update,
    as Keras does; PyTorch's AdamW multiplies by `1 - lr * weight_decay` (default 0.01).
    """

    type: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: float | None = Field(default=0.004, ge=0)


class RMSpropConfig(BaseOptimizerConfig):
    """`{type: rmsprop, learning_rate: 0.001, rho: 0.9, momentum: 0.0, epsilon: 1e-7}`."""

    type: Literal["rmsprop"]
    learning_rate: float | ScheduleConfig = 0.001
    rho: float = Field(default=0.9, ge=0, lt=1)
    momentum: float = Field(default=0.0, ge=0, le=1)
    epsilon: float = Field(default=1e-7, gt=0)
    centered: bool = False


class AdagradConfig(BaseOptimizerConfig):
    """`{type: adagrad, learning_rate: 0.001, initial_accumulator_value: 0.1, epsilon: 1e-7}`."""

    type: Literal["adagrad"]
    learning_rate: float | ScheduleConfig = 0.001
    initial_accumulator_value: float = Field(default=0.1, ge=0)
    epsilon: float = Field(default=1e-7, gt=0)


class NadamConfig(BaseOptimizerConfig):
    """`{type: nadam, learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7}`."""

    type: Literal["nadam"]
    learning_rate: float | ScheduleConfig = 0.001
    beta_1: float = Field(default=0.9, ge=0, lt=1)
    beta_2: float = Field(default=0.999, ge=0, lt=1)
    epsilon: float = Field(default=1e-7, gt=0)


OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam"]


OptimizerConfig = Annotated[
    SGDConfig | AdamConfig | AdamWConfig | RMSpropConfig | AdagradConfig | NadamConfig,
    Field(discriminator="type"),
]


OptimizerSpec = Annotated[OptimizerName | OptimizerConfig, Field(union_mode="left_to_right")]
