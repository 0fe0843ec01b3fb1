"""Compile settings between Keras's serialized form and the spec, one row per case."""

from __future__ import annotations

from typing import Any

import pytest

from engine.keras_io.compile_config import keras_compile, spec_compile


def _keras(class_name: str, module: str, **config: Any) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


SCHEDULE = _keras(
    "ExponentialDecay",
    "keras.optimizers.schedules",
    initial_learning_rate=0.1,
    decay_steps=10,
    decay_rate=0.5,
    staircase=False,
    name="ExponentialDecay",
)


@pytest.mark.parametrize(
    ("keras", "outputs", "spec"),
    [
        (
            {
                "optimizer": _keras(
                    "SGD",
                    "keras.optimizers",
                    learning_rate=0.01,
                    momentum=0.9,
                    nesterov=False,
                    use_ema=False,
                    name="SGD",
                )
            },
            ["y"],
            {"optimizer": {"type": "sgd", "momentum": 0.9}},
        ),
        (
            {"optimizer": _keras("Adam", "keras.optimizers", learning_rate=SCHEDULE)},
            ["y"],
            {
                "optimizer": {
                    "type": "adam",
                    "learning_rate": {
                        "type": "exponential_decay",
                        "initial_learning_rate": 0.1,
                        "decay_steps": 10,
                        "decay_rate": 0.5,
                    },
                }
            },
        ),
        (
            {
                "loss": _keras(
                    "Huber",
                    "keras.losses",
                    delta=2.0,
                    reduction="sum_over_batch_size",
                    name="huber_loss",
                ),
                "metrics": [
                    _keras("TopKCategoricalAccuracy", "keras.metrics", k=3, dtype="float32")
                ],
            },
            ["y"],
            {
                "loss": {"type": "huber", "delta": 2.0},
                "metrics": [
                    {
                        "type": "top_k_categorical_accuracy",
                        "k": 3,
                    }
                ],
            },
        ),
        (
            {
                "loss": ["mse", "mae"],
                "loss_weights": [1.0, 0.25],
                "metrics": [["mae"], ["accuracy"]],
            },
            ["a", "b"],
            {
                "loss": {"a": "mse", "b": "mae"},
                "loss_weights": {"a": 1.0, "b": 0.25},
                "metrics": {"a": ["mae"], "b": ["accuracy"]},
            },
        ),
    ],
)
def test_keras_compile_to_spec(
    keras: dict[str, Any], outputs: list[str], spec: dict[str, Any]
) -> None:
    got, notes = spec_compile(keras, outputs)
    assert got == spec and notes == []


def test_what_the_spec_cannot_hold_is_left_out_with_a_note() -> None:
    keras = {
        "optimizer": _keras("Lion", "keras.optimizers", learning_rate=0.001),
        "loss": "mse",
        "weighted_metrics": ["mae"],
    }
    got, notes = spec_compile(keras, ["y"])
    assert got == {"loss": "mse"}
    assert any(n.startswith("compile.optimizer:") and "left out" in n for n in notes)
    assert any(n.startswith("compile.weighted_metrics:") for n in notes)


def test_spec_compile_to_keras() -> None:
    section = {
        "optimizer": {
            "type": "adam",
            "learning_rate": {
                "type": "cosine_decay",
                "initial_learning_rate": 0.1,
                "decay_steps": 100,
            },
        },
        "loss": {"type": "huber", "delta": 2.0},
        "metrics": ["mae", {"type": "auc", "curve": "PR"}],
    }
    keras = keras_compile(section)
    assert keras is not None
    assert keras["optimizer"]["class_name"] == "Adam"
    schedule = keras["optimizer"]["config"]["learning_rate"]
    assert schedule["class_name"] == "CosineDecay" and schedule["config"]["decay_steps"] == 100
    assert keras["loss"]["class_name"] == "Huber" and keras["loss"]["config"] == {"delta": 2.0}
    assert keras["metrics"][0] == "mae" and keras["metrics"][1]["class_name"] == "AUC"
    assert keras_compile({}) is None
