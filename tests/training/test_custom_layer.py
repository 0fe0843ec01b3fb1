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


def _assert_gradients_match_central_differences(model: Model, x: Any, y: Any) -> None:
    model.compile(optimizer="sgd", loss="mse")
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


@pytest.mark.parametrize("shared", [False, True])
def test_custom_layer_gradients_match_central_differences(shared: bool) -> None:
    _assert_gradients_match_central_differences(_model("float64", shared), *_xy(shared))


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


# ----- custom layers written as Keras users write them ----------------------------------------
class Plain(layers.Layer):
    """`call(inputs)` only, no compute_output_shape: the shape comes from tracing `call`."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = units

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")

    def call(self, inputs: Any) -> Any:
        return en.matmul(inputs, self.w)


class Flagged(layers.Layer):
    """`call(inputs, training=None, mask=None)`: records what Keras would hand it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[Any, bool]] = []

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        self.seen.append((training, mask is not None))
        return inputs * self.scale


class Shaped(layers.Layer):
    """With compute_output_shape (its rule is used; `call` is not traced) and **kwargs."""

    calls = 0

    def call(self, inputs: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return en.reduce_sum(inputs, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[:-1]


class SumSteps(layers.Layer):
    """A rank-changing `call` over an unknown number of steps, no compute_output_shape."""

    def call(self, inputs: Any) -> Any:
        return en.reduce_sum(inputs, axis=1)


def _rows(model: Model) -> list[tuple[str, tuple[int | None, ...], int]]:
    return [(layer.name, layer.output_shape, layer.count_params()) for layer in model.layers]


def test_shapes_and_counts_in_sequential_and_functional_match_keras() -> None:
    # Keras 3.15.1's rows for the same code (scripts/keras_custom_layers.py).
    seq = en.keras.Sequential([en.keras.Input((8,)), Plain(3), layers.Dense(1)])
    assert _rows(seq) == [("plain", (None, 3), 24), ("dense", (None, 1), 4)]
    x = en.keras.Input((None, 4))
    h = Flagged()(x)
    out = layers.Dense(2)(SumSteps()(h))
    shaped = Shaped()
    func = Model(x, [out, shaped(h)])
    assert shaped.calls == 0
    assert [t.shape for t in func.outputs] == [(None, 2), (None, None)]
    assert _rows(func)[1:] == [
        ("flagged", (None, None, 4), 4),
        ("sum_steps", (None, 4), 0),
        ("dense_1", (None, 2), 10),
        ("shaped", (None, None), 0),
    ]


def test_training_and_mask_reach_only_a_call_that_takes_them() -> None:
    inputs = en.keras.Input((3, 2))
    flagged = Flagged()
    masked = flagged(layers.Masking(mask_value=0.0)(inputs))
    model = Model(inputs, layers.Dense(1)(Plain(2)(layers.Flatten()(masked))))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3, 2), np.float32)
    flagged.seen.clear()
    model.fit(x, np.ones((4, 1)), epochs=1, batch_size=4, verbose=0)
    assert flagged.seen == [(True, True)]
    flagged.seen.clear()
    model.predict(x)
    assert flagged.seen == [(False, True)]


def test_plain_call_trains_through_autodiff_like_central_differences() -> None:
    plain = Plain(2)
    plain.dtype = "float64"
    model = en.keras.Sequential(
        [
            en.keras.Input((3,), dtype="float64"),
            plain,
            Flagged(dtype="float64"),
            layers.Dense(1, dtype="float64"),
        ]
    )
    _assert_gradients_match_central_differences(model, *_xy(False))


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".msz"])
def test_custom_layers_save_to_the_path_given_and_load_with_custom_objects(
    tmp_path: Any, suffix: str
) -> None:
    model = en.keras.Sequential(
        [en.keras.Input((3,)), Plain(4), Flagged(name="gate"), layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    x, y = _xy(False)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / f"model{suffix}"
    model.save(path)
    assert path.is_file()
    with pytest.raises(ValueError, match="unknown layer type 'Plain'.*custom_objects"):
        en.load_model(path)
    loaded = en.keras.models.load_model(path, custom_objects={"Plain": Plain, "Flagged": Flagged})
    assert [type(layer) for layer in loaded.layers] == [Plain, Flagged, layers.Dense]
    assert loaded.layers[0].units == 4 and _rows(loaded) == _rows(model)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.fit(x, y, epochs=1, verbose=0)  # the optimizer state came back too


def test_the_cli_says_a_custom_layer_needs_its_class(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from modelspec.cli import app

    model = en.keras.Sequential([en.keras.Input((3,)), Plain(2)])
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.ones((2, 3), np.float32))
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "m.keras"), "--input", str(tmp_path / "x.npy")]
    )
    assert result.exit_code == 2
    assert "custom Python layers (Plain)" in result.output and "custom_objects" in result.output
