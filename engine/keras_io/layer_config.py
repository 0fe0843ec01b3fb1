"""One layer's config, Keras's serialized form <-> the spec's entry, through the layer table.

Arguments keep Keras's names on both sides; only the serialized objects (initializers,
activations, dtypes, ...) change form. An argument the spec does not have is dropped only when
the table says its value changes nothing; otherwise the layer is refused, naming the argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticUndefined

from engine.keras_io import objects
from engine.keras_io.errors import KerasUnsupportedError
from engine.keras_io.layer_table import (
    BY_KERAS,
    BY_SPEC,
    IGNORABLE,
    NO_KERAS_EQUIVALENT,
    row_for,
)
from engine.layers import registry

ACTIVATION_KEYS = ("activation", "recurrent_activation")
_SPEC_ONLY_KEYS = ("type", "name", "inputs", "input_shape", "shares")


def describe(layer: Mapping[str, Any]) -> str:
    """`layer 'dense' (Dense)`, for messages."""
    name = (layer.get("config") or {}).get("name") or layer.get("name")
    return f"layer {name!r} ({layer.get('class_name')})"


def _refuse(layer: Mapping[str, Any]) -> KerasUnsupportedError:
    what = describe(layer)
    if layer.get("class_name") == "Lambda":
        return KerasUnsupportedError(
            f"{what} holds Python code, which modelspec never runs: rewrite it as a spec "
            "Lambda with an `expression` (docs/spec-format.md), or replace it in Keras and save "
            "again"
        )
    if objects.is_custom(layer):
        registered = layer.get("registered_name") or layer.get("module")
        return KerasUnsupportedError(
            f"{what}, registered as {registered!r}, is a custom class that only its own "
            "Python code can rebuild, which modelspec never runs: replace it with built-in "
            "layers in Keras and save again"
        )
    return KerasUnsupportedError(
        f"{what} has no modelspec equivalent (supported: {', '.join(sorted(BY_KERAS))}); "
        "replace it in Keras and save again"
    )


def _compact(key: str, value: Any) -> Any:
    """`[3, 3]` -> 3 and `[-1]` -> -1, as a person would write them."""
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        if key == "axis" and len(value) == 1:
            return value[0]
        if key in ("kernel_size", "strides", "pool_size", "dilation_rate"):
            return value[0] if len(set(value)) == 1 else value
    return value


def _spec_value(key: str, value: Any, where: str) -> Any:
    if key in ACTIVATION_KEYS:
        return objects.activation_spec(value, where)
    kind = objects.kind_of(key)
    if kind is not None:
        return kind.spec_value(value, f"{where}: {key}")
    return _compact(key, value)


def spec_entry(layer: Mapping[str, Any]) -> dict[str, Any]:
    """A Keras layer (`{"class_name", "config"}`) as the spec's entry, without name or inputs."""
    row = row_for(str(layer.get("class_name")))
    if row is None or objects.is_custom(layer):
        raise _refuse(layer)
    where = describe(layer)
    config = dict(layer.get("config") or {})
    fields = registry.get(row.spec).config_class.model_fields
    entry: dict[str, Any] = {"type": row.spec}
    for keras_key, value in config.items():
        key = row.renamed.get(keras_key, keras_key)
        if key == "name" or (key == "trainable" and value is not False):
            continue
        if key == "dtype":
            dtype = objects.spec_dtype(value, where)
            if dtype:
                entry["dtype"] = dtype
        elif key in row.dropped and row.dropped[key](value, config):
            continue
        elif key in row.nested:
            inner = {k: v for k, v in value.items() if k != "config"}
            inner_config = value.get("config") or {}
            inner["config"] = {
                k: v for k, v in inner_config.items() if k not in row.nested_set_by_keras
            }
            entry[key] = spec_entry(inner)
        elif key in fields:
            entry[key] = _spec_value(key, value, where)
        elif not (key in IGNORABLE and IGNORABLE[key](value, config)):
            raise KerasUnsupportedError(
                f"{where}: argument {key}={value!r} has no modelspec equivalent; "
                "set it to Keras's default in Keras and save again"
            )
    return {k: v for k, v in entry.items() if k == "type" or not _is_default(fields, k, v)}


def _is_default(fields: Mapping[str, Any], key: str, value: Any) -> bool:
    """Whether the spec would have this value anyway (Keras's `linear` is the spec's None)."""
    if key not in fields or fields[key].default is PydanticUndefined:
        return False
    default = fields[key].default
    return value == default or (key in ACTIVATION_KEYS and value == "linear" and default is None)


def _keras_value(key: str, value: Any, where: str) -> Any:
    if key in ACTIVATION_KEYS:
        return objects.keras_activation(value, where)
    kind = objects.kind_of(key)
    if kind is not None:
        return kind.keras_value(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def call_arguments(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry's values that Keras takes when the layer is called, not when it is made."""
    row = BY_SPEC.get(str(entry.get("type")))
    return {k: entry[k] for k in (row.call_arguments if row else ()) if entry.get(k)}


def keras_layer(entry: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """A spec layer entry (as a model's get_config writes it) as Keras's serialized layer."""
    type_name = str(entry.get("type"))
    row = BY_SPEC.get(type_name)
    where = f"layer {name!r} ({type_name})"
    if row is None:
        reason = NO_KERAS_EQUIVALENT.get(type_name, "it has no row in the Keras table")
        raise KerasUnsupportedError(
            f"{where} has no Keras equivalent that Keras loads safely (safe_mode): {reason}; "
            "replace it, or export to ONNX"
        )
    config: dict[str, Any] = {} if name is None else {"name": name}
    for key, value in entry.items():
        if key in (*_SPEC_ONLY_KEYS, *row.call_arguments, *row.keras_omits):
            continue
        if key in row.nested:
            config[key] = keras_layer(value, None)
        else:
            config[key] = _keras_value(key, value, where)
    config["dtype"] = config.get("dtype") or "float32"
    return {
        "module": "keras.layers",
        "class_name": row.keras,
        "config": config,
        "registered_name": None,
    }
