"""Metrics: running means across batches, accuracy resolution from shapes, AUC against
scikit-learn, precision and recall against hand counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine import metrics
from engine.backend import get_backend

P3 = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
Y3 = np.array([1, 1, 2, 0])

MEAN_CASES: list[tuple[Any, Any, np.ndarray, float]] = [
    ("sparse_categorical_accuracy", Y3, P3, 2 / 4),
    ("sparse_categorical_accuracy", Y3[:, None], P3, 2 / 4),
    ("categorical_accuracy", np.eye(3)[Y3], P3, 2 / 4),
    ({"type": "top_k_categorical_accuracy", "k": 1}, np.eye(3)[Y3], P3, 2 / 4),
    ({"type": "top_k_categorical_accuracy", "k": 2}, np.eye(3)[Y3], P3, 1.0),
    ("top_k_categorical_accuracy", np.eye(3)[Y3], P3, 1.0),
    ({"type": "sparse_top_k_categorical_accuracy", "k": 1}, Y3, P3, 2 / 4),
    ({"type": "sparse_top_k_categorical_accuracy", "k": 2}, Y3[:, None], P3, 1.0),
    ("binary_accuracy", np.array([1, 0, 1, 0]), np.array([[0.9], [0.6], [0.4], [0.1]]), 2 / 4),
    (
        {"type": "binary_accuracy", "threshold": 0.7},
        np.array([[1.0], [0.0]]),
        np.array([[0.65], [0.2]]),
        1 / 2,
    ),
    ("mae", np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[2.0, 2.0], [0.0, -3.0]]), 1.0),
    ("mse", np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[2.0, 2.0], [0.0, -3.0]]), 2.5),
    ("rmse", np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[2.0, 2.0], [0.0, -3.0]]), 2.5**0.5),
    ("mean_squared_error", np.array([1.0, 3.0]), np.array([[1.0], [1.0]]), 2.0),
]


@pytest.mark.parametrize(("spec", "y_true", "y_pred", "expected"), MEAN_CASES)
def test_mean_metric_value(spec: Any, y_true: Any, y_pred: np.ndarray, expected: float) -> None:
    metric = metrics.get(spec)
    metric.update(y_true, y_pred)
    assert metric.result() == pytest.approx(expected)


@pytest.mark.parametrize(("spec", "y_true", "y_pred", "expected"), MEAN_CASES)
def test_batches_accumulate_to_the_whole_epoch(
    spec: Any, y_true: Any, y_pred: np.ndarray, expected: float
) -> None:
    metric = metrics.get(spec)
    metric.update(y_true[:1], y_pred[:1])
    metric.update(y_true[1:], y_pred[1:])
    assert metric.result() == pytest.approx(expected)
    metric.reset()
    metric.update(y_true[:1], y_pred[:1])
    single = metrics.get(spec)
    single.update(y_true[:1], y_pred[:1])
    assert metric.result() == single.result()


def test_sample_weights_weight_samples_across_batches() -> None:
    metric = metrics.get("sparse_categorical_accuracy")
    w = np.array([1.0, 3.0, 0.5, 2.0])  # correct: samples 0 and 2
    metric.update(Y3[:3], P3[:3], sample_weight=w[:3])
    metric.update(Y3[3:], P3[3:], sample_weight=w[3:])
    assert metric.result() == pytest.approx((1.0 + 0.5) / w.sum())


@pytest.mark.parametrize(
    ("y_true_shape", "y_pred_shape", "loss", "expected"),
    [
        ((None,), (None, 10), "sparse_categorical_crossentropy", "sparse"),
        ((None, 1), (None, 10), None, "sparse"),
        ((None, 10), (None, 10), "categorical_crossentropy", "categorical"),
        ((None, 1), (None, 1), "binary_crossentropy", "binary"),
        ((None,), (None, 1), "mse", "binary"),
        ((None, 5), (None, 5), "binary_crossentropy", "binary"),
        ((None, 5), (None, 5), "bce_is_not_a_name_here", "categorical"),
        ((None, 7), (None, 7, 3), None, "sparse"),
    ],
)
def test_accuracy_resolves_from_shapes_and_loss(
    y_true_shape: tuple, y_pred_shape: tuple, loss: str | None, expected: str
) -> None:
    probes = {
        "binary": (np.array([[1.0]]), np.array([[0.8]]), 1.0),
        "sparse": (np.array([2]), np.array([[0.1, 0.2, 0.7]]), 1.0),
        "categorical": (np.array([[0.0, 0.0, 1.0]]), np.array([[0.1, 0.2, 0.7]]), 1.0),
    }
    for name in ("accuracy", "acc"):
        metric = metrics.resolve(name, y_true_shape, y_pred_shape, loss)
        assert metric.name == name
        y_true, y_pred, value = probes[expected]
        metric.update(y_true, y_pred)
        assert metric.result() == value


def test_accuracy_needs_resolving() -> None:
    with pytest.raises(ValueError, match="resolve"):
        metrics.get("accuracy")


def test_auc_matches_sklearn_over_batches() -> None:
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    scores = np.clip(0.35 * y + 0.65 * rng.random(2000), 0, 1).astype(np.float32)
    auc = metrics.get("auc")
    for start in range(0, 2000, 256):
        auc.update(y[start : start + 256, None], scores[start : start + 256, None])
    assert auc.result() == pytest.approx(roc_auc_score(y, scores), abs=1e-3)
    weights = rng.uniform(0, 2, 2000)
    weighted = metrics.get({"type": "auc", "num_thresholds": 500})
    weighted.update(y, scores, sample_weight=weights)
    expected = roc_auc_score(y, scores, sample_weight=weights)
    assert weighted.result() == pytest.approx(expected, abs=1e-3)


def test_pr_auc_is_close_to_average_precision() -> None:
    average_precision = pytest.importorskip("sklearn.metrics").average_precision_score
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 4000)
    scores = np.clip(0.3 * y + 0.7 * rng.random(4000), 0, 1)
    pr = metrics.get({"type": "auc", "curve": "PR", "num_thresholds": 1000})
    pr.update(y, scores)
    assert pr.result() == pytest.approx(average_precision(y, scores), abs=5e-3)


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_of_a_perfect_ranking_is_one(curve: str) -> None:
    auc = metrics.get({"type": "auc", "curve": curve})
    auc.update(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert auc.result() == pytest.approx(1.0)


def test_auc_from_logits_applies_the_sigmoid() -> None:
    y = np.array([0, 1, 0, 1, 1])
    logits = np.array([-2.0, 0.5, 0.3, 3.0, -0.2])
    on_logits = metrics.get({"type": "auc", "from_logits": True})
    on_logits.update(y, logits)
    on_probs = metrics.get("auc")
    on_probs.update(y, 1 / (1 + np.exp(-logits)))
    assert on_logits.result() == on_probs.result()


def _counts(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int]:
    predicted = p > threshold
    tp = int(np.sum(predicted & (y == 1)))
    return tp, int(np.sum(predicted & (y == 0))), int(np.sum(~predicted & (y == 1)))


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_precision_and_recall_match_hand_counts(threshold: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (50, 1))
    p = rng.random((50, 1))
    tp, fp, fn = _counts(y, p, threshold)
    precision = metrics.get({"type": "precision", "thresholds": threshold})
    recall = metrics.get({"type": "recall", "thresholds": threshold})
    for m in (precision, recall):
        m.update(y[:20], p[:20])
        m.update(y[20:], p[20:])
    assert precision.result() == pytest.approx(tp / (tp + fp))
    assert recall.result() == pytest.approx(tp / (tp + fn))


def test_precision_without_predicted_positives_is_zero() -> None:
    precision = metrics.get("precision")
    precision.update(np.array([1, 0]), np.array([0.1, 0.2]))
    assert precision.result() == 0.0


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("mae", "mae"),
        ("mean_absolute_error", "mean_absolute_error"),
        ({"type": "top_k_categorical_accuracy", "k": 3}, "top_k_categorical_accuracy"),
        ({"type": "auc", "name": "roc"}, "roc"),
        ("precision", "precision"),
    ],
)
def test_metric_keeps_the_name_written(spec: Any, name: str) -> None:
    assert metrics.get(spec).name == name


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("f1", ValueError, "unknown metric 'f1'"),
        ({"type": "top_k_categorical_accuracy", "k": 0}, ValidationError, "k"),
        ({"type": "auc", "num_thresholds": 1}, ValidationError, "num_thresholds"),
        ({"type": "precision", "threshold": 0.5}, ValidationError, "threshold"),
    ],
)
def test_invalid_specs_are_rejected(spec: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        metrics.get(spec)


def test_names() -> None:
    assert {"accuracy", "auc", "rmse", "root_mean_squared_error", "recall"} <= set(metrics.names())


FAKE_CASES: list[tuple[Any, Any, np.ndarray]] = [
    *[(spec, y_true, y_pred) for spec, y_true, y_pred, _ in MEAN_CASES],
    ("precision", np.array([1, 0, 1]), np.array([0.7, 0.6, 0.2])),
    ("recall", np.array([1, 0, 1]), np.array([0.7, 0.6, 0.2])),
    ("auc", np.array([1, 0, 1]), np.array([0.7, 0.6, 0.2])),
    (
        {"type": "auc", "curve": "PR", "from_logits": True},
        np.array([1, 0, 1]),
        np.array([2.0, 0.1, -1.0]),
    ),
]


@pytest.mark.parametrize(("spec", "y_true", "y_pred"), FAKE_CASES)
def test_runs_on_the_strict_fake_device(spec: Any, y_true: Any, y_pred: np.ndarray) -> None:
    fake = get_backend("fake")
    weights = np.linspace(0.5, 1.5, len(y_pred)).astype(np.float32)
    host, device = metrics.get(spec), metrics.get(spec)
    host.update(y_true, y_pred.astype(np.float32), weights)
    device.update(
        fake.asarray(y_true), fake.asarray(y_pred.astype(np.float32)), fake.asarray(weights)
    )
    assert device.result() == host.result()


def test_get_accepts_the_spec_schemas_models() -> None:
    from pydantic import TypeAdapter

    adapter = TypeAdapter(metrics.MetricSpec)
    auc = metrics.get(adapter.validate_python({"type": "auc", "curve": "PR", "name": "pr"}))
    assert auc.name == "pr"
    resolved = metrics.resolve(adapter.validate_python("acc"), (None,), (None, 1))
    assert resolved.name == "acc"


def test_keras_style_constructors() -> None:
    assert metrics.AUC().name == "auc" and metrics.AUC(curve="PR").curve == "PR"
    precision = metrics.Precision(thresholds=0.3)
    assert precision.name == "precision" and precision.thresholds == [0.3]
    assert metrics.Recall(name="r").name == "r"


# Keras's update_confusion_matrix_variables by hand: top_k keeps each row's k largest scores
# (ties to the lower index), class_id then keeps one column, and a score counts as positive
# when above the threshold (0.5, or NEG_INF with top_k). Labels have 4 positives.
Y_MULTI = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]])
P_MULTI = np.array([[0.1, 0.6, 0.3], [0.2, 0.7, 0.4], [0.5, 0.2, 0.45]])
TOP_K_CASES: list[tuple[dict[str, Any], float, float]] = [
    ({}, 1 / 2, 1 / 4),  # tp (0,1); fp (1,1)
    ({"top_k": 2}, 3 / 6, 3 / 4),  # tp (0,1) (0,2) (2,2); fp (1,1) (1,2) (2,0)
    ({"top_k": 1}, 1 / 3, 1 / 4),  # tp (0,1); fp (1,1) (2,0)
    ({"top_k": 2, "thresholds": 0.4}, 2 / 4, 2 / 4),  # tp (0,1) (2,2); fp (1,1) (2,0)
    ({"class_id": 1}, 1 / 2, 1 / 1),  # column [0.6 0.7 0.2] vs [1 0 0]
    ({"class_id": 2, "thresholds": 0.35}, 1 / 2, 1 / 2),  # column [0.3 0.4 0.45] vs [1 0 1]
    ({"top_k": 1, "class_id": 2}, 0.0, 0.0),  # column 2 is never a row's largest
    ({"top_k": 2, "class_id": 2}, 2 / 3, 2 / 2),  # column 2 is second in every row
    ({"top_k": 1, "class_id": 1}, 1 / 2, 1 / 1),  # kept in rows 0 and 1
]


@pytest.mark.parametrize(("settings", "precision", "recall"), TOP_K_CASES)
def test_precision_and_recall_top_k_and_class_id(
    settings: dict[str, Any], precision: float, recall: float
) -> None:
    for kind, expected in (("precision", precision), ("recall", recall)):
        metric = metrics.get({"type": kind, **settings})
        metric.update(Y_MULTI[:2], P_MULTI[:2])
        metric.update(Y_MULTI[2:], P_MULTI[2:])
        assert metric.result() == pytest.approx(expected), kind


def test_top_k_with_sample_weights() -> None:
    precision, recall = metrics.Precision(top_k=2), metrics.Recall(top_k=2)
    for metric in (precision, recall):
        metric.update(Y_MULTI, P_MULTI, np.array([1.0, 2.0, 3.0]))
    # tp 2*1 + 1*3, fp 2*2 + 1*3, fn (1,0) at weight 2
    assert precision.result() == pytest.approx(5 / 12)
    assert recall.result() == pytest.approx(5 / 7)


@pytest.mark.parametrize(("k", "expected"), [(2, 0.0), (4, 0.5)])
def test_top_k_ties_go_to_the_lower_index(k: int, expected: float) -> None:
    """Keras's docstring example: equal scores, so top_k=2 keeps the first two (negatives)."""
    precision = metrics.Precision(top_k=k)
    precision.update(np.array([0, 0, 1, 1]), np.array([1.0, 1.0, 1.0, 1.0]))
    assert precision.result() == expected


def test_precision_and_recall_take_keras_arguments_in_keras_order() -> None:
    precision = metrics.Precision(0.3, 2, 1, "p", "float32")
    assert (precision.thresholds, precision.top_k, precision.class_id, precision.name) == (
        [0.3],
        2,
        1,
        "p",
    )
    assert metrics.Recall().thresholds == [0.5]
    assert metrics.Recall(top_k=3).thresholds == [metrics.NEG_INF]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: metrics.Precision(thresholds=1.5), "thresholds"),
        (lambda: metrics.Recall(thresholds=[0.2, -0.1]), "thresholds"),
        (lambda: metrics.get({"type": "recall", "thresholds": [0.2, 1.1]}), "thresholds"),
        (lambda: metrics.get({"type": "recall", "thresholds": []}), "thresholds"),
        (lambda: metrics.get({"type": "recall", "top_k": 0}), "top_k"),
        (lambda: metrics.get({"type": "recall", "class_id": -1}), "class_id"),
    ],
)
def test_invalid_precision_settings(build: Callable[[], Any], match: str) -> None:
    with pytest.raises((ValueError, ValidationError), match=match):
        build()


def test_class_id_needs_a_class_axis() -> None:
    with pytest.raises(ValueError, match="class_id"):
        metrics.Precision(class_id=0).update(np.array([1, 0]), np.array([0.7, 0.2]))


def test_top_k_runs_on_the_strict_fake_device() -> None:
    fake = get_backend("fake")
    host, device = metrics.Recall(top_k=2, class_id=2), metrics.Recall(top_k=2, class_id=2)
    host.update(Y_MULTI, P_MULTI.astype(np.float32))
    device.update(fake.asarray(Y_MULTI), fake.asarray(P_MULTI.astype(np.float32)))
    assert device.result() == host.result() == 1.0


# (thresholds, labels, scores, precision, recall), counted by hand; Keras 3 gives the same
THRESHOLD_LISTS: list[tuple[list[float], list[int], list[float], Any, Any]] = [
    # 0.3: predicted 0.4 0.6 0.8 0.9, tp 2 fp 2 fn 1; 0.7: predicted 0.8 0.9, tp 1 fp 1 fn 2
    ([0.3, 0.7], [1, 0, 1, 1, 0], [0.2, 0.4, 0.6, 0.8, 0.9], [1 / 2, 1 / 2], [2 / 3, 1 / 3]),
    # evenly spaced: buckets ceil(2p) - 1 are 0 0 0 1, so 0.5 is above 0 but not above 0.5
    ([0.0, 0.5, 1.0], [0, 0, 1, 1], [0.1, 0.5, 0.3, 0.9], [1 / 2, 1, 0], [1, 1 / 2, 0]),
    # evenly spaced clips scores to [0, 1]: 2.5 is not above 1.0, -0.5 above nothing
    ([0.0, 0.5, 1.0], [1, 1, 0], [2.5, 0.7, -0.5], [1, 1, 0], [1, 1, 0]),
    # compared one by one, 2.5 is above 0.9
    ([0.0, 0.9], [1, 1, 0], [2.5, 0.7, -0.5], [1, 1], [1, 1 / 2]),
    ([0.4], [1, 0], [0.5, 0.6], 1 / 2, 1.0),  # a list of one gives one value, as in Keras
]


@pytest.mark.parametrize(("thresholds", "y", "p", "precision", "recall"), THRESHOLD_LISTS)
def test_a_list_of_thresholds_gives_a_value_per_threshold(
    thresholds: list[float], y: list[int], p: list[float], precision: Any, recall: Any
) -> None:
    for kind, expected in (("precision", precision), ("recall", recall)):
        metric = metrics.get({"type": kind, "thresholds": thresholds})
        metric.update(np.array(y[:2]), np.array(p[:2], np.float32))
        metric.update(np.array(y[2:]), np.array(p[2:], np.float32))
        assert metric.result() == pytest.approx(expected), kind


def test_fit_logs_each_threshold_as_a_float() -> None:
    from engine.build import from_spec

    model = from_spec(
        {
            "model": {
                "type": "sequential",
                "layers": [
                    {"type": "Input", "shape": [3]},
                    {"type": "Dense", "units": 1, "activation": "sigmoid"},
                ],
            },
            "compile": {
                "optimizer": "adam",
                "loss": "binary_crossentropy",
                "metrics": [{"type": "precision", "thresholds": [0.25, 0.5]}, "recall"],
            },
        }
    )
    x = np.random.default_rng(0).random((32, 3), np.float32)
    history = model.fit(x, (x[:, :1] > 0.5).astype(np.float32), epochs=1, verbose=0)
    assert sorted(history.history) == ["loss", "precision_at_0.25", "precision_at_0.5", "recall"]
    assert all(isinstance(v[0], float) for v in history.history.values())
