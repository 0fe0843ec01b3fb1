"""A modelspec model -> a Keras 3 `.keras` archive that `keras.saving.load_model` reads in
safe mode: `config.json` of built-in Keras classes only, `metadata.json`, and
`model.weights.h5` laid out as Keras lays it out (see layer_order and layer_table).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.keras_io.compile_config import keras_compile
from engine.keras_io.errors import KerasUnsupportedError, h5py_module
from engine.keras_io.layer_config import call_arguments, keras_layer
from engine.keras_io.layer_order import functional_order, group_names
from engine.keras_io.layer_table import BY_KERAS, BY_SPEC, weights_class
from engine.loading import load_model
from engine.models import Model, Sequential

KERAS_VERSION = "3.5.0"  # the oldest Keras whose archive layout this writes
_DATE = "1980-01-01@00:00:00"  # fixed, so the same model gives the same bytes


def _tensor(shape: Sequence[int | None], dtype: str, history: tuple[str, int]) -> dict[str, Any]:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": list(shape), "dtype": dtype, "keras_history": [*history, 0]},
    }


def _input_layer(name: str, shape: Sequence[int | None], dtype: str) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": list(shape), "dtype": dtype, "name": name},
        "registered_name": None,
        "name": name,
        "inbound_nodes": [],
    }


def _layer(layer: Any) -> dict[str, Any]:
    return keras_layer(layer.get_config(), layer.name)


def _refs(refs: list[list[Any]]) -> list[Any]:
    """Keras writes a lone input or output as one [name, call, index], not a list of one."""
    return refs[0] if len(refs) == 1 else refs


def _node(layer: Any, tensors: list[dict[str, Any]]) -> dict[str, Any]:
    """One call as Keras records it: tensors by position (a list for merge layers) or by
    keyword where Keras's call takes them so, and the call arguments kept in the entry."""
    kwargs = call_arguments(layer.get_config())
    row = BY_SPEC[layer.type_name]
    if row.tensor_arguments:
        named = row.tensor_arguments[row.positional_tensors :]
        kwargs |= dict(zip(named, tensors[row.positional_tensors :], strict=False))
        return {"args": tensors[: row.positional_tensors], "kwargs": kwargs}
    return {"args": [tensors if layer.multi_input else tensors[0]], "kwargs": kwargs}


def _functional(model: Model) -> tuple[dict[str, Any], list[Any]]:
    """Keras's Functional config, and the model's layers in Keras's order (None for inputs)."""
    graph = model.graph
    inputs = [str(t.name) for t in model.inputs]
    dtypes = {slot: t.dtype for slot, t in zip(graph.input_slots, model.inputs, strict=True)}
    history: dict[int, tuple[str, int]] = {
        s: (n, 0) for s, n in zip(graph.input_slots, inputs, strict=True)
    }
    entries: dict[int, dict[str, Any]] = {}
    for call in graph.calls:
        entry = entries.get(id(call.layer))
        if entry is None:
            entry = {**_layer(call.layer), "name": call.layer.name, "inbound_nodes": []}
            entries[id(call.layer)] = entry
        tensors = [
            _tensor(graph.slot_shapes[s], dtypes.get(s, model_dtype(model)), history[s])
            for s in call.inputs
        ]
        entry["inbound_nodes"].append(_node(call.layer, tensors))
        history[call.output] = (call.layer.name, len(entry["inbound_nodes"]) - 1)
    order = functional_order(graph)
    layers: list[dict[str, Any]] = []
    owners: list[Any] = []
    for node in order:
        if node < 0:
            t = model.inputs[-1 - node]
            layers.append(_input_layer(inputs[-1 - node], t.shape, t.dtype))
            owners.append(None)
        else:
            layers.append(entries[id(graph.calls[node].layer)])
            owners.append(graph.calls[node].layer)
    config = {
        "name": model.name,
        "trainable": True,
        "layers": layers,
        "input_layers": _refs([[n, 0, 0] for n in inputs]),
        "output_layers": _refs([[*history[s], 0] for s in graph.output_slots]),
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": config,
        "registered_name": "Functional",
    }, owners


def model_dtype(model: Model) -> str:
    return str(getattr(model, "dtype", None) or "float32")


def _sequential(model: Sequential) -> tuple[dict[str, Any], list[Any]]:
    t = model.inputs[0]
    layers = [_input_layer(t.name or "input_layer", t.shape, t.dtype)]
    for layer in model.layers:
        if call_arguments(layer.get_config()):
            raise KerasUnsupportedError(
                f"layer {layer.name!r} ({layer.type_name}) takes "
                f"{call_arguments(layer.get_config())} when called, which a Keras Sequential "
                "cannot pass: write the model as a functional one"
            )
    layers += [_layer(layer) for layer in model.layers]
    config = {"name": model.name, "trainable": True, "layers": layers}
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": config,
        "registered_name": None,
    }, list(model.layers)


def _write_vars(
    h5: Any,
    group: str,
    name: str,
    keras_class: str,
    config: dict[str, Any],
    arrays: list[np.ndarray],
) -> None:
    """A layer's weights where Keras 3 keeps them: own `vars`, or split among its children."""
    vars_group = h5.require_group(f"{group}/vars")
    vars_group.attrs["name"] = name
    row = BY_KERAS.get(keras_class)
    if row is None or not row.children:
        for index, array in enumerate(arrays):
            vars_group.create_dataset(str(index), data=array)
        return
    share = len(arrays) // len(row.children)
    for i, (child, key) in enumerate(row.children):
        inner = config.get(key) or config.get("layer") if key else None
        inner_class = inner["class_name"] if inner else keras_class
        part = arrays[i * share : (i + 1) * share]
        if inner is None:  # a sublayer Keras builds itself: an RNN's cell, an EinsumDense
            cell = h5.require_group(f"{group}/{child}/vars")
            cell.attrs["name"] = child
            for index, array in enumerate(part):
                cell.create_dataset(str(index), data=array)
        else:
            _write_vars(h5, f"{group}/{child}", child, inner_class, inner["config"], part)


def _weights_h5(path: Path, layers: list[dict[str, Any]], owners: list[Any], model: Model) -> bytes:
    h5py: Any = h5py_module(path)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as h5:
        names = group_names([weights_class(layer["class_name"]) for layer in layers])
        for group, layer, owner in zip(names, layers, owners, strict=True):
            arrays = [] if owner is None else [np.asarray(w.numpy()) for w in owner.weights]
            _write_vars(
                h5, group, layer["config"]["name"], layer["class_name"], layer["config"], arrays
            )
        h5.require_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def keras_archive(model: Model, path: Path) -> bytes:
    """The `.keras` archive of a model, as bytes."""
    config, owners = _sequential(model) if isinstance(model, Sequential) else _functional(model)
    layers = config["config"]["layers"]
    if isinstance(model, Sequential):
        layers = layers[1:]
    compile_config = keras_compile(getattr(model, "compile_config", None) or {})
    if compile_config:
        config["compile_config"] = compile_config
    members: dict[str, str | bytes] = {
        "metadata.json": json.dumps({"keras_version": KERAS_VERSION, "date_saved": _DATE}),
        "config.json": json.dumps(config, indent=1),
        "model.weights.h5": _weights_h5(path, layers, owners, model),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def export_keras(model_or_path: Any, output: str | os.PathLike[str]) -> Path:
    """Write a model (or the model of a run folder / `.msz` file) as a `.keras` archive."""
    target = Path(output)
    h5py_module(target)
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        model = load_model(model_or_path)
    atomic_write_bytes(target, keras_archive(model, target))
    return target
