"""Keras 2 / tf.keras whole-model HDF5 files, written here in Keras 2's own layout.

Keras 3 writes its legacy `.h5` with Keras 3 configs (the committed fixtures); Keras 2 wrote
call lists (`[[name, call, output, kwargs]]`), `batch_input_shape` and weights named
`layer/kernel:0`. The expected predictions are computed by hand with NumPy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.keras_io.importer import import_keras

h5py = pytest.importorskip("h5py")
RNG = np.random.default_rng(7)
W = {
    "hidden/kernel:0": RNG.normal(size=(3, 4)).astype("float32"),
    "hidden/bias:0": RNG.normal(size=(4,)).astype("float32"),
    "out/kernel:0": RNG.normal(size=(4, 2)).astype("float32"),
    "out/bias:0": RNG.normal(size=(2,)).astype("float32"),
}


def _dense(name: str, units: int, activation: str, **extra: Any) -> dict[str, Any]:
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
            **extra,
        },
    }


def _write(path: Path, config: dict[str, Any], layers: list[str]) -> Path:
    training = {
        "loss": "mse",
        "metrics": ["mae"],
        "optimizer_config": {
            "class_name": "Adam",
            "config": {
                "name": "Adam",
                "learning_rate": 0.01,
                "decay": 0.0,
                "beta_1": 0.9,
                "beta_2": 0.999,
                "epsilon": 1e-07,
                "amsgrad": False,
            },
        },
    }
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = "2.15.0"
        handle.attrs["backend"] = "tensorflow"
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["training_config"] = json.dumps(training)
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = [n.encode() for n in layers]
        for layer in layers:
            group = weights.create_group(layer)
            names = [k for k in W if k.startswith(f"{layer}/")]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name in names:
                group.create_dataset(f"{layer}/{name.split('/')[1]}", data=W[name])
    return path


def _hidden(x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ W["hidden/kernel:0"] + W["hidden/bias:0"], 0)


def test_keras2_sequential_with_batch_input_shape(tmp_path: Path) -> None:
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                _dense("hidden", 4, "relu", batch_input_shape=[None, 3]),
                _dense("out", 2, "linear"),
            ],
        },
    }
    imported = import_keras(_write(tmp_path / "seq.h5", config, ["hidden", "out"]))
    x = RNG.normal(size=(5, 3)).astype("float32")
    want = _hidden(x) @ W["out/kernel:0"] + W["out/bias:0"]
    np.testing.assert_allclose(imported.model.predict(x), want, atol=1e-5)
    assert imported.spec["compile"] == {
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "loss": "mse",
        "metrics": ["mae"],
    }


def test_keras2_functional_with_a_shared_layer(tmp_path: Path) -> None:
    """`hidden` runs on two inputs; Keras 2 lists its two calls and `add` reads both."""
    layers = [
        {
            "class_name": "InputLayer",
            "name": "a",
            "inbound_nodes": [],
            "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "a"},
        },
        {
            "class_name": "InputLayer",
            "name": "b",
            "inbound_nodes": [],
            "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "b"},
        },
        {
            **_dense("hidden", 4, "relu"),
            "name": "hidden",
            "inbound_nodes": [[["a", 0, 0, {}]], [["b", 0, 0, {}]]],
        },
        {
            "class_name": "Add",
            "config": {"name": "add", "trainable": True, "dtype": "float32"},
            "name": "add",
            "inbound_nodes": [[["hidden", 0, 0, {}], ["hidden", 1, 0, {}]]],
        },
        {**_dense("out", 2, "sigmoid"), "name": "out", "inbound_nodes": [[["add", 0, 0, {}]]]},
    ]
    config = {
        "class_name": "Functional",
        "config": {
            "name": "siamese",
            "layers": layers,
            "input_layers": [["a", 0, 0], ["b", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
    }
    imported = import_keras(_write(tmp_path / "f.h5", config, ["a", "b", "hidden", "add", "out"]))
    a, b = (RNG.normal(size=(4, 3)).astype("float32") for _ in range(2))
    z = (_hidden(a) + _hidden(b)) @ W["out/kernel:0"] + W["out/bias:0"]
    np.testing.assert_allclose(imported.model.predict([a, b]), 1 / (1 + np.exp(-z)), atol=1e-5)
    assert imported.model.count_params() == sum(w.size for w in W.values())


def test_keras2_leaky_relu_alpha_is_keras3s_negative_slope(tmp_path: Path) -> None:
    """Keras 2 called LeakyReLU's slope `alpha`; Keras 3 reads it as `negative_slope`."""
    leaky = {"class_name": "LeakyReLU", "config": {"name": "leaky", "dtype": "float32"}}
    leaky["config"]["alpha"] = 0.1
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [_dense("hidden", 4, "linear", batch_input_shape=[None, 3]), leaky],
        },
    }
    imported = import_keras(_write(tmp_path / "leaky.h5", config, ["hidden"]))
    assert imported.spec["model"]["layers"][-1]["negative_slope"] == 0.1
    x = RNG.normal(size=(5, 3)).astype("float32")
    h = x @ W["hidden/kernel:0"] + W["hidden/bias:0"]
    np.testing.assert_allclose(imported.model.predict(x), np.where(h >= 0, h, 0.1 * h), atol=1e-6)
