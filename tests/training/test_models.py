"""Sequential, Model and Input: the tutorial's models, the graph API, summary and get_config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from engine import Input, Model, Sequential, layers
from engine.build import SpecError, build_model, from_spec
from engine.layers.base import clear_session
from engine.models import summary_text


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    clear_session()


def _binary_data(n: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("float32")


def tutorial_sequential() -> Model:
    # TUTORIAL.md, "Sequential Model (Linear Stack of Layers)", with engine in place of keras.
    model = Sequential(
        [
            layers.Dense(16, activation="relu", input_shape=(4,)),  # Input + hidden layer
            layers.Dense(8, activation="relu"),  # Hidden layer
            layers.Dense(1, activation="sigmoid"),  # Output layer
        ]
    )
    return model


def tutorial_sequential_add() -> Model:
    # TUTORIAL.md, "Short Example (from scratch)": Sequential() then add().
    model = Sequential()
    model.add(layers.Dense(16, activation="relu", input_shape=(4,)))
    model.add(layers.Dense(8, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    return model


def tutorial_functional() -> Model:
    # TUTORIAL.md, "Functional Model (Flexible, Graph-Based Model)".
    inputs = Input(shape=(4,))
    x = layers.Dense(16, activation="relu")(inputs)
    x = layers.Dense(8, activation="relu")(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return Model(inputs=inputs, outputs=outputs)


@pytest.mark.parametrize(
    "make", [tutorial_sequential, tutorial_sequential_add, tutorial_functional]
)
def test_tutorial_models_compile_fit_evaluate_predict(make: Any) -> None:
    model = make()
    assert model.count_params() == 225
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x_train, y_train = _binary_data(256)
    x_test, y_test = _binary_data(64, seed=1)
    history = model.fit(x_train, y_train, epochs=10, batch_size=32, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 10
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(x_test, y_test)
    assert 0.0 <= acc <= 1.0 and loss > 0
    predictions = model.predict(x_test)
    assert isinstance(predictions, np.ndarray) and predictions.shape == (64, 1)
    assert ((predictions > 0) & (predictions < 1)).all()


def test_sequential_summary_matches_the_tutorial_counts() -> None:
    text = summary_text(tutorial_sequential())
    lines = text.splitlines()
    assert lines[0] == 'Model: "sequential"'
    body = "\n".join(lines)
    for row in ("dense (Dense)", "dense_1 (Dense)", "dense_2 (Dense)"):
        assert row in body
    assert "(None, 16)" in body and "80" in body and "136" in body
    assert " Total params: 225 (900.00 B)" in lines
    assert " Trainable params: 225 (900.00 B)" in lines
    assert " Non-trainable params: 0 (0.00 B)" in lines
    assert "InputLayer" not in body


def test_functional_summary_lists_the_input_layer_and_connections() -> None:
    a = Input(shape=(3,), name="a")
    b = Input(shape=(2,), name="b")
    both = layers.Concatenate()([layers.Dense(4)(a), b])
    model = Model(inputs=[a, b], outputs=layers.Dense(1)(both))
    text = summary_text(model)
    assert "a (InputLayer)" in text and "Connected to" in text
    assert "dense[0][0], b[0][0]" in text  # the Concatenate's inputs, as Keras names them


def test_summary_prints(capsys: pytest.CaptureFixture[str]) -> None:
    tutorial_functional().summary()
    out = capsys.readouterr().out
    assert "input_layer (InputLayer)" in out and "Total params: 225" in out


def test_unbuilt_sequential_builds_from_data() -> None:
    model = Sequential([layers.Dense(3), layers.Dense(1)])
    assert not model.built
    with pytest.raises(ValueError, match="not built"):
        summary_text(model)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _binary_data(32)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built and model.count_params() == 4 * 3 + 3 + 3 + 1


def test_layer_access_and_weights() -> None:
    model = tutorial_functional()
    assert [layer.name for layer in model.layers] == ["input_layer", "dense", "dense_1", "dense_2"]
    assert model.get_layer("dense_1").count_params() == 136
    assert model.get_layer(index=-1).name == "dense_2"
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    assert [w.name for w in model.weights][:2] == ["dense/kernel", "dense/bias"]
    assert len(model.trainable_weights) == 6
    values = [np.full(w.shape, i, dtype="float32") for i, w in enumerate(model.weights)]
    model.set_weights(values)
    for got, want in zip(model.get_weights(), values, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="has 6 weights"):
        model.set_weights(values[:2])


def test_frozen_layer_keeps_its_weights_and_counts_as_non_trainable() -> None:
    model = tutorial_sequential()
    model.layers[0].trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 2
    before = model.layers[0].get_weights()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.fit(*_binary_data(64), epochs=2, verbose=0)
    for got, want in zip(model.layers[0].get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert "Non-trainable params: 80" in summary_text(model)


def test_input_dtype_and_batch_size() -> None:
    tokens = Input(shape=(5,), dtype="int32", name="tokens")
    assert tokens.shape == (None, 5) and tokens.dtype == "int32"
    fixed = Input(shape=(2,), batch_size=8)
    assert fixed.shape == (8, 2)
    assert fixed.layer is not None and fixed.layer.get_config()["batch_size"] == 8


@pytest.mark.parametrize("make", [tutorial_sequential, tutorial_functional])
def test_get_config_rebuilds_the_same_model(make: Any) -> None:
    model = make()
    config = model.get_config()
    rebuilt = build_model(config)
    assert type(rebuilt) is type(model)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    assert rebuilt.count_params() == model.count_params()
    rebuilt.set_weights(model.get_weights())
    x, _ = _binary_data(8)
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))


def test_shared_layer_config_round_trip() -> None:
    a = Input(shape=(3,), name="a")
    b = Input(shape=(3,), name="b")
    encode = layers.Dense(2, name="encode")
    out = layers.Add()([encode(a), encode(b)])
    model = Model(inputs=[a, b], outputs=out)
    config = model.get_config()
    assert config["layers"][1] == {"name": "encode_call_1", "shares": "encode", "inputs": "b"}
    rebuilt = build_model(config)
    assert rebuilt.count_params() == 8 and len(rebuilt.weights) == 2


SEQ_SPEC = {
    "seed": 7,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [4]},
            {"type": "Dense", "units": 16, "activation": "relu"},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    },
    "compile": {
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
}

FUNC_SPEC = {
    "seed": 3,
    "dtype": "float64",
    "model": {
        "type": "functional",
        "inputs": [{"name": "x", "shape": [4]}],
        "layers": [
            {"name": "h", "type": "Dense", "units": 8, "activation": "tanh", "inputs": "x"},
            {"name": "digit", "type": "Dense", "units": 3, "activation": "softmax"},
            {"name": "big", "type": "Dense", "units": 1, "activation": "sigmoid", "inputs": "h"},
        ],
        "outputs": ["digit", "big"],
    },
    "compile": {
        "optimizer": "sgd",
        "loss": {"digit": "sparse_categorical_crossentropy", "big": "binary_crossentropy"},
        "loss_weights": {"digit": 1.0, "big": 0.5},
        "metrics": {"digit": ["accuracy"], "big": "accuracy"},
    },
}


def test_from_spec_dict_is_seeded_and_compiled() -> None:
    first = from_spec(SEQ_SPEC)
    second = from_spec(SEQ_SPEC)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.compile_config is not None and first.compile_config["loss"] == (
        "sparse_categorical_crossentropy"
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = rng.integers(0, 3, 60)
    history = first.fit(x, y, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}


def test_from_spec_yaml_path_float64_multi_output(tmp_path: Any) -> None:
    import yaml

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(FUNC_SPEC))
    model = from_spec(path)
    assert model.output_names == ["digit", "big"]
    assert all(w.numpy().dtype == np.float64 for w in model.weights)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    y = {"digit": rng.integers(0, 3, 40), "big": rng.integers(0, 2, (40, 1)).astype(float)}
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert list(history.history) == [
        "loss",
        "digit_loss",
        "big_loss",
        "digit_accuracy",
        "big_accuracy",
    ]
    logs = model.evaluate(x, y, return_dict=True)
    # Keras 3 logs each output's loss unweighted; the total carries loss_weights.
    assert logs["loss"] == pytest.approx(logs["digit_loss"] + 0.5 * logs["big_loss"])
    preds = model.predict(x)
    assert isinstance(preds, list) and preds[0].shape == (40, 3) and preds[1].dtype == np.float64


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": {"layers": [{"type": "Dense", "units": 2}]}}, "no input shape"),
        ({"model": {"layers": [{"type": "Input", "shape": [2]}, {"type": "Dense"}]}}, "units"),
        (
            {"model": {"layers": [{"type": "Input", "shape": [2]}, {"type": "Dnse", "units": 1}]}},
            "unknown layer type 'Dnse'",
        ),
        ({"seed": -1, "model": {}}, "seed"),
        ({"dtype": "float16", "model": {}}, "dtype"),
        ({"name": "x"}, "no `model` section"),
    ],
)
def test_from_spec_errors_are_readable(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        from_spec(spec)


def test_from_spec_missing_file(tmp_path: Any) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        from_spec(tmp_path / "missing.yaml")


def test_model_call_returns_tensors() -> None:
    model = tutorial_functional()
    x, _ = _binary_data(5)
    out = model(x)
    np.testing.assert_allclose(out.numpy(), model.predict(x))


def test_from_spec_names_the_model_after_the_spec(tmp_path: Path) -> None:
    from engine import saving
    from engine.loading import load_model

    spec_file = tmp_path / "tiny_net.yaml"
    spec_file.write_text(
        "model:\n  type: sequential\n  layers:\n"
        "    - {type: Input, shape: [3]}\n    - {type: Dense, units: 2}\n"
    )
    assert from_spec(spec_file).name == "tiny_net"  # the file's stem by default
    named = from_spec({"name": "given", "model": yaml.safe_load(spec_file.read_text())["model"]})
    assert named.name == "given"
    saving.save_model(named, tmp_path / "run")
    assert load_model(tmp_path / "run").name == "given"


def test_summary_names_each_call_of_a_shared_layer() -> None:
    left, right = Input(shape=(3,), name="left"), Input(shape=(3,), name="right")
    shared = layers.Dense(2, name="shared")
    diff = layers.Subtract(name="diff")([shared(left), shared(right)])
    text = summary_text(Model(inputs=[left, right], outputs=diff))
    assert "left[0][0], right[0][0]" in text  # one row for the shared layer, both calls
    assert "shared[0][0], shared[1][0]" in text  # its first and second call feed Subtract
