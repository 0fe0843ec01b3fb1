"""The spec's `fit.callbacks` entries: Keras's callbacks by `type`, with Keras's arguments."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt

from engine.config.base import SpecConfig

Mode = Literal["auto", "min", "max"]


class EarlyStoppingConfig(SpecConfig):
    type: Literal["EarlyStopping"]
    monitor: str = "val_loss"
    min_delta: NonNegativeFloat = 0.0
    patience: NonNegativeInt = 0
    verbose: Literal[0, 1] = 0
    mode: Mode = "auto"
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: NonNegativeInt = 0


class ModelCheckpointConfig(SpecConfig):
    type: Literal["ModelCheckpoint"]
    filepath: str = "checkpoint"
    monitor: str = "val_loss"
    verbose: Literal[0, 1] = 0
    save_best_only: bool = False
    mode: Mode = "auto"


class ReduceLROnPlateauConfig(SpecConfig):
    type: Literal["ReduceLROnPlateau"]
    monitor: str = "val_loss"
    factor: float = Field(default=0.1, gt=0.0, lt=1.0)
    patience: NonNegativeInt = 10
    verbose: Literal[0, 1] = 0
    mode: Mode = "auto"
    min_delta: NonNegativeFloat = 1e-4
    cooldown: NonNegativeInt = 0
    min_lr: NonNegativeFloat = 0.0


class CSVLoggerConfig(SpecConfig):
    type: Literal["CSVLogger"]
    filename: str = "training.log"
    separator: str = ","
    append: bool = False


class TerminateOnNaNConfig(SpecConfig):
    type: Literal["TerminateOnNaN"]


class TensorBoardConfig(SpecConfig):
    type: Literal["TensorBoard"]
    log_dir: str = "logs"
    histogram_freq: NonNegativeInt = 0
    write_graph: bool = True
    write_steps_per_second: bool = False
    update_freq: Literal["epoch", "batch"] | Annotated[int, Field(ge=1)] = "epoch"


CallbackConfig = Annotated[
    EarlyStoppingConfig
    | ModelCheckpointConfig
    | ReduceLROnPlateauConfig
    | CSVLoggerConfig
    | TerminateOnNaNConfig
    | TensorBoardConfig,
    Field(discriminator="type"),
]
