"""Keras's serialized objects (initializers, regularizers, constraints, activations, dtypes)
to the spec's forms and back: one table per kind, Keras class name <-> spec name.

Keras 3 writes `{"module", "class_name", "config", "registered_name"}` maps (Keras 2 the same
without `module`); a plain string is a Keras name. Anything that is not one of Keras's own
objects (a `registered_name` of a custom package, a function) is refused, never resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import activations
from engine.keras_io.errors import KerasUnsupportedError

# spec name -> Keras class name; the spec's arguments are Keras's own.
INITIALIZERS = {
    "zeros": "Zeros",
    "ones": "Ones",
    "constant": "Constant",
    "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform",
    "truncated_normal": "TruncatedNormal",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_normal": "HeNormal",
    "he_uniform": "HeUniform",
    "lecun_normal": "LecunNormal",
    "lecun_uniform": "LecunUniform",
    "orthogonal": "Orthogonal",
    "identity": "Identity",
}
REGULARIZERS = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2"}
CONSTRAINTS = {
    "max_norm": "MaxNorm",
    "non_neg": "NonNeg",
    "unit_norm": "UnitNorm",
    "min_max_norm": "MinMaxNorm",
}
# Keras's default arguments, which the spec's initializers share: not worth writing out.
_DEFAULT_ARGUMENTS: dict[str, dict[str, Any]] = {
    "random_normal": {"mean": 0.0, "stddev": 0.05},
    "truncated_normal": {"mean": 0.0, "stddev": 0.05},
    "random_uniform": {"minval": -0.05, "maxval": 0.05},
    "orthogonal": {"gain": 1.0},
    "identity": {"gain": 1.0},
    "constant": {"value": 0.0},
}
# Keras arguments that carry no meaning for the spec when they hold these values.
_SILENT_ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "input_axes": (None,),
    "output_axes": (None,),
    "seed": (None,),
}
_ALIASES = {
    "IdentityInitializer": "identity",
    "L1L2": "l1_l2",
    "l1l2": "l1_l2",
    "normal": "random_normal",
    "uniform": "random_uniform",
}


class ObjectKind:
    """One kind of serialized object: its table and the config key suffixes that hold it."""

    def __init__(self, label: str, table: Mapping[str, str], suffix: str) -> None:
        self.label = label
        self.to_keras = dict(table)
        self.from_keras = {v: k for k, v in table.items()} | {k: k for k in table}
        self.suffix = suffix

    def spec_value(self, value: Any, where: str) -> Any:
        """The spec's form of a Keras value (a name, or a `{type: ..., args}` map)."""
        if value is None or isinstance(value, str):
            return None if value is None else self._name(value, where)
        if not isinstance(value, Mapping) or "class_name" not in value:
            raise KerasUnsupportedError(f"{where}: {self.label} {value!r} is not a Keras object")
        _refuse_registered(value, f"{where}: {self.label}")
        name = self._name(str(value["class_name"]), where)
        defaults = _DEFAULT_ARGUMENTS.get(name, {})
        args = {
            k: v
            for k, v in dict(value.get("config") or {}).items()
            if k != "name" and v not in _SILENT_ARGUMENTS.get(k, ()) and defaults.get(k, ...) != v
        }
        return {"type": name, **args} if args else name

    def keras_value(self, value: Any) -> Any:
        """Keras's serialized form of a spec value."""
        if value is None:
            return None
        spec = value if isinstance(value, Mapping) else {"type": value}
        name = str(_ALIASES.get(spec["type"], spec["type"]))
        args = {k: v for k, v in spec.items() if k != "type" and v is not None}
        if name in ("l1", "l2", "l1_l2") and not args:
            args = {"l1": 0.01, "l2": 0.01} if name == "l1_l2" else {name: 0.01}
        return {
            "module": f"keras.{self.label}s",
            "class_name": self.to_keras[name],
            "config": args,
            "registered_name": None,
        }

    def _name(self, keras_name: str, where: str) -> str:
        name = _ALIASES.get(keras_name, keras_name)
        if name not in self.from_keras:
            known = ", ".join(sorted(self.to_keras.values()))
            raise KerasUnsupportedError(
                f"{where}: {self.label} {keras_name!r} has no modelspec equivalent "
                f"(supported: {known}); replace it in Keras and save again"
            )
        return self.from_keras[name]


INITIALIZER = ObjectKind("initializer", INITIALIZERS, "_initializer")
REGULARIZER = ObjectKind("regularizer", REGULARIZERS, "_regularizer")
CONSTRAINT = ObjectKind("constraint", CONSTRAINTS, "_constraint")
KINDS = (INITIALIZER, REGULARIZER, CONSTRAINT)


def kind_of(key: str) -> ObjectKind | None:
    """The object kind a config key holds (`kernel_initializer` -> INITIALIZER), if any."""
    return next((k for k in KINDS if key.endswith(k.suffix)), None)


def is_custom(value: Mapping[str, Any]) -> bool:
    """A registered custom object (`package>Name`) or one from outside Keras's modules."""
    registered = f"{value.get('registered_name') or ''}{value.get('class_name') or ''}"
    module = value.get("module")
    return ">" in registered or (module is not None and not str(module).startswith("keras"))


def _refuse_registered(value: Mapping[str, Any], where: str) -> None:
    if is_custom(value):
        raise KerasUnsupportedError(
            f"{where} {value.get('class_name')!r} is a custom object "
            f"({value.get('registered_name') or value.get('module')}); modelspec never runs "
            "code from a file: replace it with a built-in one and save again"
        )


def activation_spec(value: Any, where: str) -> Any:
    """A Keras activation (a name, or a serialized function) as the spec's name."""
    if isinstance(value, Mapping):
        _refuse_registered(value, f"{where}: activation")
        value = value.get("config") if value.get("class_name") == "function" else value
    if value == "linear" or value is None:
        return None if value is None else "linear"
    if not isinstance(value, str) or value not in activations.names():
        raise KerasUnsupportedError(
            f"{where}: activation {value!r} has no modelspec equivalent "
            f"(supported: {', '.join(activations.names())})"
        )
    return value


def keras_activation(value: Any, where: str) -> str:
    """The spec's activation as Keras's name; arguments beyond Keras's defaults are refused."""
    if value is None:
        return "linear"
    if isinstance(value, Mapping):
        args = {k: v for k, v in value.items() if k != "type" and v is not None}
        if args:
            raise KerasUnsupportedError(
                f"{where}: activation {value['type']} with {args} has no Keras name; "
                "Keras takes activation arguments only as separate layers"
            )
        return str(value["type"])
    return str(value)


def spec_dtype(value: Any, where: str) -> str | None:
    """Keras's dtype (a name or a DTypePolicy map) as the spec's; None for float32."""
    if isinstance(value, Mapping):
        value = (value.get("config") or {}).get("name")
    if value in (None, "float32"):
        return None
    if value == "float64":
        return "float64"
    raise KerasUnsupportedError(
        f"{where}: dtype policy {value!r} is not supported (float32, float64)"
    )
