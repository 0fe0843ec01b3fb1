"""Build and compile a Model from a spec (a YAML path or its mapping), per docs/spec-format.md.

The `model` section is resolved by engine.spec_graph; layers are made from the layer registry
and built in spec order from one generator seeded by the spec's `seed` (the global generator of
`en.random.set_seed` when there is none), so the same spec always starts from the same weights.
The top-level `dtype` applies to every layer that sets none.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from engine import rng as _rng
from engine import spec_graph
from engine.layers import registry
from engine.layers.base import Layer, SymbolicTensor
from engine.models import Input, Model, Sequential

CustomObjects = Mapping[str, type[Layer]]


class SpecError(ValueError):
    """The spec cannot be built; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the spec cannot be built:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def _load(spec: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        return dict(spec)
    path = Path(spec)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError([f"{path}: cannot read the file ({exc.strerror})"]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML ({exc})"]) from exc
    if not isinstance(data, dict):
        raise SpecError([f"{path}: a spec is a mapping with at least a `model` section"])
    return data


def _make_layer(
    config: dict[str, Any], name: str, dtype: str, where: str, custom: CustomObjects
) -> Layer:
    type_name = str(config.get("type"))
    try:
        cls = custom[type_name] if type_name in custom else registry.get(type_name)
    except KeyError as exc:
        raise SpecError(
            [f"{where}: {exc.args[0]} (a custom layer class is passed as custom_objects)"]
        ) from None
    entry = {**config, "name": name}
    if "dtype" in cls.config_class.model_fields:
        entry.setdefault("dtype", dtype)
    try:
        return cls.from_config(entry)
    except ValidationError as exc:
        problems = [
            f"{where}.{_where(tuple(e['loc']))}: {e['msg']}" if e["loc"] else f"{where}: {e['msg']}"
            for e in exc.errors()
        ]
        raise SpecError(problems) from None


def _call(layer: Layer, inputs: list[SymbolicTensor], rng: np.random.Generator, where: str) -> Any:
    """Build `layer` from the spec's generator (before the symbolic call would) and call it."""
    shapes = [t.shape for t in inputs]
    shape: Any = shapes if layer.multi_input else shapes[0]
    try:
        layer.ensure_built(shape, rng)
        return layer(inputs if layer.multi_input else inputs[0])
    except ValueError as exc:
        raise SpecError([f"{where}: {exc}"]) from None


def build_model(
    model_spec: Any,
    seed: int | None = None,
    dtype: str = "float32",
    custom_objects: CustomObjects | None = None,
) -> Model:
    """The Model of a spec's `model` section (not compiled); `custom_objects` maps the type
    names of custom layers to their classes, as Keras's load_model takes them."""
    graph, problems = spec_graph.resolve(model_spec)
    errors = [f"{_where(p.path)}: {p.message}" for p in problems if p.kind.is_error]
    if errors:
        raise SpecError(errors)
    rng = _rng.generator(seed)
    name = model_spec.get("name") if isinstance(model_spec, dict) else None
    tensors: dict[str, SymbolicTensor] = {
        g.name: Input(g.shape, dtype=dtype if g.dtype == "float32" else g.dtype, name=g.name)
        for g in graph.inputs
    }
    layers: dict[str, Layer] = {}
    for node in graph.nodes:
        where = _where(node.path)
        if node.shares is not None:
            layer = layers[node.shares]
        else:
            layer = _make_layer(node.config, node.name, dtype, where, custom_objects or {})
        layers[node.name] = layer
        tensors[node.name] = _call(layer, [tensors[r] for r in node.inputs], rng, where)
    if graph.kind == "sequential":
        stack = Sequential(name=name)
        stack.add(tensors[graph.inputs[0].name])
        for node in graph.nodes:
            stack.add(layers[node.name])
        model: Model = stack
    else:
        model = Model(
            inputs=[tensors[g.name] for g in graph.inputs],
            outputs=[tensors[o] for o in graph.outputs]
            if len(graph.outputs) > 1
            else tensors[graph.outputs[0]],
            name=name,
        )
    model.dtype = dtype
    model.seed = seed
    return model


def from_spec(
    spec: str | Path | Mapping[str, Any], custom_objects: CustomObjects | None = None
) -> Model:
    """The spec's model, built with its seed and dtype and compiled from its `compile` section."""
    data = _load(spec)
    if "model" not in data:
        raise SpecError(["the spec has no `model` section"])
    dtype = data.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise SpecError([f"dtype: must be float32 or float64; got {dtype!r}"])
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise SpecError([f"seed: must be a non-negative integer; got {seed!r}"])
    model = build_model(data["model"], seed=seed, dtype=dtype, custom_objects=custom_objects)
    # docs/spec-format.md: `name` names the run and the model; by default the spec file's stem
    name = data.get("name") or (Path(spec).stem if isinstance(spec, (str, Path)) else None)
    if name:
        model.name = str(name)
    compile_section = data.get("compile")
    if compile_section is not None:
        if not isinstance(compile_section, dict):
            raise SpecError(["compile: must be a mapping"])
        try:
            model.compile(**compile_section)
        except (TypeError, ValueError) as exc:
            raise SpecError([f"compile: {exc}"]) from None
    return model
