"""The spec's `tune` section: what `modelspec tune` searches, how, and for how long.

Pure pydantic (no Optuna): `lint` validates the section without importing the tuner. Each
search-space key is a dotted path as `--set` takes it (`model.layers[1].units` or
`model.layers.1.units`); whether the path names a setting of the spec is a semantic check
(`modelspec.tune.checks`), since it depends on the rest of the file.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from engine.config.base import SpecConfig

Scalar = bool | int | float | str | None


class FloatRange(SpecConfig):
    """A float drawn from [low, high]; `log` samples its logarithm uniformly (learning rates)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: PositiveFloat | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntRange(SpecConfig):
    """An integer drawn from low..high inclusive, every `step`-th (widths, counts)."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: PositiveInt = 1

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self


class Choice(SpecConfig):
    """One of a list of values (batch sizes, activation names, optimizer names)."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low >= high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0; got {low}")
    if log and step is not None:
        raise ValueError("a range is either log or stepped, not both (Optuna's rule)")


Direction = Literal["minimize", "maximize"]
Parameter = Annotated[FloatRange | IntRange | Choice, Field(discriminator="type")]

# Metrics where a larger value is better; every other metric (losses, errors) is minimised.
LARGER_IS_BETTER = ("accuracy", "auc", "precision", "recall")


class TuneConfig(SpecConfig):
    """`tune`: the metric and its direction, the budget, the sampler, the pruner, the space."""

    # Default: the validation value of the first compiled metric, else val_loss.
    metric: str | None = None
    direction: Direction | None = None
    # Default: 20 trials when neither n_trials nor timeout (seconds) is given.
    n_trials: PositiveInt | None = None
    timeout: PositiveFloat | None = None
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "none"] = "median"
    space: dict[str, Parameter] = Field(min_length=1)


def default_metric(compile_section: object) -> str:
    """The validation value of the first metric in a list of metrics, else `val_loss`."""
    metrics = compile_section.get("metrics") if isinstance(compile_section, dict) else None
    if isinstance(metrics, list) and metrics:
        first = metrics[0]
        name = first if isinstance(first, str) else None
        if isinstance(first, dict) and isinstance(first.get("type"), str):
            name = first.get("name") or first["type"]
        if isinstance(name, str):
            return f"val_{name}"
    return "val_loss"


def default_direction(metric: str) -> Direction:
    return "maximize" if metric.endswith(LARGER_IS_BETTER) else "minimize"
