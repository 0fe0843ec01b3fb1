"""The spec's `fit` section as a config model: Keras's fit arguments with Keras's defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from engine.config.base import SpecConfig
from engine.config.callbacks import CallbackConfig
from engine.config.distributed import DistributedConfig

DEFAULT_BATCH_SIZE = 32


class FitConfig(SpecConfig):
    """The spec's `fit` section: Keras's fit arguments with Keras's defaults."""

    epochs: PositiveInt = 1
    batch_size: PositiveInt = DEFAULT_BATCH_SIZE
    # The range (0, 1) is checked by fit and by the linter (with its own code), not here.
    validation_split: float = 0.0
    shuffle: bool = True
    verbose: Literal[0, 1, 2, "auto"] = "auto"
    initial_epoch: NonNegativeInt = 0
    # String keys are class labels: the caller maps them to class ids before fit.
    class_weight: dict[int | str, float] | None = None
    callbacks: list[CallbackConfig] = Field(default_factory=list)
    # How the run spreads over MPI ranks; not a Keras fit argument (see engine.distributed).
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
