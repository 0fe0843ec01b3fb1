"""The spec's metric settings: metric names and config maps, with Keras's arguments and defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from engine.config.base import SpecConfig

MeanMetricName = Literal[
    "accuracy",
    "acc",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "mae",
    "mean_absolute_error",
    "mse",
    "mean_squared_error",
    "rmse",
    "root_mean_squared_error",
]


MetricName = (
    MeanMetricName
    | Literal[
        "binary_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "precision",
        "recall",
        "auc",
    ]
)


UnitFloat = Annotated[float, Field(ge=0, le=1)]


class _MetricConfigBase(SpecConfig):
    name: str | None = None


class MeanMetricConfig(_MetricConfigBase):
    """A metric without arguments in map form: `{type: mae, name: val_mae}`."""

    type: MeanMetricName


class BinaryAccuracyConfig(_MetricConfigBase):
    """`{type: binary_accuracy, threshold: 0.5}`."""

    type: Literal["binary_accuracy"]
    threshold: float = 0.5


class TopKCategoricalAccuracyConfig(_MetricConfigBase):
    """`{type: top_k_categorical_accuracy, k: 5}` (also the sparse form with class ids)."""

    type: Literal["top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"]
    k: int = Field(default=5, ge=1)


class PrecisionRecallConfig(_MetricConfigBase):
    """`{type: precision, thresholds: 0.5, top_k: 2, class_id: 1}` (also recall), Keras's
    arguments: without `thresholds` the cut is 0.5, or the top k themselves with `top_k`; a
    list of thresholds gives one value per threshold, as Keras does."""

    type: Literal["precision", "recall"]
    thresholds: UnitFloat | Annotated[list[UnitFloat], Field(min_length=1)] | None = None
    top_k: int | None = Field(default=None, ge=1)
    class_id: int | None = Field(default=None, ge=0)


class AUCConfig(_MetricConfigBase):
    """`{type: auc, num_thresholds: 200, curve: ROC, from_logits: false}`."""

    type: Literal["auc"]
    num_thresholds: int = Field(default=200, gt=1)
    curve: Literal["ROC", "PR"] = "ROC"
    from_logits: bool = False


MetricConfig = Annotated[
    MeanMetricConfig
    | BinaryAccuracyConfig
    | TopKCategoricalAccuracyConfig
    | PrecisionRecallConfig
    | AUCConfig,
    Field(discriminator="type"),
]


MetricSpec = Annotated[MetricName | MetricConfig, Field(union_mode="left_to_right")]
