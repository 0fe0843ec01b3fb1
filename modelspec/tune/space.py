"""A search space keyed by dotted paths, and a trial's values written into a copy of the spec.

Paths are the ones `--set` takes: `fit.batch_size`, `model.layers.1.units`, with list items also
written `model.layers[1].units`. A bare name where a mapping is needed (`optimizer: adam` under
`compile.optimizer.learning_rate`) becomes its `{type: adam}` form, which means the same thing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from modelspec.diagnostics import KeyPath

_INDEX = re.compile(r"\[(-?\d+)\]")


class PathError(ValueError):
    """A search-space path names no setting of the spec."""


def key_path(dotted: str) -> KeyPath:
    """`model.layers[1].units` -> ("model", "layers", 1, "units")."""
    parts = _INDEX.sub(r".\1", dotted).split(".")
    if any(not p for p in parts):
        raise PathError(f"{dotted!r} is not a dotted path (an empty part)")
    return tuple(int(p) if p.lstrip("-").isdecimal() else p for p in parts)


def _shown(path: KeyPath) -> str:
    return ".".join(str(p) for p in path) or "the spec"


def _step(target: Any, path: KeyPath, i: int) -> Any:
    """The container of `path[i]` (a missing mapping key on the way is created, as `--set` does)."""
    part, last = path[i], i == len(path) - 1
    if isinstance(target, list):
        if not isinstance(part, int) or not -len(target) <= part < len(target):
            raise PathError(f"{_shown(path[:i])} has no item {part!r}: it has {len(target)}")
        return target
    if not isinstance(target, dict):
        raise PathError(f"{_shown(path[:i])} is neither a mapping nor a list")
    if not last and part not in target:
        target[part] = {}
    elif not last and isinstance(target[part], str):
        target[part] = {"type": target[part]}
    return target


def set_value(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the setting at `dotted` in `data` (in place); PathError when there is no such place."""
    path = key_path(dotted)
    target: Any = data
    for i, part in enumerate(path):
        target = _step(target, path, i)
        if i == len(path) - 1:
            target[part] = value
        else:
            target = target[part]


def resolved(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with `values` (path -> value) applied and the `tune` section removed."""
    spec = copy.deepcopy(dict(data))
    spec.pop("tune", None)
    for dotted, value in values.items():
        set_value(spec, dotted, value)
    return spec


def samples(parameter: Mapping[str, Any]) -> list[Any]:
    """Values that stand for a parameter when checking its type: its ends or its choices."""
    if parameter.get("type") == "categorical":
        return list(parameter.get("choices") or [])
    return [parameter.get("low"), parameter.get("high")]


def grid(parameter: Mapping[str, Any]) -> list[Any] | None:
    """Every value a grid search tries; None for a float range without a step."""
    kind = parameter["type"]
    if kind == "categorical":
        return list(parameter["choices"])
    low, high = parameter["low"], parameter["high"]
    step = parameter.get("step") or (1 if kind == "int" else None)
    if step is None:
        return None
    count = int((high - low) // step) + 1
    values = [low + i * step for i in range(count)]
    return [int(v) for v in values] if kind == "int" else [float(v) for v in values]
