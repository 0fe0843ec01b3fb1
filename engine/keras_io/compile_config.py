"""A Keras model's compile settings <-> the spec's `compile` section.

Optimizers, schedules, losses and metrics keep Keras's names on both sides (`Adam` <->
`adam`, `SparseCategoricalCrossentropy` <-> `sparse_categorical_crossentropy`). On import a
setting the spec cannot express is left out with a note saying so, since the weights and
predictions do not depend on it; on export every setting of a spec has a Keras form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from engine import losses, metrics
from engine.layers.base import snake_case
from engine.optimizers import OptimizerSpec
from engine.optimizers.schedules import ScheduleConfig

OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "nadam": "Nadam",
}
# Keras optimizer arguments the spec does not have, with the values that make them inert.
_INERT = {
    "use_ema": (False,),
    "ema_momentum": None,
    "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,),
    "jit_compile": None,
    "is_legacy_optimizer": (False,),
    "decay": (0, 0.0),
    "name": None,
}
_KERAS_NAMES = {"kl_divergence": "KLDivergence", "auc": "AUC"}
_OPTIMIZER: TypeAdapter[Any] = TypeAdapter(OptimizerSpec)
_LOSS: TypeAdapter[Any] = TypeAdapter(losses.LossSpec)
_METRIC: TypeAdapter[Any] = TypeAdapter(metrics.MetricSpec)
_SCHEDULE: TypeAdapter[Any] = TypeAdapter(ScheduleConfig)


def _float32(value: Any) -> Any:
    """Keras stores hyperparameters as float32: 0.0020000000949949026 reads back as 0.002."""
    return float(str(np.float32(value))) if isinstance(value, float) else value


def _args(config: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        k: _float32(v)
        for k, v in config.items()
        if v is not None and k not in drop and not (k in _INERT and _inert(k, v))
    }


def _inert(key: str, value: Any) -> bool:
    allowed = _INERT[key]
    return allowed is None or value in allowed


def _without_defaults(spec: dict[str, Any], adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The spec map without the arguments its config model would fill in anyway."""
    fields = type(adapter.validate_python(spec)).model_fields
    return {k: v for k, v in spec.items() if k == "type" or v != fields[k].default}


def _schedule(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return _float32(value)
    config = value.get("config") or {}
    spec = {"type": snake_case(str(value.get("class_name"))), **_args(config, ("name",))}
    return _without_defaults(spec, _SCHEDULE)


def _optimizer(value: Any) -> Any:
    spec: Any = value.lower() if isinstance(value, str) else None
    if spec is None:
        config = dict(value.get("config") or {})
        spec = {"type": str(value.get("class_name")).lower(), **_args(config)}
        if "learning_rate" in config:
            spec["learning_rate"] = _schedule(config["learning_rate"])
    _OPTIMIZER.validate_python(spec)
    if isinstance(spec, dict):
        spec = _without_defaults(spec, _OPTIMIZER)
    return spec if not isinstance(spec, dict) or len(spec) > 1 else spec["type"]


def _named(value: Any, adapter: TypeAdapter[Any], drop: tuple[str, ...]) -> Any:
    """A loss or metric: a Keras name, or a serialized class with its arguments."""
    if isinstance(value, Mapping) and "class_name" in value:
        name = snake_case(str(value["class_name"]))
        args = _args(value.get("config") or {}, drop)
        if args.get("name") == name:
            del args["name"]
        value = {"type": name, **args} if args else name
    adapter.validate_python(value)
    return value


def _per_output(value: Any, outputs: list[str], convert: Any) -> Any:
    """Keras's single value, list by output, or map by output name -> the spec's form."""
    if isinstance(value, Mapping) and "class_name" not in value:
        return {str(k): convert(v) for k, v in value.items()}
    if isinstance(value, list) and len(outputs) > 1 and len(value) == len(outputs):
        return {name: convert(v) for name, v in zip(outputs, value, strict=True)}
    return convert(value)


def _metric_list(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    return [_named(m, _METRIC, ("dtype",)) for m in items if m is not None]


def spec_compile(
    keras: Mapping[str, Any] | None, outputs: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """The spec's `compile` section from Keras's compile config, and notes on what was left out."""
    if not keras:
        return {}, []
    section: dict[str, Any] = {}
    notes: list[str] = []
    pieces = {
        "optimizer": lambda v: _optimizer(v),
        "loss": lambda v: _per_output(
            v, outputs, lambda x: _named(x, _LOSS, ("name", "reduction", "dtype"))
        ),
        "metrics": lambda v: (
            _per_output(v, outputs, _metric_list)
            if isinstance(v, Mapping) or (len(outputs) > 1 and all(isinstance(m, list) for m in v))
            else _metric_list(v)
        ),
        "loss_weights": lambda v: _per_output(v, outputs, float),
    }
    for key, convert in pieces.items():
        value = keras.get(key)
        if value is None:
            continue
        try:
            section[key] = convert(value)
        except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            first = str(exc).splitlines()[0]
            notes.append(f"compile.{key}: {value!r} has no modelspec form ({first}); left out")
    if keras.get("weighted_metrics"):
        notes.append("compile.weighted_metrics: not part of the spec; left out")
    return section, notes


def _keras_class(name: str) -> str:
    return _KERAS_NAMES.get(name) or "".join(p.capitalize() for p in name.split("_"))


def _keras_named(value: Any, module: str) -> Any:
    if not isinstance(value, Mapping):
        return value
    args = {k: v for k, v in value.items() if k != "type"}
    return {
        "module": module,
        "class_name": _keras_class(str(value["type"])),
        "config": args,
        "registered_name": None,
    }


def _keras_optimizer(value: Any) -> Any:
    spec = {"type": value} if isinstance(value, str) else dict(value)
    config = {k: v for k, v in spec.items() if k != "type"}
    if isinstance(config.get("learning_rate"), Mapping):
        config["learning_rate"] = _keras_named(
            config["learning_rate"], "keras.optimizers.schedules"
        )
    return {
        "module": "keras.optimizers",
        "class_name": OPTIMIZERS[str(spec["type"])],
        "config": config,
        "registered_name": None,
    }


def _each(value: Any, convert: Any) -> Any:
    if isinstance(value, Mapping) and "type" not in value:
        return {k: _each(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_each(v, convert) for v in value]
    return convert(value)


def keras_compile(section: Mapping[str, Any]) -> dict[str, Any] | None:
    """Keras's compile config from the spec's `compile` section (None without one)."""
    if not section:
        return None
    return {
        "optimizer": _keras_optimizer(section.get("optimizer") or "rmsprop"),
        "loss": _each(section.get("loss"), lambda v: _keras_named(v, "keras.losses")),
        "loss_weights": section.get("loss_weights"),
        "metrics": _each(section.get("metrics"), lambda v: _keras_named(v, "keras.metrics")),
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }
