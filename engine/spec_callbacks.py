"""The callbacks of a spec's `fit.callbacks` entries, built from their configs.

Apart from `engine.callbacks` so that a callback living in its own module (TensorBoard, whose
tensorboardX loads only when it writes) needs no import back from the callbacks module.
"""

from __future__ import annotations

from pathlib import Path

from engine.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from engine.config.callbacks import CallbackConfig
from engine.tensorboard import TensorBoard

_CLASSES: dict[str, type[Callback]] = {
    "EarlyStopping": EarlyStopping,
    "ModelCheckpoint": ModelCheckpoint,
    "ReduceLROnPlateau": ReduceLROnPlateau,
    "CSVLogger": CSVLogger,
    "TerminateOnNaN": TerminateOnNaN,
    "TensorBoard": TensorBoard,
}


# The arguments of spec callbacks that name files they write.
FILE_ARGUMENTS = ("filepath", "filename", "log_dir")


def from_config(config: CallbackConfig, run_dir: str | Path | None = None) -> Callback:
    """The callback of a spec entry; relative file paths are taken inside `run_dir` if given."""
    args = config.model_dump(exclude={"type"})
    for key in FILE_ARGUMENTS:
        if key in args and run_dir is not None and not Path(args[key]).is_absolute():
            args[key] = str(Path(run_dir) / args[key])
    return _CLASSES[config.type](**args)
