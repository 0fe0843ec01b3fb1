"""Read a Keras model file as plain data: its config, compile settings and weight arrays.

Two layouts: the Keras 3 `.keras` ZIP (`config.json`, `metadata.json`, `model.weights.h5`)
and the legacy whole-model HDF5 file of Keras 2 / tf.keras (`model_config` and
`training_config` attributes, weights under `model_weights/<layer>`). Only JSON and HDF5
datasets are read; nothing in the file is imported, unpickled or run.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.keras_io.errors import KerasArchiveError, h5py_module
from engine.keras_io.layer_order import group_names
from engine.keras_io.layer_table import row_for, weights_class

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_VARS_RE = re.compile(r"^(.*)/vars/(\d+)$")


@dataclass
class KerasFile:
    """A Keras model file's contents; `arrays` maps an HDF5 dataset path to its array."""

    path: Path
    config: dict[str, Any]
    compile_config: dict[str, Any] | None
    keras_version: str | None
    legacy: bool
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    group_names: dict[str, str] = field(default_factory=dict)  # layer name -> h5 group

    def layer_arrays(self, layer: Mapping[str, Any]) -> list[np.ndarray]:
        """The weights of one layer of the model's config, in Keras's order."""
        name = str(layer.get("config", {}).get("name") or layer.get("name"))
        if self.legacy:
            return self._legacy_arrays(name)
        group = self.group_names.get(name)
        return [] if group is None else self._group_arrays(group, layer)

    def _group_arrays(self, group: str, layer: Mapping[str, Any]) -> list[np.ndarray]:
        own = sorted(
            (int(m.group(2)), a)
            for p, a in self.arrays.items()
            if (m := _VARS_RE.match(p)) and m.group(1) == group
        )
        arrays = [a for _, a in own]
        row = row_for(str(layer.get("class_name")))
        for child, key in row.children if row else ():
            inner = (layer.get("config") or {}).get(key) if key else {}
            if key and not inner:  # a Bidirectional saved without its own backward config
                inner = (layer.get("config") or {}).get("layer")
            arrays += self._group_arrays(f"{group}/{child}", inner or {})
        return arrays

    def _legacy_arrays(self, name: str) -> list[np.ndarray]:
        order = self.arrays.get(f"model_weights/{name}/__names__")
        names = [] if order is None else [str(n) for n in order]
        try:
            return [self.arrays[f"model_weights/{name}/{n}"] for n in names]
        except KeyError as exc:
            raise KerasArchiveError(
                self.path, f"layer {name!r} lists a missing weight {exc}"
            ) from None


def _json(path: Path, label: str, data: bytes | str) -> Any:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KerasArchiveError(path, f"{label} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise KerasArchiveError(path, f"{label} is not a JSON object")
    return value


def _read_h5(path: Path, data: bytes | Path) -> tuple[dict[str, np.ndarray], dict[str, str], Any]:
    """Every dataset as an array, the `vars` groups' layer names, and the root attributes."""
    h5py: Any = h5py_module(path)
    arrays: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = np.asarray(obj[()])
        elif "weight_names" in obj.attrs:
            arrays[f"{name}/__names__"] = np.array(
                [n.decode() if isinstance(n, bytes) else str(n) for n in obj.attrs["weight_names"]]
            )
            arrays.update(
                {f"{name}/{n}": np.asarray(obj[n][()]) for n in arrays[f"{name}/__names__"]}
            )
        elif name.endswith("/vars") and name.count("/") == 2 and "name" in obj.attrs:
            names[str(obj.attrs["name"])] = name[: -len("/vars")]

    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with h5py.File(source, "r") as handle:
            handle.visititems(visit)
            attrs = {k: handle.attrs[k] for k in handle.attrs}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise KerasArchiveError(path, f"the HDF5 weights cannot be read ({exc})") from None
    return arrays, names, attrs


def _read_keras_zip(path: Path) -> KerasFile:
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            missing = {"config.json", "model.weights.h5"} - members
            if missing:
                raise KerasArchiveError(
                    path, f"not a Keras archive: no {', '.join(sorted(missing))}"
                )
            config = _json(path, "config.json", archive.read("config.json"))
            meta = (
                _json(path, "metadata.json", archive.read("metadata.json"))
                if "metadata.json" in members
                else {}
            )
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise KerasArchiveError(path, f"damaged Keras archive ({exc})") from None
    arrays, names, _ = _read_h5(path, weights)
    return KerasFile(
        path=path,
        config=config,
        compile_config=config.get("compile_config"),
        keras_version=meta.get("keras_version"),
        legacy=False,
        arrays=arrays,
        group_names=names,
    )


def _attr_json(path: Path, attrs: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = attrs.get(key)
    if value is None:
        return None
    return _json(
        path, f"the {key} attribute", value.decode() if isinstance(value, bytes) else value
    )


def _read_legacy_h5(path: Path) -> KerasFile:
    arrays, _, attrs = _read_h5(path, path)
    config = _attr_json(path, attrs, "model_config")
    if config is None:
        raise KerasArchiveError(
            path, "this HDF5 file holds weights only, no model config: save the whole model"
        )
    training = _attr_json(path, attrs, "training_config")
    if training is not None and "optimizer_config" in training:
        training["optimizer"] = training.pop("optimizer_config")
    version = attrs.get("keras_version")
    return KerasFile(
        path=path,
        config=config,
        compile_config=training,
        keras_version=version.decode() if isinstance(version, bytes) else version,
        legacy=True,
        arrays=arrays,
    )


def read(path: str | Path) -> KerasFile:
    """Read a `.keras` archive or a legacy `.h5` model; KerasArchiveError if it is neither."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            magic = handle.read(8)
    except FileNotFoundError:
        raise KerasArchiveError(file, "no such file") from None
    except OSError as exc:
        raise KerasArchiveError(file, f"cannot read the file ({exc.strerror})") from None
    if magic.startswith(_ZIP_MAGIC):
        return _read_keras_zip(file)
    if magic == _HDF5_MAGIC:
        return _read_legacy_h5(file)
    what = "an empty file" if not magic else "neither a .keras archive nor an HDF5 model"
    raise KerasArchiveError(file, f"not a Keras model file: {what}")


def fill_group_names(keras_file: KerasFile) -> None:
    """Name layer groups as Keras 3 does where the file does not record the layer names
    (the config must be well formed: the caller turns a malformed one into an error)."""
    layers = [
        layer
        for layer in (keras_file.config.get("config") or {}).get("layers") or []
        if isinstance(layer, Mapping) and row_for(str(layer.get("class_name"))) is not None
    ]
    groups = group_names([weights_class(str(layer.get("class_name"))) for layer in layers])
    for layer, group in zip(layers, groups, strict=True):
        name = str((layer.get("config") or {}).get("name"))
        keras_file.group_names.setdefault(name, group)
