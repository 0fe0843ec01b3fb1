"""Print what Keras 3 reports for the custom layers of tests/training/test_custom_layer.py and
for a two-output model's logs, the reference numbers those tests hold.

Run in a separate environment with Keras (`pip install keras jax`), never by the tests:
    KERAS_BACKEND=jax python scripts/keras_custom_layers.py
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops


class Plain(layers.Layer):
    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = units

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")

    def call(self, inputs: Any) -> Any:
        return ops.matmul(inputs, self.w)


class Flagged(layers.Layer):
    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        return inputs * self.scale


class Shaped(layers.Layer):
    def call(self, inputs: Any, **kwargs: Any) -> Any:
        return ops.sum(inputs, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[:-1]


class SumSteps(layers.Layer):
    def call(self, inputs: Any) -> Any:
        return ops.sum(inputs, axis=1)


def rows(model: keras.Model) -> list[tuple[str, Any, int]]:
    return [(layer.name, layer.output.shape, layer.count_params()) for layer in model.layers]


def custom_layers() -> None:
    seq = keras.Sequential([keras.Input((8,)), Plain(3), layers.Dense(1)])
    print("sequential", rows(seq))
    x = keras.Input((None, 4))
    h = Flagged()(x)
    out = layers.Dense(2)(SumSteps()(h))
    func = keras.Model(x, [out, Shaped()(h)])
    print("functional outputs", [t.shape for t in func.outputs])
    print("functional", rows(func)[1:])


def two_output_logs() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3)).astype("float32")
    ya = 5 * rng.normal(size=(24, 1)).astype("float32")
    yb = rng.normal(size=(24, 2)).astype("float32")
    inputs = keras.Input((3,))
    hidden = layers.Dense(4, activation="tanh")(inputs)
    outputs = [layers.Dense(1, name="a")(hidden), layers.Dense(2, name="b")(hidden)]
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=["mse", "mse"], loss_weights=[1.0, 0.1])
    logs = model.evaluate(x, [ya, yb], return_dict=True, verbose=0)
    pa, pb = model.predict(x, verbose=0)
    a, b = float(np.mean((ya - pa) ** 2)), float(np.mean((yb - pb) ** 2))
    print("keras logs", logs)
    print("by hand   ", {"loss": a + 0.1 * b, "a_loss": a, "b_loss": b})


if __name__ == "__main__":
    custom_layers()
    two_output_logs()
