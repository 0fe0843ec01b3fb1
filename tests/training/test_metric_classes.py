"""Keras's metric classes (`keras.metrics.BinaryAccuracy()` ...): each against its formula
written out in NumPy, under Keras's default name, and through compile, fit and a saved model."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine import metrics

RNG = np.random.default_rng(3)
PROBS = RNG.random((12, 4)).astype(np.float32)
PROBS /= PROBS.sum(axis=1, keepdims=True)
IDS = RNG.integers(0, 4, 12)
ONE_HOT = np.eye(4, dtype=np.float32)[IDS]
SCORES = RNG.random((12, 1)).astype(np.float32)
BINARY = (RNG.random((12, 1)) > 0.5).astype(np.float32)


def _rank(p: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """How many scores lie strictly above the true class's score, per row."""
    return (p > p[np.arange(len(ids)), ids][:, None]).sum(axis=1)


CASES = [
    (
        tf.keras.metrics.BinaryAccuracy(),
        "binary_accuracy",
        BINARY,
        SCORES,
        np.mean((SCORES > 0.5) == BINARY),
    ),
    (
        tf.keras.metrics.BinaryAccuracy(threshold=0.3),
        "binary_accuracy",
        BINARY,
        SCORES,
        np.mean((SCORES > 0.3) == BINARY),
    ),
    (
        tf.keras.metrics.CategoricalAccuracy(),
        "categorical_accuracy",
        ONE_HOT,
        PROBS,
        np.mean(PROBS.argmax(1) == IDS),
    ),
    (
        tf.keras.metrics.SparseCategoricalAccuracy(),
        "sparse_categorical_accuracy",
        IDS,
        PROBS,
        np.mean(PROBS.argmax(1) == IDS),
    ),
    (
        tf.keras.metrics.TopKCategoricalAccuracy(k=2),
        "top_k_categorical_accuracy",
        ONE_HOT,
        PROBS,
        np.mean(_rank(PROBS, IDS) < 2),
    ),
    (
        tf.keras.metrics.SparseTopKCategoricalAccuracy(),
        "sparse_top_k_categorical_accuracy",
        IDS,
        PROBS,
        np.mean(_rank(PROBS, IDS) < 5),
    ),
    (
        tf.keras.metrics.MeanAbsoluteError(),
        "mean_absolute_error",
        BINARY,
        SCORES,
        np.mean(np.abs(BINARY - SCORES)),
    ),
    (
        tf.keras.metrics.MeanSquaredError(),
        "mean_squared_error",
        BINARY,
        SCORES,
        np.mean((BINARY - SCORES) ** 2),
    ),
    (
        tf.keras.metrics.RootMeanSquaredError(),
        "root_mean_squared_error",
        BINARY,
        SCORES,
        np.sqrt(np.mean((BINARY - SCORES) ** 2)),
    ),
]


@pytest.mark.parametrize(
    ("metric", "name", "y_true", "y_pred", "expected"),
    CASES,
    ids=[c[1] + str(i) for i, c in enumerate(CASES)],
)
def test_metric_class_matches_its_formula(metric, name, y_true, y_pred, expected) -> None:
    metric.reset()
    metric.update(y_true[:5], y_pred[:5])
    metric.update(y_true[5:], y_pred[5:])
    assert metric.name == name
    assert metric.result() == pytest.approx(float(expected), rel=1e-6)
    rebuilt = metrics.get(metric.get_config())
    rebuilt.update(y_true, y_pred)
    assert rebuilt.result() == pytest.approx(metric.result(), rel=1e-6)


def test_metric_objects_train_save_and_load(tmp_path) -> None:
    x = RNG.random((64, 4)).astype(np.float32)
    y = (x.sum(axis=1) > 2).astype(np.float32)
    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=[
            tf.keras.metrics.BinaryAccuracy(threshold=0.4, name="acc40"),
            tf.keras.metrics.MeanSquaredError(),
        ],
    )
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "acc40", "mean_squared_error"}
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0).reshape(-1)
    assert before["acc40"] == pytest.approx(np.mean(y == (p > 0.4)), rel=1e-6)
    model.save(tmp_path / "m.keras")
    after = tf.keras.models.load_model(tmp_path / "m.keras").evaluate(
        x, y, verbose=0, return_dict=True
    )
    assert after == pytest.approx(before)


@pytest.mark.parametrize(
    ("entry", "cls"),
    [
        ({"type": "binary_accuracy", "threshold": 0.3}, metrics.BinaryAccuracy),
        ({"type": "top_k_categorical_accuracy", "k": 2}, metrics.TopKCategoricalAccuracy),
        (
            {"type": "sparse_top_k_categorical_accuracy", "k": 3},
            metrics.SparseTopKCategoricalAccuracy,
        ),
        ("mae", metrics.MeanAbsoluteError),
        ("rmse", metrics.RootMeanSquaredError),
    ],
)
def test_a_spec_entry_builds_the_keras_class_once(entry, cls) -> None:
    """The spec's metric is Keras's class, its settings kept in its config; its per-element
    function is made when the metric is and reused by every update."""
    metric = metrics.get(entry)
    assert type(metric) is cls
    settings = {} if isinstance(entry, str) else entry
    assert {k: metric.get_config()[k] for k in settings if k != "type"} == {
        k: v for k, v in settings.items() if k != "type"
    }
    fn = metric.fn
    metric.update(ONE_HOT, PROBS)
    metric.update(ONE_HOT, PROBS)
    assert metric.fn is fn
