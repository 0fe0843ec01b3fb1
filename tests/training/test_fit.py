"""The planned training step and fit/evaluate/predict: gradients, data handling, stops, output."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from engine import Input, Model, layers
from engine.build import build_model
from engine.callbacks import Callback, TerminateOnNaN
from engine.config.fit import FitConfig
from engine.layers.base import Array, CallContext, Layer, clear_session
from engine.train.errors import TrainingError
from engine.train.loops import fit_arguments
from engine.train.prepare import prepare
from engine.train.trainer import get_trainer


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    clear_session()


def _dense(name: str, units: int, inputs: Any = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": "Dense", "units": units, **extra}
    if inputs is not None:
        entry["inputs"] = inputs
    return entry


@dataclass
class GradCase:
    id: str
    model: dict[str, Any]
    loss: Any
    x: dict[str, tuple[int, ...]]
    y: dict[str, tuple[int, ...]]
    compile_extra: dict[str, Any] = field(default_factory=dict)


def _functional(inputs: dict[str, int], entries: list[dict[str, Any]], outputs: list[str]) -> Any:
    return {
        "type": "functional",
        "inputs": [{"name": k, "shape": [v]} for k, v in inputs.items()],
        "layers": entries,
        "outputs": outputs,
    }


GRAD_CASES = [
    GradCase(
        "mlp",
        _functional(
            {"x": 3},
            [_dense("h", 5, "x", activation="tanh"), _dense("out", 2, activation="sigmoid")],
            ["out"],
        ),
        "mse",
        {"x": (6, 3)},
        {"out": (6, 2)},
    ),
    GradCase(
        "shared_layer",
        _functional(
            {"a": 3, "b": 3},
            [
                _dense("enc", 4, "a", activation="tanh"),
                {"name": "enc_b", "shares": "enc", "inputs": "b"},
                {"name": "sum", "type": "Add", "inputs": ["enc", "enc_b"]},
                _dense("out", 1),
            ],
            ["out"],
        ),
        "mse",
        {"a": (5, 3), "b": (5, 3)},
        {"out": (5, 1)},
    ),
    GradCase(
        "fan_out_and_concat",
        _functional(
            {"x": 3},
            [
                _dense("h", 4, "x", activation="tanh"),
                _dense("p", 2, "h", activation="sigmoid"),
                _dense("q", 3, "h"),
                {"name": "cat", "type": "Concatenate", "inputs": ["p", "q", "h"]},
                _dense("out", 1),
            ],
            ["out"],
        ),
        "mae",
        {"x": (4, 3)},
        {"out": (4, 1)},
    ),
    GradCase(
        "regularizers",
        _functional(
            {"x": 3},
            [
                _dense(
                    "h",
                    4,
                    "x",
                    activation="tanh",
                    kernel_regularizer={"type": "l2", "l2": 0.1},
                    bias_regularizer="l1",
                    activity_regularizer={"type": "l2", "l2": 0.05},
                ),
                _dense("out", 1, kernel_regularizer={"type": "l1_l2", "l1": 0.01, "l2": 0.02}),
            ],
            ["out"],
        ),
        "mse",
        {"x": (5, 3)},
        {"out": (5, 1)},
    ),
    GradCase(
        "two_outputs_weighted",
        _functional(
            {"x": 3},
            [
                _dense("h", 4, "x", activation="tanh"),
                _dense("cls", 3, activation="softmax"),
                _dense("reg", 1, "h"),
            ],
            ["cls", "reg"],
        ),
        {"cls": "categorical_crossentropy", "reg": "mse"},
        {"x": (6, 3)},
        {"cls": (6, 3), "reg": (6, 1)},
        {"loss_weights": {"cls": 0.7, "reg": 2.0}},
    ),
    GradCase(
        "frozen_middle",
        _functional(
            {"x": 3},
            [
                _dense("a", 4, "x", activation="tanh"),
                _dense("frozen", 4, activation="tanh", trainable=False),
                _dense("out", 1),
            ],
            ["out"],
        ),
        "mse",
        {"x": (5, 3)},
        {"out": (5, 1)},
    ),
]


def _data(case: GradCase, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = {k: rng.normal(size=s) for k, s in case.x.items()}
    y = {k: rng.uniform(0.1, 0.9, size=s) for k, s in case.y.items()}
    if "cls" in y:
        y["cls"] = np.eye(3)[rng.integers(0, 3, case.y["cls"][0])]
    return x, y


def _loss_and_grad(model: Model, x: Any, y: Any) -> tuple[float, np.ndarray]:
    trainer = get_trainer(model)
    data = prepare(model, x, y)
    total, _, _ = trainer.gradients(data.xs, data.ys, data.sw)
    return total, trainer.flat.grad.copy()


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.id)
def test_planned_gradients_match_central_differences(case: GradCase) -> None:
    model = build_model(case.model, seed=1, dtype="float64")
    model.compile(optimizer="sgd", loss=case.loss, **case.compile_extra)
    x, y = _data(case)
    _, grad = _loss_and_grad(model, x, y)
    flat = get_trainer(model).flat.flat
    assert flat.dtype == np.float64 and grad.size == flat.size
    numeric = np.empty_like(grad)
    eps = 1e-6
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up, _ = _loss_and_grad(model, x, y)
        flat[i] = keep - eps
        down, _ = _loss_and_grad(model, x, y)
        flat[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_shared_layer_weights_are_trained_once_and_stay_shared() -> None:
    model = build_model(GRAD_CASES[1].model, seed=0)
    model.compile(optimizer="sgd", loss="mse")
    assert model.count_params() == 4 * 3 + 4 + 4 + 1
    x, y = _data(GRAD_CASES[1])
    model.fit(x, y, epochs=2, verbose=0)
    assert len(model.trainable_weights) == 4


def test_activity_regularizer_adds_penalty_over_batch_size() -> None:
    inputs = Input(shape=(2,))
    outputs = layers.Dense(
        2, kernel_initializer="ones", activity_regularizer={"type": "l2", "l2": 0.5}
    )(inputs)
    model = Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="sgd", loss="mse")
    x = np.array([[1.0, 2.0], [0.0, 1.0]], dtype="float32")
    y = np.zeros((2, 2), dtype="float32")
    out = x.sum(axis=1, keepdims=True) * np.ones((1, 2))
    expected = float((out**2).mean() + 0.5 * (out**2).sum() / 2)
    assert model.evaluate(x, y) == pytest.approx(expected, rel=1e-6)


def test_constraints_apply_after_each_update() -> None:
    inputs = Input(shape=(3,))
    outputs = layers.Dense(2, kernel_constraint="non_neg")(inputs)
    model = Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer={"type": "sgd", "learning_rate": 0.5}, loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 3)), -5 * np.ones((32, 2)), epochs=2, verbose=0)
    assert (model.layers[1].get_weights()[0] >= 0).all()


def _spec_model(seed: int = 5, **compile_extra: Any) -> Model:
    spec = _functional(
        {"x": 4},
        [_dense("h", 8, "x", activation="relu"), _dense("out", 1, activation="sigmoid")],
        ["out"],
    )
    model = build_model(spec, seed=seed)
    model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], **compile_extra
    )
    return model


def _binary(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def _same_histories(a: Any, b: Any) -> None:
    assert a.history.keys() == b.history.keys()
    for key in a.history:
        assert a.history[key] == b.history[key], key


def test_validation_split_takes_the_last_fraction_before_shuffling() -> None:
    x, y = _binary(100)
    split = _spec_model().fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    explicit = _spec_model().fit(
        x[:75], y[:75], epochs=3, batch_size=16, validation_data=(x[75:], y[75:]), verbose=0
    )
    _same_histories(split, explicit)


def test_class_weight_equals_per_sample_weights() -> None:
    x, y = _binary(64)
    weighted = _spec_model().fit(x, y, epochs=2, class_weight={0: 1.0, 1: 3.0}, verbose=0)
    sample = _spec_model().fit(x, y, epochs=2, sample_weight=np.where(y == 1, 3.0, 1.0), verbose=0)
    _same_histories(weighted, sample)


def test_initial_epoch_runs_the_remaining_epochs() -> None:
    x, y = _binary(40)
    history = _spec_model().fit(x, y, epochs=3, initial_epoch=2, verbose=0)
    assert history.epoch == [2] and len(history.history["loss"]) == 1


def test_evaluate_returns_keras_shapes() -> None:
    x, y = _binary(40)
    plain = _spec_model()
    plain.compile(optimizer="sgd", loss="binary_crossentropy")
    assert isinstance(plain.evaluate(x, y), float)
    model = _spec_model()
    values = model.evaluate(x, y)
    assert isinstance(values, list) and len(values) == 2
    assert model.evaluate(x, y, return_dict=True) == dict(
        zip(["loss", "accuracy"], values, strict=True)
    )


def test_predict_batches_agree_with_one_batch() -> None:
    model = _spec_model()
    x, _ = _binary(50)
    np.testing.assert_allclose(model.predict(x, batch_size=7), model.predict(x, batch_size=50))


def test_nan_loss_names_epoch_and_step() -> None:
    x, y = _binary(64)
    x[2 * 16 + 3] = np.nan
    model = _spec_model()
    with pytest.raises(TrainingError, match="loss became NaN at epoch 2, step 3"):
        model.fit(x, y, epochs=3, batch_size=16, shuffle=False, initial_epoch=1, verbose=0)


def test_terminate_on_nan_stops_without_error() -> None:
    x, y = _binary(64)
    x[20] = np.nan
    history = _spec_model().fit(
        x, y, epochs=3, batch_size=16, shuffle=False, callbacks=[TerminateOnNaN()], verbose=0
    )
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])


class _Interrupt(Callback):
    def __init__(self, how: str) -> None:
        self.how = how
        self.epoch = 0
        self.steps_after = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.epoch == 1 and batch == 2:
            if self.how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
        elif self.epoch == 1 and batch > 2:
            self.steps_after += 1


@pytest.mark.parametrize("how", ["raise", "signal"])
def test_keyboard_interrupt_keeps_the_history(how: str) -> None:
    x, y = _binary(96)
    model = _spec_model()
    stopper = _Interrupt(how)
    history = model.fit(x, y, epochs=5, batch_size=16, callbacks=[stopper], verbose=0)
    assert history.interrupted and len(history.history["loss"]) == 1
    assert stopper.steps_after == 0
    assert model.predict(x).shape == (96, 1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("verbose", "expected"),
    [(0, []), (1, ["Epoch 1/2", "[====", "loss: ", "ms/step"]), (2, ["Epoch 2/2", "4/4 - "])],
)
def test_verbose_output(verbose: int, expected: list[str], capsys: Any) -> None:
    x, y = _binary(64)
    _spec_model().fit(x, y, epochs=2, batch_size=16, verbose=verbose)
    out = capsys.readouterr().out
    if not expected:
        assert out == ""
    for piece in expected:
        assert piece in out


class _Centre(Layer):
    """Subtracts a mean learned by `adapt`, to check when and on what fit adapts layers."""

    type_name = "CentreForTest"
    supports_masking = True

    def __init__(self) -> None:
        super().__init__()
        self.is_adapted = False
        self.seen: np.ndarray | None = None

    def adapt(self, data: np.ndarray) -> None:
        self.seen = data
        self.is_adapted = True

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        assert self.seen is not None
        return inputs - self.seen.mean(axis=0), None

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_output if ctx.need_input_grad else None


def test_adapt_sees_the_training_part_as_earlier_layers_transform_it() -> None:
    inputs = Input(shape=(4,))
    centre = _Centre()
    x = centre(layers.Rescaling(2.0)(inputs))
    model = Model(inputs=inputs, outputs=layers.Dense(1)(x))
    model.compile(optimizer="sgd", loss="mse")
    data, y = _binary(40)
    model.fit(data, y, epochs=1, validation_split=0.25, verbose=0)
    assert centre.seen is not None
    np.testing.assert_allclose(centre.seen, 2.0 * data[:30])


def test_fit_config_defaults_and_callbacks() -> None:
    config = FitConfig.model_validate(
        {"epochs": 3, "callbacks": [{"type": "EarlyStopping", "patience": 2}]}
    )
    kwargs = fit_arguments(config)
    assert kwargs["batch_size"] == 32 and kwargs["epochs"] == 3 and kwargs["shuffle"] is True
    assert type(kwargs["callbacks"][0]).__name__ == "EarlyStopping"
    with pytest.raises(ValueError):
        FitConfig.model_validate({"epochs": 1, "epoch": 2})
    assert FitConfig().epochs == 1


def test_compile_errors() -> None:
    inputs = Input(shape=(2,))
    a = layers.Dense(1, name="a")(inputs)
    b = layers.Dense(1, name="b")(inputs)
    model = Model(inputs=inputs, outputs=[a, b])
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="'c', which are not outputs"):
        model.compile(optimizer="sgd", loss={"a": "mse", "c": "mse"})
    with pytest.raises(ValueError, match="no loss for output"):
        model.compile(optimizer="sgd", loss={"a": "mse"})
    with pytest.raises(TrainingError, match="not compiled"):
        Model(inputs=inputs, outputs=a).fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)


def test_wrong_input_shape_is_named() -> None:
    model = _spec_model()
    with pytest.raises(ValueError, match="input 'x' expects samples of shape"):
        model.fit(np.zeros((8, 3)), np.zeros(8), verbose=0)


class _ZeroMask(Layer):
    """Passes its input on and masks the samples' zero entries, like Masking(0.0)."""

    type_name = "ZeroMaskForTest"

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        return inputs, None

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Array | None:
        return grad_output if ctx.need_input_grad else None

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return inputs != 0


class _MaskReader(_ZeroMask):
    """Records the mask it is called with."""

    type_name = "MaskReaderForTest"
    supports_masking = True

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[Any] = []

    def forward(self, params: list[Array], inputs: Array, ctx: CallContext) -> tuple[Array, Any]:
        self.masks.append(ctx.mask)
        return inputs, None

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        return mask


def test_masks_flow_from_the_layer_that_makes_them() -> None:
    inputs = Input(shape=(3,))
    reader = _MaskReader()
    x = reader(layers.Activation("linear")(_ZeroMask()(inputs)))
    model = Model(inputs=inputs, outputs=layers.Dense(1)(x))
    data = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], dtype="float32")
    model.predict(data)
    np.testing.assert_array_equal(reader.masks[-1], data != 0)


def test_dropout_is_active_in_training_only() -> None:
    inputs = Input(shape=(50,))
    model = Model(inputs=inputs, outputs=layers.Dropout(0.5)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 50), dtype="float32")
    np.testing.assert_array_equal(model.predict(x), x)
    trainer = get_trainer(model)
    trainer.train_exec.set_rng(np.random.default_rng(0))
    (out,), _ = trainer.train_exec.forward([x])
    assert set(np.unique(out)) == {0.0, 2.0}


def test_save_and_load_model_round_trip(tmp_path: Any) -> None:
    import engine

    model = _spec_model()
    x, y = _binary(32)
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "run")
    loaded = engine.load_model(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_training_state()["epoch"] == 2
    assert loaded.history.history == model.history.history
