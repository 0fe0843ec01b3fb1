"""The base of every spec config model: unknown keys are errors, the validator is built on first
use, and a YAML boolean is never read as a number.

PyYAML reads `yes`, `no`, `on`, `off`, `true` and `false` as booleans, and pydantic's lax mode
then takes True as 1 for an integer or float field: `units: yes` made a Dense layer of one unit
and `epochs: on` one epoch, silently. A boolean given to a field that holds only numbers is
swapped for a stand-in that no type accepts, so pydantic reports that field's own type
error at its own key (`units: should be a valid integer; got True`).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator


class _Flag:
    """A YAML boolean where a number belongs: repr as the boolean, a number to nothing."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


class SpecConfig(BaseModel):
    """A config model of the spec (a section, a layer, an optimizer ...)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        numeric, mappings = _numeric_keys(cls), _number_mapping_keys(cls)
        if not any(
            key in numeric and _holds_bool(value, key in mappings) for key, value in data.items()
        ):
            return data
        return {
            key: _flagged(v, key in mappings) if key in numeric else v for key, v in data.items()
        }


@functools.cache
def _numeric_keys(cls: type[BaseModel]) -> frozenset[str]:
    """The keys (names and aliases) of the fields no boolean is valid for."""
    keys: set[str] = set()
    for name, info in cls.model_fields.items():
        if not _admits_bool(info.annotation):
            keys |= {name, info.alias} - {None}  # type: ignore[arg-type]
    return frozenset(keys)


@functools.cache
def _number_mapping_keys(cls: type[BaseModel]) -> frozenset[str]:
    """The keys of the fields that may be a mapping of numbers and never a config model
    (`class_weight: {0: 2.0}`, `loss_weights: {out: 0.5}`): the booleans among the mapping's
    values are errors too."""
    keys: set[str] = set()
    for name, info in cls.model_fields.items():
        if _maps_numbers(info.annotation) and not _admits_model(info.annotation):
            keys |= {name, info.alias} - {None}  # type: ignore[arg-type]
    return frozenset(keys)


def _maps_numbers(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (dict, Mapping):
        return len(args) == 2 and not _admits_bool(args[1])
    return any(_maps_numbers(arg) for arg in args)


def _admits_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_admits_model(arg) for arg in typing.get_args(annotation))


def _admits_bool(annotation: Any) -> bool:
    """Whether a boolean may be a valid value of `annotation`, or of an item of it."""
    if annotation in (bool, Any, object):
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return any(isinstance(v, bool) for v in args)
    return any(_admits_bool(arg) for arg in args)


def _holds_bool(value: Any, mapping: bool = False) -> bool:
    """Whether `value` is a boolean or holds one in its lists (or, for a `mapping` field, in
    its mapping's values)."""
    if isinstance(value, bool):
        return True
    if mapping and isinstance(value, dict):
        return any(_holds_bool(v) for v in value.values())
    return isinstance(value, (list, tuple)) and any(_holds_bool(v) for v in value)


def _flagged(value: Any, mapping: bool = False) -> Any:
    if isinstance(value, bool):
        return _Flag(value)
    if mapping and isinstance(value, dict):
        return {k: _flagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_flagged(v) for v in value)
    return value
