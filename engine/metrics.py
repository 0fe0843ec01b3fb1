"""Keras 3's training metrics as stateful accumulators over batches.

A metric is reset at the start of each epoch, updated once per batch and read with `result()`.
Mean metrics (accuracies, mae, mse, rmse) keep a running weighted mean over samples, as Keras's
`MeanMetricWrapper` does; precision, recall and AUC keep weighted confusion counts. The metric
keeps the name the user wrote (`acc` stays `acc` in the history), as Keras 3 does.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from engine.backend import backend_of
from engine.config.metrics import MetricConfig, MetricSpec
from engine.losses import canonical_name

EPSILON = 1e-7  # keras.config.epsilon()
NEG_INF = -1e10  # Keras's score for the classes outside the top k
Array = Any


class Metric(ABC):
    """A stateful metric: `reset()`, `update(y_true, y_pred, sample_weight)`, `result()`.

    `additive_state` names the attributes (floats or host arrays) that sum over disjoint parts
    of the data: data-parallel training adds them over ranks to get one process's result.
    """

    additive_state: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated (Keras's `reset_state`)."""

    @abstractmethod
    def update(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> None:
        """Accumulate one batch (Keras's `update_state`)."""

    @abstractmethod
    def result(self) -> float | list[float]:
        """The metric over everything accumulated since the last reset (a list for Precision
        and Recall with several thresholds, one value each, as Keras returns)."""

    def set_additive_state(self, values: Mapping[str, Any]) -> None:
        """Put sums back (summed over ranks, or saved in a checkpoint) keeping each attribute's
        type, shape and dtype, so the metric goes on as if it had summed them itself."""
        for key, value in values.items():
            old = getattr(self, key)
            if np.ndim(old):
                setattr(self, key, np.asarray(value, np.asarray(old).dtype).reshape(np.shape(old)))
            else:
                setattr(self, key, type(old)(np.asarray(value).reshape(-1)[0]))


def _same_rank(xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
    """Keras's squeeze_or_expand_to_same_rank for labels against outputs."""
    if t.ndim == p.ndim - 1 and p.shape[-1] == 1:
        return t[..., None], p
    if t.ndim == p.ndim + 1 and t.shape[-1] == 1:
        return t[..., 0], p
    return t, p


def _binary_accuracy(threshold: float) -> Callable[[Any, Array, Array], Array]:
    def fn(xp: Any, t: Array, p: Array) -> Array:
        t, p = _same_rank(xp, xp.asarray(t, dtype=p.dtype), p)
        return (t == (p > threshold)).astype(p.dtype)

    return fn


def _categorical_accuracy(xp: Any, t: Array, p: Array) -> Array:
    t = xp.asarray(t)
    return (xp.argmax(t, axis=-1) == xp.argmax(p, axis=-1)).astype(p.dtype)


def _sparse_categorical_accuracy(xp: Any, t: Array, p: Array) -> Array:
    t = xp.asarray(t)
    if t.ndim == p.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    return (t.astype(xp.int64) == xp.argmax(p, axis=-1)).astype(p.dtype)


def _top_k(k: int, sparse: bool) -> Callable[[Any, Array, Array], Array]:
    """In the top k when fewer than k scores are strictly above the true class's score (ties
    at the boundary count as in, as Keras's `in_top_k` does)."""

    def fn(xp: Any, t: Array, p: Array) -> Array:
        t = xp.asarray(t)
        if sparse:
            target = (t[..., 0] if t.ndim == p.ndim else t).astype(xp.int64)
        else:
            target = xp.argmax(t, axis=-1)
        score = xp.take_along_axis(p, target[..., None], axis=-1)
        return (xp.sum(p > score, axis=-1) < k).astype(p.dtype)

    return fn


def _absolute_error(xp: Any, t: Array, p: Array) -> Array:
    t, p = _same_rank(xp, xp.asarray(t, dtype=p.dtype), p)
    return xp.abs(t - p)


def _squared_error(xp: Any, t: Array, p: Array) -> Array:
    t, p = _same_rank(xp, xp.asarray(t, dtype=p.dtype), p)
    return (t - p) ** 2


class MeanMetric(Metric):
    """A running weighted mean over samples of a per-element function (MeanMetricWrapper):
    values are averaged within each sample, then over samples weighted by sample weight."""

    additive_state = ("total", "count")

    def __init__(
        self, name: str, fn: Callable[[Any, Array, Array], Array], root: bool = False
    ) -> None:
        self.fn = fn
        self.root = root
        super().__init__(name)

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> None:
        xp = backend_of(y_pred).xp
        values = self.fn(xp, y_true, y_pred)
        per_sample = values.reshape(values.shape[0], -1).mean(axis=1)
        if sample_weight is None:
            self.total += float(per_sample.sum())
            self.count += float(per_sample.shape[0])
            return
        w = xp.asarray(sample_weight, dtype=per_sample.dtype).reshape(-1)
        self.total += float((per_sample * w).sum())
        self.count += float(w.sum())

    def result(self) -> float:
        mean = self.total / self.count if self.count else 0.0
        return math.sqrt(mean) if self.root else mean


def _flat_weights(xp: Any, sample_weight: Array | None, p: Array) -> Array:
    if sample_weight is None:
        return xp.ones(p.size, dtype=p.dtype)
    w = xp.asarray(sample_weight, dtype=p.dtype)
    w = w.reshape(w.shape + (1,) * (p.ndim - w.ndim))
    return xp.broadcast_to(w, p.shape).reshape(-1)


def _paired(xp: Any, y_true: Array, y_pred: Array) -> tuple[Array, Array]:
    t, p = _same_rank(xp, xp.asarray(y_true), y_pred)
    if t.size != p.size:
        raise ValueError(
            f"labels of shape {tuple(y_true.shape)} do not match outputs of shape "
            f"{tuple(y_pred.shape)}"
        )
    return t, p


def _flat_pair(xp: Any, y_true: Array, y_pred: Array) -> tuple[Array, Array]:
    t, p = _paired(xp, y_true, y_pred)
    return t.reshape(-1) != 0, p.reshape(-1)


def _keep_top_k(xp: Any, p: Array, k: int) -> Array:
    """Keras's `_filter_top_k`: the k largest scores of each row stay, the rest become NEG_INF
    (ties go to the lower class index, as `top_k` picks them)."""
    order = xp.argsort(-p, axis=-1, kind="stable")
    rank = xp.argsort(order, axis=-1, kind="stable")
    return xp.where(rank < k, p, xp.asarray(NEG_INF, dtype=p.dtype))


def _evenly_spaced(thresholds: list[float]) -> bool:
    """Keras's `is_evenly_distributed_thresholds`: 3 or more, within 1e-7 of i / (n - 1)."""
    n = len(thresholds)
    even = np.arange(n, dtype=np.float32) / (n - 1) if n >= 3 else None
    return even is not None and bool(np.allclose(thresholds, even, atol=EPSILON))


class _Confusion(Metric):
    """Weighted true/false positive and negative counts at each threshold (`y_pred > t`).

    As in Keras: `top_k` keeps only each row's k largest scores as candidates (the others count
    as predicted negative), then `class_id` narrows labels and scores to that one class. The
    default threshold is 0.5, or NEG_INF with `top_k`, so the k kept scores are the positives.
    `thresholds` may be a list: the result is then a list, one value per threshold. Evenly
    spaced thresholds (0, 1/(n-1), ..., 1) take Keras's faster path: each score clipped to
    [0, 1] goes in bucket ceil(p * (n - 1)) - 1 (float32) and counts above the thresholds up
    to its bucket, so a score of 2.5 counts above every threshold but 1.0 (and above 1.0 with
    other thresholds, compared one by one).
    """

    default_name: str
    additive_state = ("tp", "fp", "fn", "tn")

    def __init__(
        self,
        thresholds: float | Sequence[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        given = [thresholds] if isinstance(thresholds, (int, float)) else thresholds
        for t in given or ():
            if not 0 <= t <= 1:
                raise ValueError(f"thresholds must be in [0, 1], got {t}")
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = [float(t) for t in given] if given else [default]
        self.evenly = _evenly_spaced(self.thresholds)
        self.top_k = top_k
        self.class_id = class_id
        super().__init__(name or self.default_name)

    def reset(self) -> None:
        size = len(self.thresholds)
        self.tp, self.fp = np.zeros(size), np.zeros(size)
        self.fn, self.tn = np.zeros(size), np.zeros(size)

    def _above(self, xp: Any, p: Array) -> list[Array]:
        """Per threshold, which scores count as predicted positive."""
        if not self.evenly:
            return [p > t for t in self.thresholds]
        n = len(self.thresholds)
        scaled = xp.clip(p.astype(xp.float32), 0, 1) * xp.float32(n - 1)
        bucket = xp.ceil(scaled) - xp.float32(1)
        return [bucket >= i for i in range(n)]

    def update(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> None:
        xp = backend_of(y_pred).xp
        t, p = _paired(xp, y_true, y_pred)
        if self.top_k is not None:
            p = _keep_top_k(xp, p, self.top_k)
        if self.class_id is not None:
            if p.ndim < 2:
                raise ValueError(
                    f"class_id needs outputs of shape (samples, classes), got {tuple(p.shape)}"
                )
            t, p = t[..., self.class_id, None], p[..., self.class_id, None]
        w = _flat_weights(xp, sample_weight, p)
        positive, p = t.reshape(-1) != 0, p.reshape(-1)
        for i, predicted in enumerate(self._above(xp, p)):
            self.tp[i] += float(w[positive & predicted].sum())
            self.fp[i] += float(w[~positive & predicted].sum())
            self.fn[i] += float(w[positive & ~predicted].sum())
            self.tn[i] += float(w[~positive & ~predicted].sum())

    def _values(self, part: np.ndarray, other: np.ndarray) -> float | list[float]:
        """part / (part + other) per threshold, 0 where both are 0: one value, or Keras's list."""
        values = [float(v) for v in _divide_no_nan(part, part + other)]
        return values[0] if len(values) == 1 else values


class Precision(_Confusion):
    """tp / (tp + fp), 0 when nothing was predicted positive."""

    default_name = "precision"

    def result(self) -> float | list[float]:
        return self._values(self.tp, self.fp)


class Recall(_Confusion):
    """tp / (tp + fn), 0 when there were no positives."""

    default_name = "recall"

    def result(self) -> float | list[float]:
        return self._values(self.tp, self.fn)


class AUC(Metric):
    """Keras's AUC: confusion counts at `num_thresholds` thresholds (i / (n - 1) for the inner
    ones, -eps and 1 + eps at the ends); ROC area by the trapezoidal rule, PR area by Keras's
    interpolation (Davis & Goadrich: precision varies along a hyperbola between thresholds)."""

    additive_state = ("tp", "fp", "fn", "tn")

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        from_logits: bool = False,
        name: str = "auc",
    ) -> None:
        self.curve = curve
        self.from_logits = from_logits
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = np.asarray([0.0 - EPSILON, *inner, 1.0 + EPSILON], dtype=np.float32)
        super().__init__(name)

    def reset(self) -> None:
        size = len(self.thresholds)
        self.tp, self.fp = np.zeros(size), np.zeros(size)
        self.fn, self.tn = np.zeros(size), np.zeros(size)

    def update(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> None:
        backend = backend_of(y_pred)
        xp = backend.xp
        positive, p = _flat_pair(xp, y_true, y_pred)
        if self.from_logits:
            p = 1 / (1 + xp.exp(-p))
        w = _flat_weights(xp, sample_weight, p)
        thresholds = xp.asarray(self.thresholds)
        # bucket b holds predictions above exactly the b lowest thresholds
        bucket = xp.searchsorted(thresholds, p.astype(thresholds.dtype), side="left")
        size = len(self.thresholds) + 1
        pos = backend.to_host(xp.bincount(bucket, weights=w * positive, minlength=size))
        neg = backend.to_host(xp.bincount(bucket, weights=w * ~positive, minlength=size))
        above_pos = np.cumsum(pos[::-1])[::-1][1:]
        above_neg = np.cumsum(neg[::-1])[::-1][1:]
        self.tp += above_pos
        self.fp += above_neg
        self.fn += pos.sum() - above_pos
        self.tn += neg.sum() - above_neg

    def result(self) -> float:
        if self.curve == "PR":
            return self._interpolated_pr_auc()
        tpr = _divide_no_nan(self.tp, self.tp + self.fn)
        fpr = _divide_no_nan(self.fp, self.fp + self.tn)
        heights = (tpr[:-1] + tpr[1:]) / 2.0
        return float(np.sum((fpr[:-1] - fpr[1:]) * heights))

    def _interpolated_pr_auc(self) -> float:
        tp, predicted = self.tp, self.tp + self.fp
        dtp = tp[:-1] - tp[1:]
        slope = _divide_no_nan(dtp, np.maximum(predicted[:-1] - predicted[1:], 0))
        intercept = tp[1:] - slope * predicted[1:]
        both = (predicted[:-1] > 0) & (predicted[1:] > 0)
        ratio = np.where(both, _divide_no_nan(predicted[:-1], np.maximum(predicted[1:], 0)), 1.0)
        increments = _divide_no_nan(
            slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + self.fn[1:], 0)
        )
        return float(np.sum(increments))


def _divide_no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


_MEAN_FUNCTIONS: dict[str, tuple[Callable[[Any, Array, Array], Array], bool]] = {
    "binary_accuracy": (_binary_accuracy(0.5), False),
    "categorical_accuracy": (_categorical_accuracy, False),
    "sparse_categorical_accuracy": (_sparse_categorical_accuracy, False),
    "mean_absolute_error": (_absolute_error, False),
    "mean_squared_error": (_squared_error, False),
    "root_mean_squared_error": (_squared_error, True),
}


class _KerasMeanMetric(MeanMetric):
    """Keras's metric classes (`keras.metrics.BinaryAccuracy()` ...): a mean metric named and
    configured as Keras names it, whose config is its spec form so a saved model records it."""

    kind: str

    def __init__(self, name: str | None = None, dtype: Any = None, **settings: Any) -> None:
        self.config: dict[str, Any] = {"type": self.kind, **settings}
        fn, root = self._function(**settings)
        super().__init__(name or self.kind, fn, root)

    def _function(self) -> tuple[Callable[[Any, Array, Array], Array], bool]:
        return _MEAN_FUNCTIONS[self.kind]

    def get_config(self) -> dict[str, Any]:
        return {**self.config, "name": self.name}


class BinaryAccuracy(_KerasMeanMetric):
    kind = "binary_accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None, threshold: float = 0.5) -> None:
        super().__init__(name, dtype, threshold=threshold)

    def _function(
        self, threshold: float = 0.5
    ) -> tuple[Callable[[Any, Array, Array], Array], bool]:
        return _binary_accuracy(threshold), False


class CategoricalAccuracy(_KerasMeanMetric):
    kind = "categorical_accuracy"


class SparseCategoricalAccuracy(_KerasMeanMetric):
    kind = "sparse_categorical_accuracy"


class MeanAbsoluteError(_KerasMeanMetric):
    kind = "mean_absolute_error"


class MeanSquaredError(_KerasMeanMetric):
    kind = "mean_squared_error"


class RootMeanSquaredError(_KerasMeanMetric):
    kind = "root_mean_squared_error"


class _TopK(_KerasMeanMetric):
    sparse: bool

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name, dtype, k=k)

    def _function(self, k: int = 5) -> tuple[Callable[[Any, Array, Array], Array], bool]:
        return _top_k(k, self.sparse), False


class TopKCategoricalAccuracy(_TopK):
    kind = "top_k_categorical_accuracy"
    sparse = False


class SparseTopKCategoricalAccuracy(_TopK):
    kind = "sparse_top_k_categorical_accuracy"
    sparse = True


_LONG_NAMES = {
    "mae": "mean_absolute_error",
    "mse": "mean_squared_error",
    "rmse": "root_mean_squared_error",
}


# Metrics whose spec entry carries settings; the others are Keras mean metrics built by name.
_CONFIGURED: dict[str, Callable[[Any, str], Metric]] = {
    "binary_accuracy": lambda c, name: BinaryAccuracy(name, threshold=c.threshold),
    "top_k_categorical_accuracy": lambda c, name: TopKCategoricalAccuracy(c.k, name),
    "sparse_top_k_categorical_accuracy": lambda c, name: SparseTopKCategoricalAccuracy(c.k, name),
    "precision": lambda c, name: Precision(c.thresholds, c.top_k, c.class_id, name),
    "recall": lambda c, name: Recall(c.thresholds, c.top_k, c.class_id, name),
    "auc": lambda c, name: AUC(c.num_thresholds, c.curve, c.from_logits, name),
}
_BY_NAME: dict[str, type[_KerasMeanMetric]] = {
    cls.kind: cls
    for cls in (
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        MeanAbsoluteError,
        MeanSquaredError,
        RootMeanSquaredError,
    )
}


def _build(config: Any, name: str) -> Metric:
    kind = _LONG_NAMES.get(config.type, config.type)
    if kind in _CONFIGURED:
        return _CONFIGURED[kind](config, name)
    if kind in ("accuracy", "acc"):
        raise ValueError(
            f"{kind!r} depends on the label and output shapes; resolve it with "
            "engine.metrics.resolve(name, y_true_shape, y_pred_shape, loss_name)"
        )
    return _BY_NAME[kind](name)


_CONFIG_ADAPTER: TypeAdapter[Any] = TypeAdapter(MetricConfig)


def names() -> list[str]:
    """Every metric name a spec may use."""
    return sorted(
        {"accuracy", "acc", "precision", "recall", "auc"}
        | {"top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"}
        | set(_MEAN_FUNCTIONS)
        | set(_LONG_NAMES)
    )


def _config(spec: Any) -> Any:
    if isinstance(spec, str):
        if spec.lower() not in names():
            raise ValueError(f"unknown metric {spec!r}; expected one of {', '.join(names())}")
        return _CONFIG_ADAPTER.validate_python({"type": spec.lower(), "name": spec})
    return _CONFIG_ADAPTER.validate_python(spec)


def get(spec: MetricSpec | str | dict[str, Any] | Metric) -> Metric:
    """A fresh metric from a name or a config map (`accuracy` needs `resolve`)."""
    if isinstance(spec, Metric):
        return spec
    config = _config(spec)
    return _build(config, config.name or config.type)


def resolve(
    spec: MetricSpec | str | dict[str, Any] | Metric,
    y_true_shape: tuple[int | None, ...],
    y_pred_shape: tuple[int | None, ...],
    loss_name: str | None = None,
) -> Metric:
    """Like `get`, but turns `accuracy`/`acc` into the accuracy Keras 3 would pick.

    Binary when the output has one unit or the loss is binary cross-entropy; sparse
    categorical when labels have one dimension fewer than a multi-unit output (or a last
    dimension of 1); categorical otherwise. The metric keeps the name that was written.
    """
    if isinstance(spec, Metric):
        return spec
    config = _config(spec)
    name = config.name or config.type
    if config.type not in ("accuracy", "acc"):
        return _build(config, name)
    units = y_pred_shape[-1] if y_pred_shape else 1
    binary = units == 1 or (
        loss_name is not None and canonical_name(loss_name) == "binary_crossentropy"
    )
    sparse = len(y_true_shape) < len(y_pred_shape) or (bool(y_true_shape) and y_true_shape[-1] == 1)
    kind = "binary" if binary else "sparse_categorical" if sparse else "categorical"
    return MeanMetric(name, _MEAN_FUNCTIONS[f"{kind}_accuracy"][0])
