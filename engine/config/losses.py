"""The spec's loss settings: loss names and config maps, with Keras's arguments and defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from engine.config.base import SpecConfig

SimpleLossName = Literal[
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "mean_absolute_percentage_error",
    "mape",
    "mean_squared_logarithmic_error",
    "msle",
    "log_cosh",
    "logcosh",
    "hinge",
    "squared_hinge",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "poisson",
]


LossName = (
    SimpleLossName
    | Literal[
        "huber",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "cosine_similarity",
    ]
)


class SimpleLossConfig(SpecConfig):
    """A loss without arguments in map form: `{type: mse}`."""

    type: SimpleLossName


class HuberConfig(SpecConfig):
    """`{type: huber, delta: 1.0}`."""

    type: Literal["huber"]
    delta: float = Field(default=1.0, gt=0)


class BinaryCrossentropyConfig(SpecConfig):
    """`{type: binary_crossentropy, from_logits: false, label_smoothing: 0.0, axis: -1}`."""

    type: Literal["binary_crossentropy"]
    from_logits: bool = False
    label_smoothing: float = Field(default=0.0, ge=0, le=1)
    axis: int = -1


class CategoricalCrossentropyConfig(SpecConfig):
    """`{type: categorical_crossentropy, from_logits: false, label_smoothing: 0.0, axis: -1}`."""

    type: Literal["categorical_crossentropy"]
    from_logits: bool = False
    label_smoothing: float = Field(default=0.0, ge=0, le=1)
    axis: int = -1


class SparseCategoricalCrossentropyConfig(SpecConfig):
    """`{type: sparse_categorical_crossentropy, from_logits: false, axis: -1}` (Keras has no
    label smoothing for sparse labels)."""

    type: Literal["sparse_categorical_crossentropy"]
    from_logits: bool = False
    axis: int = -1


class CosineSimilarityConfig(SpecConfig):
    """`{type: cosine_similarity, axis: -1}`."""

    type: Literal["cosine_similarity"]
    axis: int = -1


LossConfig = Annotated[
    SimpleLossConfig
    | HuberConfig
    | BinaryCrossentropyConfig
    | CategoricalCrossentropyConfig
    | SparseCategoricalCrossentropyConfig
    | CosineSimilarityConfig,
    Field(discriminator="type"),
]


LossSpec = Annotated[LossName | LossConfig, Field(union_mode="left_to_right")]
