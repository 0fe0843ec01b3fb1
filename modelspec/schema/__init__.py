"""The pydantic model of a whole spec file; its layer union is built from engine's layer registry.

`spec_model()` is the validator and the source of `modelspec schema`. Layer entries are a union
discriminated on `type` (Sequential) or on `type` / `shares` (Functional, whose entries also take
`inputs`), so every registered layer type is accepted with exactly its own arguments.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Discriminator,
    Field,
    NonNegativeInt,
    Tag,
    create_model,
)

from engine.config.base import SpecConfig
from engine.config.data import DataConfig
from engine.config.fit import FitConfig
from engine.config.losses import LossSpec
from engine.config.metrics import MetricSpec
from engine.config.optimizers import OptimizerSpec
from engine.layers import registry
from modelspec.schema.lazy_union import LazyUnion
from modelspec.schema.tune import TuneConfig

__all__ = ["layer_config_classes", "spec_model", "json_schema"]

INPUT_TYPE = "Input"
# The union tag of `shares` entries; not a key name, so error locations stay unambiguous.
SHARES_TAG = "SharedCall"


def _run_name(name: str) -> str:
    """The name is the run folder `runs/<name>/`: one plain folder name, so a spec never sends
    a run's files elsewhere (`../x`, an absolute path). Keras refuses '/' in names too."""
    if name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(
            "the name is the run folder runs/<name>/: one folder name, not '.' or '..', "
            "without '/' or '\\'"
        )
    return name


RunName = Annotated[str, AfterValidator(_run_name)]


class CompileConfig(SpecConfig):
    """`compile`: one setting for every output, or a map keyed by output name."""

    optimizer: OptimizerSpec = "rmsprop"
    loss: LossSpec | dict[str, LossSpec] | None = None
    metrics: list[MetricSpec] | dict[str, MetricSpec | list[MetricSpec]] | None = None
    loss_weights: list[float] | dict[str, float] | None = None


class ModelInput(SpecConfig):
    """A functional model input: `{name, shape, dtype}`, shape without the batch."""

    name: str
    shape: list[Annotated[int, Field(gt=0)] | None]
    dtype: Literal["float32", "float64", "int32", "int64", "bool", "string"] = "float32"


class SharesEntry(SpecConfig):
    """`{name, shares, inputs}`: call an earlier entry's layer again, with its weights."""

    name: str | None = None
    shares: str
    inputs: str | list[str] | dict[str, str] | None = None


def layer_config_classes() -> dict[str, type[BaseModel]]:
    """Every layer type's config model, by spec `type`, Input included."""
    return {name: cls.config_class for name, cls in registry.all_layers().items()}


def _entry_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "type" not in value and "shares" in value:
            return SHARES_TAG
        tag = value.get("type")
        return tag if isinstance(tag, str) else None
    return getattr(value, "type", SHARES_TAG if isinstance(value, SharesEntry) else None)


def _union(members: dict[str, type[BaseModel]]) -> Any:
    tagged = tuple(Annotated[cls, Tag(tag)] for tag, cls in sorted(members.items()))
    return Annotated[functools.reduce(lambda a, b: a | b, tagged), Discriminator(_entry_tag)]


@functools.cache
def _functional_entry(cls: type[BaseModel]) -> type[BaseModel]:
    """The config class plus `inputs`, for entries of a functional model."""
    # a mapping names a layer's call inputs (MultiHeadAttention's query, value, key)
    fields: Any = {"inputs": (str | list[str] | dict[str, str] | None, None)}
    return create_model(f"{cls.__name__}Entry", __base__=cls, **fields)


def _model_tag(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("type", "functional" if "outputs" in value else "sequential")
        return kind if isinstance(kind, str) else repr(kind)
    return str(getattr(value, "type", "sequential"))


def _itself(cls: type[BaseModel]) -> type[BaseModel]:
    return cls


def _layer_unions(lazy: bool) -> tuple[Any, Any]:
    """The Sequential and the Functional layer-entry unions, lazy ones for validation."""
    classes = layer_config_classes()
    if lazy:
        functional = {t: functools.partial(_functional_entry, c) for t, c in classes.items()}
        functional.pop(INPUT_TYPE)
        sequential = {t: functools.partial(_itself, c) for t, c in classes.items()}
        return (
            Annotated[Any, LazyUnion(sequential, _entry_tag)],
            Annotated[Any, LazyUnion({**functional, SHARES_TAG: lambda: SharesEntry}, _entry_tag)],
        )
    functional_members = {t: _functional_entry(c) for t, c in classes.items() if t != INPUT_TYPE}
    return _union(classes), _union({**functional_members, SHARES_TAG: SharesEntry})


@functools.cache
def spec_model(lazy: bool = True) -> type[BaseModel]:
    """The top-level model of a spec file, built once from the layer registry.

    `lazy=False` spells every layer type out in the union, for the JSON Schema; validation
    gives the same result and the same errors either way.
    """
    sequential_layer, functional_layer = _layer_unions(lazy)
    sequential_fields: Any = {
        "type": (Literal["sequential"], "sequential"),
        "layers": (list[sequential_layer], Field(min_length=1)),  # type: ignore[valid-type]
    }
    functional_fields: Any = {
        "type": (Literal["functional"], ...),
        "inputs": (list[ModelInput], Field(min_length=1)),
        "layers": (list[functional_layer], Field(min_length=1)),  # type: ignore[valid-type]
        "outputs": (str | list[str], ...),
    }
    sequential: Any = create_model("SequentialModel", __base__=SpecConfig, **sequential_fields)
    functional: Any = create_model("FunctionalModel", __base__=SpecConfig, **functional_fields)
    model_union = Annotated[
        Annotated[sequential, Tag("sequential")] | Annotated[functional, Tag("functional")],
        Discriminator(_model_tag),
    ]
    fields: Any = {
        "version": (Literal[1], 1),
        "name": (RunName | None, None),
        "description": (str | None, None),
        # strict: pydantic would read `true` as 1, which the build then refuses
        "seed": (Annotated[NonNegativeInt, Field(strict=True)] | None, None),
        "dtype": (Literal["float32", "float64"], "float32"),
        "model": (model_union, ...),
        "compile": (CompileConfig | None, None),
        "data": (DataConfig | None, None),
        "fit": (FitConfig | None, None),
        "tune": (TuneConfig | None, None),
    }
    return create_model("ModelSpec", __base__=SpecConfig, **fields)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format, for editors' YAML plugins."""
    schema = spec_model(lazy=False).model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "modelspec spec, version 1",
        **{k: v for k, v in schema.items() if k != "title"},
    }
