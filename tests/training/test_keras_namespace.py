"""`engine.keras` is Keras's namespace: the names Keras code reaches for, and the Keras objects
(regularizers, constraints, initializers) going into layer configs, training and saved models."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import engine as tf
from engine.layers.base import clear_session

NAMES = [
    "keras.layers.Dense",
    "keras.layers.Layer",
    "keras.layers.Input",
    "keras.Sequential",
    "keras.Model",
    "keras.Input",
    "keras.models.Model",
    "keras.models.Sequential",
    "keras.models.load_model",
    "keras.optimizers.Adam",
    "keras.optimizers.SGD",
    "keras.losses.MeanSquaredError",
    "keras.metrics.Precision",
    "keras.callbacks.EarlyStopping",
    "keras.initializers.HeNormal",
    "keras.regularizers.l2",
    "keras.regularizers.L2",
    "keras.constraints.max_norm",
    "keras.constraints.MaxNorm",
    "keras.utils.to_categorical",
    "keras.utils.set_random_seed",
]


@pytest.mark.parametrize("dotted", NAMES)
def test_keras_names_resolve_as_attributes_and_imports(dotted: str) -> None:
    value = tf
    for part in dotted.split("."):
        value = getattr(value, part)
    module, _, name = f"engine.{dotted}".rpartition(".")
    assert getattr(importlib.import_module(module), name) is value


def test_keras_objects_fit_layer_configs_train_and_round_trip(tmp_path: Path) -> None:
    clear_session()
    keras = tf.keras
    dense = keras.layers.Dense(
        3,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1),
        bias_initializer=keras.initializers.Constant(0.25),
        kernel_regularizer=keras.regularizers.L2(0.1),
        kernel_constraint=keras.constraints.max_norm(0.3),
    )
    model = keras.Sequential([keras.Input((4,)), dense])
    np.testing.assert_array_equal(dense.weights[1].numpy(), np.full(3, 0.25, np.float32))
    kernel = dense.weights[0].numpy()
    assert float(dense.losses[0].numpy()) == pytest.approx(0.1 * float((kernel**2).sum()))
    assert float(keras.regularizers.l2(0.1)(kernel).numpy()) == pytest.approx(
        0.1 * float((kernel**2).sum()), rel=1e-6
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model.fit(x, 5 * x[:, :3], epochs=2, verbose=0)
    assert np.all(np.linalg.norm(dense.weights[0].numpy(), axis=0) <= 0.3 + 1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    stored = {k: v for k, v in loaded.layers[0].get_config().items() if k != "dtype"}
    assert stored == dense.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_keras_constraint_and_utils() -> None:
    w = np.array([[3.0, 0.1], [4.0, 0.1]], np.float32)
    np.testing.assert_allclose(
        tf.keras.constraints.MaxNorm(1.0)(w).numpy(), [[0.6, 0.1], [0.8, 0.1]], rtol=1e-6
    )
    np.testing.assert_array_equal(
        tf.keras.utils.to_categorical([[2], [0]], num_classes=3), [[0, 0, 1], [1, 0, 0]]
    )
    with pytest.raises(ValueError, match="class ids"):
        tf.keras.utils.to_categorical([3], num_classes=3)
