"""Custom Python layers (build/add_weight/call with Tensor ops) train through the tape path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import engine as en
from engine import Input, Model, layers
from engine.layers.base import clear_session
from engine.train.prepare import prepare
from engine.train.trainer import get_trainer


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    clear_session()


class Linear(layers.Layer):
    """The tutorial's custom layer: `tanh(x @ kernel + bias) * scale` (scale is frozen)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape: Any, rng: Any = None) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="ones")
        self.scale = self.add_weight(
            name="scale", shape=(self.units,), initializer="ones", trainable=False
        )
        self.input_shape = input_shape
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], self.units)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return en.tanh(en.matmul(inputs, self.kernel) + self.bias) * self.scale


def _model(dtype: str = "float32", shared: bool = False) -> Model:
    a = Input(shape=(3,), dtype=dtype)
    custom = Linear(4, dtype=dtype)
    h = custom(a)
    if shared:
        b = Input(shape=(3,), dtype=dtype)
        h = layers.Add(dtype=dtype)([h, custom(b)])
        out = layers.Dense(1, dtype=dtype)(h)
        return Model(inputs=[a, b], outputs=out)
    return Model(inputs=a, outputs=layers.Dense(1, dtype=dtype)(h))


def _xy(shared: bool, seed: int = 0) -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 3))
    y = rng.normal(size=(8, 1))
    return ([x, rng.normal(size=(8, 3))] if shared else x), y


@pytest.mark.parametrize("shared", [False, True])
def test_custom_layer_gradients_match_central_differences(shared: bool) -> None:
    model = _model("float64", shared)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _xy(shared)
    trainer = get_trainer(model)
    data = prepare(model, x, y)

    def loss() -> float:
        return trainer.gradients(data.xs, data.ys, data.sw)[0]

    loss()
    grad = trainer.flat.grad.copy()
    flat = trainer.flat.flat
    numeric = np.empty_like(grad)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + 1e-6
        up = loss()
        flat[i] = keep - 1e-6
        down = loss()
        flat[i] = keep
        numeric[i] = (up - down) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_custom_layer_trains_like_the_same_dense_model() -> None:
    custom = _model()
    inputs = Input(shape=(3,))
    h = layers.Dense(4, activation="tanh")(inputs)
    dense = Model(inputs=inputs, outputs=layers.Dense(1)(h))
    values = custom.get_weights()
    # Dense has no frozen scale of ones: drop it from the custom layer's weight list.
    dense.set_weights([values[0], values[1], values[3], values[4]])
    x, y = _xy(False)
    for model in (custom, dense):
        model.compile(optimizer="adam", loss="mse")
        model.seed = 0
    a = custom.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
    b = dense.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    np.testing.assert_allclose(custom.get_weights()[2], np.ones(4))
    np.testing.assert_allclose(custom.predict(x), dense.predict(x), rtol=1e-5, atol=1e-6)
