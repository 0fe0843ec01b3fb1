"""Callbacks: Keras 3's stopping, checkpoint, learning-rate and logging rules; their configs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from engine import Input, Model, layers
from engine.callbacks import (
    CSVLogger,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from engine.config.callbacks import CallbackConfig
from engine.layers.base import clear_session
from engine.spec_callbacks import from_config


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    clear_session()


class _FakeModel:
    """Just what the callbacks touch: weights, an optimizer with a rate, stop_training, save."""

    def __init__(self) -> None:
        self.stop_training = False
        self.weights = [np.zeros(2)]
        self.saved: list[str] = []
        self.optimizer = _FakeOptimizer()

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, values: list[np.ndarray]) -> None:
        self.weights = [v.copy() for v in values]

    def save(self, path: str) -> None:
        self.saved.append(path)


class _Config:
    learning_rate = 0.1


class _FakeOptimizer:
    def __init__(self) -> None:
        self.config = _Config()

    @property
    def learning_rate(self) -> float:
        return self.config.learning_rate


def _drive(callback: Any, values: list[float], key: str = "val_loss") -> _FakeModel:
    """Run epochs with the given monitored values; weights record the epoch they come from."""
    model = _FakeModel()
    callback.set_model(model)
    callback.set_params({"epochs": len(values), "steps": 1, "verbose": 0})
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return model


@pytest.mark.parametrize(
    ("kwargs", "values", "key", "stopped_epoch", "weights_epoch"),
    [
        ({"patience": 0}, [1.0, 0.9, 0.95, 0.5], "val_loss", 2, 2),
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.96, 0.5], "val_loss", 3, 3),
        ({"patience": 1, "min_delta": 0.2}, [1.0, 0.9, 0.85, 0.1], "val_loss", 1, 1),
        ({"patience": 1, "restore_best_weights": True}, [1.0, 0.5, 0.7, 0.8], "val_loss", 2, 1),
        ({"patience": 1, "monitor": "val_accuracy"}, [0.5, 0.7, 0.6, 0.55], "val_accuracy", 2, 2),
        ({"patience": 1, "mode": "max", "monitor": "score"}, [1.0, 2.0, 1.5, 1.4], "score", 2, 2),
        ({"patience": 0, "start_from_epoch": 2}, [1.0, 2.0, 3.0, 0.5, 0.6], "val_loss", 4, 4),
        ({"patience": 2, "baseline": 0.5}, [1.0, 0.9, 0.95], "val_loss", 2, 2),
    ],
)
def test_early_stopping(
    kwargs: dict[str, Any], values: list[float], key: str, stopped_epoch: int, weights_epoch: int
) -> None:
    callback = EarlyStopping(**kwargs)
    model = _drive(callback, values, key)
    assert model.stop_training
    assert callback.stopped_epoch == stopped_epoch
    assert model.weights[0][0] == weights_epoch


def test_early_stopping_warns_when_the_monitor_is_missing() -> None:
    with pytest.warns(UserWarning, match="'val_loss', which is not logged"):
        _drive(EarlyStopping(), [1.0], key="loss")


@pytest.mark.parametrize(
    ("kwargs", "values", "rates"),
    [
        ({"patience": 1, "factor": 0.5}, [1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.05, 0.025]),
        (
            {"patience": 2, "factor": 0.5, "min_lr": 0.06},
            [1.0, 1.0, 1.0, 1.0, 1.0],
            [0.1, 0.1, 0.1, 0.06, 0.06],
        ),
        (
            {"patience": 1, "factor": 0.5, "cooldown": 2},
            [1.0, 1.0, 1.0, 1.0, 1.0],
            [0.1, 0.1, 0.05, 0.05, 0.025],
        ),
        ({"patience": 1, "factor": 0.5}, [1.0, 0.5, 0.25, 0.1], [0.1, 0.1, 0.1, 0.1]),
    ],
)
def test_reduce_lr_on_plateau(
    kwargs: dict[str, Any], values: list[float], rates: list[float]
) -> None:
    callback = ReduceLROnPlateau(**kwargs)
    model = _FakeModel()
    callback.set_model(model)
    seen = []
    for epoch, value in enumerate(values):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        seen.append(logs["learning_rate"])
    assert seen == pytest.approx(rates)


def test_model_checkpoint_formats_paths_and_saves_best_only() -> None:
    every = _drive(ModelCheckpoint("ckpt/{epoch:02d}-{val_loss:.1f}"), [1.0, 2.0])
    assert every.saved == ["ckpt/01-1.0", "ckpt/02-2.0"]
    best = _drive(ModelCheckpoint("best", save_best_only=True), [1.0, 2.0, 0.5, 0.7])
    assert best.saved == ["best", "best"]
    acc = _drive(
        ModelCheckpoint("e{epoch}", save_best_only=True, monitor="val_accuracy"),
        [0.5, 0.4, 0.6],
        key="val_accuracy",
    )
    assert acc.saved == ["e1", "e3"]


def _tiny_model() -> Model:
    inputs = Input(shape=(2,))
    model = Model(inputs=inputs, outputs=layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


def test_csv_logger_writes_keras_layout(tmp_path: Path) -> None:
    path = tmp_path / "log" / "train.csv"
    x = np.ones((8, 2), dtype="float32")
    history = _tiny_model().fit(
        x, np.zeros(8), epochs=3, validation_split=0.25, callbacks=[CSVLogger(path)], verbose=0
    )
    with path.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert float(rows[2][1]) == pytest.approx(history.history["loss"][1])


def test_fit_with_callbacks_end_to_end(tmp_path: Path) -> None:
    model = _tiny_model()
    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    stop = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    reduce = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0)
    history = model.fit(x, y, epochs=5, callbacks=[reduce, stop], verbose=0)
    assert len(history.history["loss"]) == 2
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.01])
    assert model.optimizer.learning_rate == pytest.approx(0.005)
    assert isinstance(model.history, History) and model.history is history


def test_callback_state_survives_in_training_state() -> None:
    model = _tiny_model()
    x = np.ones((8, 2), dtype="float32")
    model.fit(
        x, np.zeros(8), epochs=2, callbacks=[EarlyStopping(monitor="loss", patience=9)], verbose=0
    )
    state = model.get_training_state()
    assert state["epoch"] == 2
    (saved,) = state["callbacks"].values()
    assert saved["wait"] == 0 and saved["best"] == pytest.approx(model.history.history["loss"][-1])


ADAPTER: TypeAdapter[Any] = TypeAdapter(CallbackConfig)


@pytest.mark.parametrize(
    ("spec", "cls", "attrs"),
    [
        (
            {
                "type": "EarlyStopping",
                "monitor": "val_loss",
                "patience": 5,
                "restore_best_weights": True,
            },
            EarlyStopping,
            {"patience": 5, "restore_best_weights": True, "start_from_epoch": 0},
        ),
        (
            {"type": "ReduceLROnPlateau", "factor": 0.2},
            ReduceLROnPlateau,
            {"factor": 0.2, "patience": 10, "min_lr": 0.0},
        ),
        (
            {"type": "ModelCheckpoint", "save_best_only": True},
            ModelCheckpoint,
            {"save_best_only": True, "monitor": "val_loss"},
        ),
        ({"type": "CSVLogger", "filename": "log.csv"}, CSVLogger, {"separator": ","}),
    ],
)
def test_callback_configs_build_callbacks(
    spec: dict[str, Any], cls: type, attrs: dict[str, Any]
) -> None:
    callback = from_config(ADAPTER.validate_python(spec))
    assert isinstance(callback, cls)
    for name, value in attrs.items():
        assert getattr(callback, name) == value


def test_callback_config_paths_go_into_the_run_dir(tmp_path: Path) -> None:
    logger = from_config(ADAPTER.validate_python({"type": "CSVLogger"}), run_dir=tmp_path)
    assert isinstance(logger, CSVLogger) and logger.filename == tmp_path / "training.log"
    ckpt = ADAPTER.validate_python({"type": "ModelCheckpoint", "filepath": "/abs/x"})
    assert from_config(ckpt, run_dir=tmp_path).filepath == "/abs/x"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "EarlyStoping"},
        {"type": "EarlyStopping", "patience": -1},
        {"type": "EarlyStopping", "patiense": 2},
        {"type": "ReduceLROnPlateau", "factor": 1.5},
    ],
)
def test_callback_configs_reject_bad_entries(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(spec)


def test_verbose_callbacks_say_what_they_do(capsys: pytest.CaptureFixture[str]) -> None:
    _drive(EarlyStopping(patience=0, verbose=1, restore_best_weights=True), [1.0, 2.0])
    _drive(ModelCheckpoint("m", save_best_only=True, verbose=1), [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out
    assert "Epoch 1: val_loss improved from inf to 1.00000, saving model to m" in out
    assert "Epoch 2: val_loss did not improve from 1.00000" in out
