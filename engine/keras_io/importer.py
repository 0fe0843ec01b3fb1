"""A Keras model file -> a spec and a Model holding its weights.

Keras's model config is a graph of layer calls (`inbound_nodes`, each naming the layer, call
and output it reads); the spec is a list of named entries. A layer called twice becomes one
entry plus a `shares` entry per further call. Masks follow the spec's own propagation, so the
mask arguments Keras records (and the ops that compute them) are not copied. Layer weights go
in by position: Keras's order is the spec's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.build import SpecError, from_spec
from engine.keras_io import archive, objects
from engine.keras_io.compile_config import spec_compile
from engine.keras_io.errors import KerasArchiveError, KerasIOError, KerasUnsupportedError
from engine.keras_io.layer_config import describe, spec_entry
from engine.keras_io.layer_table import row_for
from engine.layers import registry
from engine.models import Model

Ref = tuple[str, int, int]  # (layer name, call index, output index)
_INPUT_CLASSES = ("InputLayer",)
_QUIET_KWARGS = ("mask", "training")


@dataclass
class Imported:
    """What an import produces: the spec, the model with Keras's weights, and notes."""

    spec: dict[str, Any]
    model: Model
    notes: list[str] = field(default_factory=list)
    keras_version: str | None = None


@dataclass
class _Call:
    layer: dict[str, Any]
    node: int
    refs: list[Ref]
    order: int
    arguments: dict[str, Any] = field(default_factory=dict)  # call arguments the spec keeps

    @property
    def key(self) -> tuple[str, int]:
        return (_name(self.layer), self.node)


def _name(layer: Mapping[str, Any]) -> str:
    return str(layer.get("name") or (layer.get("config") or {}).get("name"))


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__"


def _history(value: Mapping[str, Any]) -> Ref:
    name, node, index = value["config"]["keras_history"]
    return (str(name), int(node), int(index))


def _tensor_arguments(
    names: tuple[str, ...], args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    """A layer called on several tensors by position and keyword (MultiHeadAttention's query,
    value, key, attention_mask) -> its tensors in that order; a skipped key is the value."""
    given = dict(zip(names, args, strict=False))
    given |= {n: kwargs.pop(n) for n in names if kwargs.get(n) is not None}
    last = max((i for i, n in enumerate(names) if n in given), default=-1)
    tensors = [given.get(n, given.get("value")) for n in names[: last + 1]]
    return [tensors[0]] if tensors else [], tensors[1:]


def _node_refs(layer: Mapping[str, Any], node: Any) -> list[Ref]:
    """The tensors one call reads, from Keras 3's `{args, kwargs}` or Keras 2's list form."""
    if isinstance(node, list):  # Keras 2: [[name, node, index, kwargs], ...]
        return [(str(n[0]), int(n[1]), int(n[2])) for n in node]
    args = list(node.get("args") or [])
    kwargs = dict(node.get("kwargs") or {})
    row = row_for(str(layer.get("class_name")))
    if row is not None and row.tensor_arguments:
        args, named = _tensor_arguments(row.tensor_arguments, args, kwargs)
    else:
        named = []
    first = args[0] if args else None
    items = first if isinstance(first, list) else [first]
    refs = [_history(t) for t in [*items, *named] if isinstance(t, Mapping) and _is_tensor(t)]
    kept = (*_QUIET_KWARGS, *(row.call_arguments if row else ()))
    extras = [a for a in args[1:] if a is not None]
    extras += [k for k, v in kwargs.items() if k not in kept and v]
    if extras or not refs:
        raise KerasUnsupportedError(
            f"{describe(layer)} is called with arguments the spec cannot express ({extras}); "
            "modelspec imports layers called on tensors only"
        )
    return refs


def _call_arguments(layer: Mapping[str, Any], node: Any) -> dict[str, Any]:
    """The call arguments (`use_causal_mask`) that the spec writes in the layer's entry."""
    row = row_for(str(layer.get("class_name")))
    kwargs = node.get("kwargs") or {} if isinstance(node, Mapping) else {}
    return {k: kwargs[k] for k in (row.call_arguments if row else ()) if kwargs.get(k)}


def _input_entry(layer: Mapping[str, Any]) -> dict[str, Any]:
    config = layer.get("config") or {}
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not shape:
        raise KerasUnsupportedError(f"{describe(layer)} has no input shape")
    dtype = config.get("dtype") or "float32"
    if isinstance(dtype, Mapping):
        dtype = (dtype.get("config") or {}).get("name", "float32")
    entry = {"name": _name(layer), "shape": list(shape[1:])}
    return entry if dtype == "float32" else {**entry, "dtype": str(dtype)}


def _output_refs(value: Any) -> list[Ref]:
    """Keras's `input_layers` / `output_layers`: one [name, node, index] or a list of them."""
    items = value if value and isinstance(value[0], list) else [value]
    return [(str(n), int(i), int(t)) for n, i, t in items]


def _ordered(calls: dict[tuple[str, int], _Call], inputs: set[str]) -> list[_Call]:
    """Calls in an order where each follows the calls it reads (Keras's listing breaks ties)."""
    done: set[tuple[str, int]] = set()
    ordered: list[_Call] = []
    pending = sorted(calls.values(), key=lambda c: c.order)
    while pending:
        ready = next(
            c for c in pending if all(r[0] in inputs or (r[0], r[1]) in done for r in c.refs)
        )
        pending.remove(ready)
        done.add(ready.key)
        ordered.append(ready)
    return ordered


def _needed(
    layers: list[dict[str, Any]], outputs: list[Ref], inputs: set[str]
) -> dict[tuple[str, int], _Call]:
    """Every call the outputs depend on (ops that only compute masks are left behind)."""
    by_name = {_name(layer): (i, layer) for i, layer in enumerate(layers)}
    calls: dict[tuple[str, int], _Call] = {}
    stack = [r for r in outputs if r[0] not in inputs]
    while stack:
        name, node, index = stack.pop()
        if (name, node) in calls:
            continue
        if name not in by_name:
            raise KerasArchiveError("config.json", f"a call reads an unknown layer {name!r}")
        position, layer = by_name[name]
        if index != 0:
            raise KerasUnsupportedError(
                f"{describe(layer)}: its output {index} is used; "
                "the spec takes one output per layer"
            )
        nodes = layer.get("inbound_nodes") or []
        refs = _node_refs(layer, nodes[node])
        calls[(name, node)] = _Call(
            layer, node, refs, position * 1000 + node, _call_arguments(layer, nodes[node])
        )
        stack += [r for r in refs if r[0] not in inputs]
    return calls


def _functional(config: Mapping[str, Any]) -> dict[str, Any]:
    layers = list(config.get("layers") or [])
    input_layers = [layer for layer in layers if layer.get("class_name") in _INPUT_CLASSES]
    inputs = {_name(layer) for layer in input_layers}
    outputs = _output_refs(config.get("output_layers"))
    names: dict[tuple[str, int], str] = {}
    entries: list[dict[str, Any]] = []
    taken = set(inputs) | {_name(layer) for layer in layers}
    calls_by_key = _needed(layers, outputs, inputs)
    for call in _ordered(calls_by_key, inputs):
        layer_name = _name(call.layer)
        first = next((k for k in names if k[0] == layer_name), None)
        if first is None:
            entry = {"name": layer_name, **spec_entry(call.layer), **call.arguments}
            names[call.key] = layer_name
        else:
            if call.arguments != calls_by_key[first].arguments:
                raise KerasUnsupportedError(
                    f"{describe(call.layer)} is called with different arguments each time "
                    f"({call.arguments}); the spec keeps one set per layer"
                )
            calls = sum(1 for k in names if k[0] == layer_name)
            fresh = _fresh(f"{layer_name}_call_{calls}", taken)
            entry = {"name": fresh, "shares": names[first]}
            names[call.key] = fresh
        sources = [r[0] if r[0] in inputs else names[(r[0], r[1])] for r in call.refs]
        multi = registry.get(spec_entry(call.layer)["type"]).multi_input
        entry["inputs"] = sources if multi else sources[0]
        entries.append(entry)
    return {
        "type": "functional",
        "inputs": [_input_entry(layer) for layer in _ordered_inputs(config, input_layers)],
        "layers": entries,
        "outputs": [r[0] if r[0] in inputs else names[(r[0], r[1])] for r in outputs],
    }


def _ordered_inputs(
    config: Mapping[str, Any], layers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_name = {_name(layer): layer for layer in layers}
    return [by_name[r[0]] for r in _output_refs(config.get("input_layers")) if r[0] in by_name]


def _fresh(stem: str, taken: set[str]) -> str:
    name, count = stem, 1
    while name in taken:
        name, count = f"{stem}_{count}", count + 1
    taken.add(name)
    return name


def _sequential(config: Mapping[str, Any]) -> dict[str, Any]:
    layers = list(config.get("layers") or [])
    entries: list[dict[str, Any]] = []
    if layers and layers[0].get("class_name") in _INPUT_CLASSES:
        first = _input_entry(layers.pop(0))
        entries.append({"type": "Input", **first})
    else:
        shape = config.get("build_input_shape") or (
            (layers[0].get("config") or {}).get("batch_input_shape") if layers else None
        )
        if not shape:
            raise KerasUnsupportedError(
                "the Sequential model has no input shape; build it (or give it an Input) in "
                "Keras and save again"
            )
        entries.append({"type": "Input", "name": "input_layer", "shape": list(shape[1:])})
    for layer in layers:
        inner = dict(layer.get("config") or {})
        inner.pop("batch_input_shape", None)
        entries.append({"name": _name(layer), **spec_entry({**layer, "config": inner})})
    return {"type": "sequential", "layers": entries}


_MODEL_KINDS = {"Sequential": _sequential, "Functional": _functional, "Model": _functional}


def _spec_name(name: str, path: Path) -> str:
    cleaned = re.sub(r"[^0-9A-Za-z_]+", "_", name or path.stem).strip("_")
    return cleaned or "imported"


def to_spec(keras_file: archive.KerasFile) -> tuple[dict[str, Any], list[str]]:
    """The spec (model and compile sections) of a Keras model file, and notes on it."""
    top = keras_file.config
    kind = _MODEL_KINDS.get(str(top.get("class_name")))
    if kind is None or objects.is_custom(top):
        raise KerasUnsupportedError(
            f"the model is a {top.get('class_name')!r}, a subclassed model whose structure "
            "lives in Python code; modelspec imports Sequential and Functional models"
        )
    config = top.get("config") or {}
    model = kind(config)
    spec: dict[str, Any] = {
        "version": 1,
        "name": _spec_name(str(config.get("name") or ""), keras_file.path),
        "model": model,
    }
    outputs = list(model.get("outputs") or [model["layers"][-1]["name"]])
    compile_section, notes = spec_compile(keras_file.compile_config, outputs)
    if compile_section:
        spec["compile"] = compile_section
    return spec, notes


def _assign(model: Model, keras_file: archive.KerasFile) -> None:
    """Put every Keras layer's weights into the model's layer of the same name."""
    layers = (keras_file.config.get("config") or {}).get("layers") or []
    ours = {layer.name: layer for layer in model.layers}
    for layer in layers:
        target = ours.get(_name(layer))
        if target is None or not target.weights:
            continue
        arrays = keras_file.layer_arrays(layer)
        wanted = [tuple(w.shape) for w in target.weights]
        found = [tuple(a.shape) for a in arrays]
        if wanted != found:
            raise KerasArchiveError(
                keras_file.path,
                f"{describe(layer)} holds weights of shapes {found}; its config needs {wanted}",
            )
        target.set_weights(
            [np.asarray(a, dtype=w.dtype.name) for a, w in zip(arrays, target.weights, strict=True)]
        )


def _build(spec: dict[str, Any], path: Path) -> Model:
    try:
        return from_spec(spec)
    except SpecError as exc:
        raise KerasUnsupportedError(f"{path}: the imported spec does not build: {exc}") from None


def import_keras(path: str | Path) -> Imported:
    """Read a `.keras` or legacy `.h5` model into a spec and a Model with its weights."""
    keras_file = archive.read(path)
    try:
        if not keras_file.legacy:
            archive.fill_group_names(keras_file)
        spec, notes = to_spec(keras_file)
        model = _build(spec, keras_file.path)
        _assign(model, keras_file)
    except KerasIOError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise KerasArchiveError(
            keras_file.path,
            f"the model config is malformed ({type(exc).__name__}: {exc})",
        ) from None
    return Imported(spec, model, notes, keras_file.keras_version)
