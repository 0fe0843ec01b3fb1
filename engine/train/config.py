"""The spec's `fit` section as a config model: Keras's fit arguments with Keras's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from engine import callbacks as cb

DEFAULT_BATCH_SIZE = 32


class FitConfig(BaseModel):
    """The spec's `fit` section: Keras's fit arguments with Keras's defaults."""

    model_config = ConfigDict(extra="forbid")
    epochs: PositiveInt = 1
    batch_size: PositiveInt = DEFAULT_BATCH_SIZE
    # The range (0, 1) is checked by fit and by the linter (with its own code), not here.
    validation_split: float = 0.0
    shuffle: bool = True
    verbose: Literal[0, 1, 2, "auto"] = "auto"
    initial_epoch: NonNegativeInt = 0
    # String keys are class labels: the caller maps them to class ids before fit.
    class_weight: dict[int | str, float] | None = None
    callbacks: list[cb.CallbackConfig] = Field(default_factory=list)

    def fit_kwargs(self, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Arguments for `model.fit`, callbacks built (their files inside `run_dir` if given)."""
        data = self.model_dump(exclude={"callbacks"})
        data["callbacks"] = [c.build(run_dir) for c in self.callbacks]
        return data
