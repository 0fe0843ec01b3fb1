"""The spec's `data` section: where the training, validation and test data live."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

Selection = str | list[str] | dict[str, str | list[str]]


class DataSource(BaseModel):
    """One of `train`, `validation`, `test`: a file and which columns or keys feed which name.

    CSV: `target` (one column, or a list) and optionally `features`; or `x`/`y` as lists of
    columns keyed by the model's input and output names. NPZ: `x`/`y` are keys (one, or a map
    keyed by input/output names). NPY: the file is the input array, and `y` may name a second
    NPY file of labels (relative to the spec file).
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str
    target: str | list[str] | None = None
    features: list[str] | None = None
    x: Selection | None = None
    y: Selection | None = None

    @model_validator(mode="after")
    def _one_way_to_name_targets(self) -> DataSource:
        if self.target is not None and self.y is not None:
            raise ValueError("give either `target` (CSV) or `y`, not both")
        if self.features is not None and self.x is not None:
            raise ValueError("give either `features` (CSV) or `x`, not both")
        return self


class DataConfig(BaseModel):
    """docs/spec-format.md's `data` section: where the training, validation and test data live."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    train: DataSource | None = None
    validation: DataSource | None = None
    test: DataSource | None = None
