"""The spec's `data` section: where the training, validation and test data live."""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from pydantic import Field, model_validator

from engine.config.base import SpecConfig

Selection = str | list[str] | dict[str, str | list[str]]
DataFormat = Literal["csv", "npz", "npy", "parquet", "arrow", "images", "text"]
ColorMode = Literal["grayscale", "rgb", "rgba"]
Interpolation = Literal["bilinear", "nearest", "bicubic", "area", "lanczos3"]
# Keras's image_dataset_from_directory / text_dataset_from_directory arguments.
_FOLDER_OPTIONS = (
    "image_size",
    "color_mode",
    "interpolation",
    "crop_to_aspect_ratio",
    "label_mode",
    "class_names",
    "validation_split",
    "subset",
    "seed",
    "max_length",
)


class DataSource(SpecConfig):
    """One of `train`, `validation`, `test`: a file and which columns or keys feed which name.

    CSV: `target` (one column, or a list) and optionally `features`; or `x`/`y` as lists of
    columns keyed by the model's input and output names. NPZ: `x`/`y` are keys (one, or a map
    keyed by input/output names). NPY: the file is the input array, and `y` may name a second
    NPY file of labels (relative to the spec file). Parquet and Arrow/Feather files (or folders
    of them) name columns as a CSV does; a list column is one array. `images`/`text` folders hold
    one subfolder per class and take Keras's `image_dataset_from_directory` arguments.
    `streaming` reads the data in blocks during training instead of whole beforehand; `auto`
    streams data larger than `engine.streaming.STREAM_ABOVE_BYTES`.
    """

    path: str
    format: DataFormat | None = None
    target: str | list[str] | None = None
    features: list[str] | None = None
    x: Selection | None = None
    y: Selection | None = None
    streaming: bool | Literal["auto"] = "auto"
    shuffle_buffer: int = Field(default=10_000, ge=1)
    prefetch: int = Field(default=2, ge=1)
    bad_data: Literal["error", "skip"] = "error"
    image_size: tuple[int, int] = (256, 256)
    color_mode: ColorMode = "rgb"
    interpolation: Interpolation = "bilinear"
    crop_to_aspect_ratio: bool = False
    label_mode: Literal["int", "categorical", "binary"] | None = "int"
    class_names: list[str] | None = None
    validation_split: float | None = Field(default=None, gt=0.0, lt=1.0)
    subset: Literal["training", "validation"] | None = None
    seed: int | None = None
    max_length: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_way_to_name_targets(self) -> DataSource:
        if self.target is not None and self.y is not None:
            raise ValueError("give either `target` (CSV) or `y`, not both")
        if self.features is not None and self.x is not None:
            raise ValueError("give either `features` (CSV) or `x`, not both")
        folder_options = sorted(set(_FOLDER_OPTIONS) & self.model_fields_set)
        named_file = self.format is None and PurePath(self.path).suffix != ""
        if folder_options and (self.format not in (None, "images", "text") or named_file):
            raise ValueError(
                f"{', '.join(folder_options)} apply to `format: images` or `format: text` only"
            )
        if (self.validation_split is None) != (self.subset is None):
            raise ValueError("give `validation_split` and `subset` together, as Keras does")
        if self.validation_split is not None and self.seed is None:
            raise ValueError("`validation_split` needs a `seed`, so both subsets split alike")
        return self


class ImageOptions(SpecConfig):
    """How a model's training images were decoded, saved in its data schema so that `predict`
    on new images decodes them alike (a `DataSource`'s fields of the same names)."""

    image_size: tuple[int, int]
    color_mode: ColorMode
    interpolation: Interpolation
    crop_to_aspect_ratio: bool

    @classmethod
    def of(cls, source: DataSource) -> ImageOptions:
        return cls(**source.model_dump(include=set(cls.model_fields)))


class DataConfig(SpecConfig):
    """docs/spec-format.md's `data` section: where the training, validation and test data live."""

    train: DataSource | None = None
    validation: DataSource | None = None
    test: DataSource | None = None
