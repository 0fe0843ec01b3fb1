"""Exporting to Keras: the archive is laid out as Keras lays it out and re-imports exactly.

Keras itself is not needed here: scripts/make_keras_fixtures.py loads every export with
`keras.saving.load_model` (safe mode) and records the result in roundtrip.json.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.build import from_spec
from engine.keras_io import archive
from engine.keras_io.errors import KerasUnsupportedError
from engine.keras_io.exporter import export_keras, keras_archive
from engine.keras_io.importer import import_keras
from engine.keras_io.layer_order import functional_order
from tests.keras_io.helpers import FIXTURES, MODELS, TOLERANCE, max_difference

pytest.importorskip("h5py")


def _export(name: str, tmp_path: Path) -> Path:
    return export_keras(import_keras(FIXTURES / f"{name}.keras").model, tmp_path / "out.keras")


@pytest.mark.parametrize("name", MODELS)
def test_export_then_import_predicts_as_keras(name: str, tmp_path: Path) -> None:
    again = import_keras(_export(name, tmp_path))
    assert max_difference(again.model, name) <= TOLERANCE


@pytest.mark.parametrize("name", MODELS)
def test_weights_sit_where_keras_put_them(name: str, tmp_path: Path) -> None:
    """Keras's own archive is the oracle: same dataset paths, same arrays."""
    original = archive.read(FIXTURES / f"{name}.keras").arrays
    exported = archive.read(_export(name, tmp_path)).arrays
    layers = sorted(p for p in original if p.startswith("layers/"))
    assert sorted(p for p in exported if p.startswith("layers/")) == layers
    for path in layers:
        np.testing.assert_array_equal(exported[path], original[path].astype(exported[path].dtype))


def _keras_config(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as handle:
        assert sorted(handle.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        return dict(json.loads(handle.read("config.json")))


def _registered(tree: Any) -> set[str]:
    """Every registered_name in a serialized config (custom objects would be `package>Name`)."""
    if isinstance(tree, dict):
        own = {tree["registered_name"]} if tree.get("registered_name") else set()
        return own.union(*(_registered(v) for v in tree.values()))
    if isinstance(tree, list):
        return set().union(*(_registered(v) for v in tree))
    return set()


@pytest.mark.parametrize("name", MODELS)
def test_config_uses_built_in_classes_only(name: str, tmp_path: Path) -> None:
    """What safe_mode loads: Keras's own layers, no registered or lambda objects."""
    config = _keras_config(_export(name, tmp_path))
    original = _keras_config(FIXTURES / f"{name}.keras")
    assert config["class_name"] == original["class_name"]
    assert "__lambda__" not in json.dumps(config)
    assert _registered(config) <= {"Functional"}
    for layer in config["config"]["layers"]:
        assert layer["module"] == "keras.layers" and layer["registered_name"] is None


@pytest.mark.parametrize("name", ["multi_io", "shared", "merging", "attention", "variants"])
def test_functional_layers_in_keras_order(name: str, tmp_path: Path) -> None:
    """Keras numbers weight groups in its own layer order; the export lists layers so."""
    original = _keras_config(FIXTURES / f"{name}.keras")
    keras_layers = [
        layer["name"] for layer in original["config"]["layers"] if layer["module"] == "keras.layers"
    ]
    model = import_keras(FIXTURES / f"{name}.keras").model
    graph = model.graph
    order = functional_order(graph)
    names = [model.inputs[-1 - n].name if n < 0 else graph.calls[n].layer.name for n in order]
    assert names == keras_layers
    exported = _keras_config(_export(name, tmp_path))
    assert [layer["name"] for layer in exported["config"]["layers"]] == keras_layers
    for key in ("input_layers", "output_layers"):
        assert exported["config"][key] == original["config"][key]


def test_shared_layer_has_one_config_and_two_calls(tmp_path: Path) -> None:
    layers = _keras_config(_export("shared", tmp_path))["config"]["layers"]
    encode = next(layer for layer in layers if layer["name"] == "encode")
    assert len(encode["inbound_nodes"]) == 2
    histories = [n["args"][0]["config"]["keras_history"] for n in encode["inbound_nodes"]]
    assert histories == [["embed", 0, 0], ["embed", 1, 0]]


def test_compile_settings_go_back(tmp_path: Path) -> None:
    compiled = _keras_config(_export("multi_io", tmp_path))["compile_config"]
    assert compiled["optimizer"]["class_name"] == "Adam"
    assert compiled["loss"] == {
        "digit": "sparse_categorical_crossentropy",
        "big": "binary_crossentropy",
    }
    assert compiled["loss_weights"] == {"digit": 1.0, "big": 0.5}


def test_same_model_same_bytes(tmp_path: Path) -> None:
    model = import_keras(FIXTURES / "sequences.keras").model
    assert keras_archive(model, tmp_path) == keras_archive(model, tmp_path)


@pytest.mark.parametrize(
    ("layer", "words"),
    [
        ({"type": "Lambda", "expression": "x * 2.0"}, "'twice' (Lambda)"),
        (
            {
                "type": "Dense",
                "units": 2,
                "activation": {"type": "leaky_relu", "negative_slope": 0.1},
            },
            "'twice' (Dense): activation leaky_relu",
        ),
    ],
)
def test_layers_keras_cannot_load_safely_are_refused(
    layer: dict[str, Any], words: str, tmp_path: Path
) -> None:
    spec = {
        "model": {
            "type": "sequential",
            "layers": [{"type": "Input", "shape": [3]}, {**layer, "name": "twice"}],
        }
    }
    with pytest.raises(KerasUnsupportedError) as info:
        export_keras(from_spec(spec), tmp_path / "out.keras")
    assert words in str(info.value)
    assert not (tmp_path / "out.keras").exists()


def test_keras_loaded_every_export() -> None:
    """The record scripts/make_keras_fixtures.py leaves after loading exports with Keras."""
    record = json.loads((FIXTURES / "roundtrip.json").read_text())
    assert set(record["models"]) == set(MODELS)
    checks = [*record["models"].values(), *record["trained_examples"].values()]
    assert len(record["trained_examples"]) >= 5
    assert all(m["ok"] and m["max_abs_diff"] <= TOLERANCE for m in checks)


def test_the_transformer_example_is_refused_at_its_position_embedding(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "messages_transformer.yaml"
    with pytest.raises(KerasUnsupportedError) as info:
        export_keras(from_spec(spec), tmp_path / "out.keras")
    assert "'positions' (PositionEmbedding)" in str(info.value)
    assert "KerasHub" in str(info.value)
