"""The one table of layer types: spec `type` name -> Layer class.

A layer module registers its class with `@register`; `engine.layers` imports every module of
the package, so the table is complete on import. The spec's layer union is built from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from engine.layers.base import Layer

LAYERS: dict[str, type[Layer]] = {}

L = TypeVar("L", bound="type[Layer]")


def register(cls: L) -> L:
    """Add a Layer class to the table under its `type_name` (the Keras class name)."""
    name = cls.type_name
    if name in LAYERS and LAYERS[name] is not cls:
        raise ValueError(f"layer type {name!r} is registered twice")
    LAYERS[name] = cls
    return cls


def get(type_name: str) -> type[Layer]:
    """The Layer class for a spec `type`; KeyError lists the known types."""
    _ensure_loaded()
    try:
        return LAYERS[type_name]
    except KeyError:
        raise KeyError(f"unknown layer type {type_name!r}") from None


def all_layers() -> dict[str, type[Layer]]:
    _ensure_loaded()
    return dict(LAYERS)


def config_classes() -> list[Any]:
    """Every layer's pydantic config model, for the spec's discriminated union."""
    return [cls.config_class for cls in all_layers().values()]


def _ensure_loaded() -> None:
    import engine.layers  # noqa: F401  (importing the package registers every layer)
