"""Keras 3's losses as fused forward/backward pairs on raw backend arrays.

`forward(y_true, y_pred, sample_weight)` returns Keras's reduced value ("sum_over_batch_size":
per-sample losses times sample weights, summed, divided by the number of per-sample losses)
and a cache; `backward(cache)` returns d value / d y_pred. Every formula is Keras's, including
its clipping of probabilities to [1e-7, 1 - 1e-7], so values and gradients match Keras's
autodiff (gradients are zero where a clip is active, as the clip's own gradient is).

Cross-entropies on probabilities also offer `logits_backward(cache)`: the gradient with respect
to the logits that produced `y_pred` through `fusable_activation` (softmax or sigmoid), so the
training loop can skip the activation's Jacobian. It equals the composite gradient.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, TypeAdapter

import engine.native as native
from engine import device_checks
from engine.backend import backend_of
from engine.config.losses import LossConfig, LossSpec

EPSILON = 1e-7  # keras.config.epsilon()
Array = Any

_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "logcosh": "log_cosh",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
}


def canonical_name(name: str) -> str:
    """Keras's name for a loss (`mse` -> `mean_squared_error`)."""
    key = name.lower()
    return _ALIASES.get(key, key)


@dataclass
class _Cache:
    inner: Any
    upstream: Any  # d value / d per-sample loss (scalar or per-sample array)
    shape: tuple[int, ...]


class Loss(ABC):
    """A loss: Keras's per-sample formula, reduction and exact gradient.

    Subclasses give `_values(t, p) -> (per-sample losses, cache)` reducing over `axis`, and
    `_grad(cache, upstream) -> d/dp` where `upstream` is d value / d per-sample loss.
    """

    name: ClassVar[str]
    fusable_activation: str | None = None

    def __init__(self, config: BaseModel | None = None, **kwargs: Any) -> None:
        """From a config model (the spec's form) or Keras's keyword arguments, as in
        `BinaryCrossentropy(from_logits=True)`."""
        if config is None:
            config = _CONFIG_ADAPTER.validate_python({"type": self.name, **kwargs})
        elif kwargs:
            raise TypeError(f"{type(self).__name__} takes a config or keyword arguments, not both")
        self.config: Any = config
        self.axis: int = getattr(config, "axis", -1)

    def forward(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> tuple[Array, _Cache]:
        """Keras's reduced loss (0-d array of y_pred's dtype) and the cache for `backward`."""
        xp = backend_of(y_pred).xp
        shape = tuple(y_pred.shape)
        t, p = self._align(xp, y_true, y_pred)
        losses, inner = self._values(xp, t, p)
        count = max(int(losses.size), 1)
        if sample_weight is None:
            value = losses.sum() / count
            upstream: Any = 1.0 / count
        else:
            weights = _broadcast_weights(xp, sample_weight, losses, p.dtype)
            value = (losses * weights).sum() / count
            upstream = weights / count
        return xp.asarray(value, dtype=p.dtype), _Cache(inner, upstream, shape)

    def backward(self, cache: _Cache) -> Array:
        """d value / d y_pred, shaped like y_pred."""
        return self._grad(cache.inner, cache.upstream).reshape(cache.shape)

    def forward_logits_backward(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> tuple[Array, Array]:
        """`forward`'s value and `logits_backward`'s gradient in one call, which a loss may
        compute in one pass."""
        value, cache = self.forward(y_true, y_pred, sample_weight)
        return value, self.logits_backward(cache)

    def logits_backward(self, cache: _Cache) -> Array:
        """d value / d logits when y_pred = fusable_activation(logits) (see module docstring)."""
        raise ValueError(
            f"{self.name} has no fused logits gradient here (fusable_activation is None); "
            "use backward"
        )

    def get_config(self) -> dict[str, Any]:
        """The spec form of this loss (`type` plus its arguments)."""
        return {**self.config.model_dump(), "type": self.name}

    def _align(self, xp: Any, y_true: Array, y_pred: Array) -> tuple[Array, Array]:
        """Match label and output ranks as Keras does; rank-1 outputs become (N, 1)."""
        p = y_pred if y_pred.ndim > 1 else y_pred.reshape(-1, 1)
        t = xp.asarray(y_true, dtype=p.dtype)
        if t.ndim == p.ndim - 1 and p.shape[-1] == 1:
            t = t[..., None]
        elif t.ndim == p.ndim + 1 and t.shape[-1] == 1:
            t = t[..., 0]
        if t.shape != p.shape:
            raise ValueError(
                f"{self.name}: labels of shape {tuple(y_true.shape)} do not match outputs of "
                f"shape {tuple(y_pred.shape)}"
            )
        return t, p

    @abstractmethod
    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        """Per-sample losses (reduced over `axis`) and what `_grad` needs."""

    @abstractmethod
    def _grad(self, cache: Any, upstream: Any) -> Array:
        """d value / d p given d value / d per-sample loss."""


def _broadcast_weights(xp: Any, sample_weight: Array, losses: Array, dtype: Any) -> Array:
    w = xp.asarray(sample_weight, dtype=dtype)
    if w.ndim == losses.ndim + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    w = w.reshape(w.shape + (1,) * (losses.ndim - w.ndim))
    return xp.broadcast_to(w, losses.shape)


def _expand(upstream: Any, axis: int) -> Any:
    """Per-sample upstream gradient with the reduced axis put back (scalars pass)."""
    if isinstance(upstream, float):
        return upstream
    return backend_of(upstream).xp.expand_dims(upstream, axis)


def _softplus(xp: Any, x: Array) -> Array:
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(xp: Any, x: Array) -> Array:
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class _MeanLoss(Loss):
    """A loss that averages an elementwise term over `axis` (Keras's `mean(..., axis=-1)`)."""

    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        terms, derivative = self._terms(xp, t, p)
        size = p.shape[self.axis]
        return terms.sum(axis=self.axis) / size, (derivative, size)

    def _grad(self, cache: Any, upstream: Any) -> Array:
        derivative, size = cache
        return derivative * (_expand(upstream, self.axis) / size)

    @abstractmethod
    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        """The elementwise loss terms and their derivatives with respect to p."""


class MeanSquaredError(_MeanLoss):
    """mean((t - p)^2)."""

    name = "mean_squared_error"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        d = p - t
        return d * d, 2 * d


class MeanAbsoluteError(_MeanLoss):
    """mean(|t - p|)."""

    name = "mean_absolute_error"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        d = p - t
        return xp.abs(d), xp.sign(d)


class MeanAbsolutePercentageError(_MeanLoss):
    """100 * mean(|t - p| / max(|t|, eps))."""

    name = "mean_absolute_percentage_error"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        scale = 100 / xp.maximum(xp.abs(t), EPSILON)
        d = p - t
        return xp.abs(d) * scale, xp.sign(d) * scale


class MeanSquaredLogarithmicError(_MeanLoss):
    """mean((log(max(p, eps) + 1) - log(max(t, eps) + 1))^2)."""

    name = "mean_squared_logarithmic_error"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        shifted = xp.maximum(p, EPSILON) + 1
        d = xp.log(shifted) - xp.log(xp.maximum(t, EPSILON) + 1)
        return d * d, 2 * d * (p >= EPSILON) / shifted


class Huber(_MeanLoss):
    """mean(0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2), e = p - t."""

    name = "huber"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        delta = self.config.delta
        e = p - t
        a = xp.abs(e)
        terms = xp.where(a <= delta, 0.5 * e * e, delta * a - 0.5 * delta * delta)
        return terms, xp.clip(e, -delta, delta)


class LogCosh(_MeanLoss):
    """mean(x + softplus(-2x) - log 2), x = p - t (a stable log(cosh(x)))."""

    name = "log_cosh"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        x = p - t
        return x + _softplus(xp, -2 * x) - math.log(2.0), xp.tanh(x)


def _hinge_labels(xp: Any, t: Array) -> Array:
    """Keras turns 0/1 labels into -1/1 when every label is 0 or 1."""
    return 2 * t - 1 if bool(xp.all((t == 0) | (t == 1))) else t


class Hinge(_MeanLoss):
    """mean(max(1 - t p, 0)) with 0/1 labels mapped to -1/1."""

    name = "hinge"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        t = _hinge_labels(xp, t)
        margin = 1 - t * p
        return xp.maximum(margin, 0), -t * (margin > 0)


class SquaredHinge(_MeanLoss):
    """mean(max(1 - t p, 0)^2) with 0/1 labels mapped to -1/1."""

    name = "squared_hinge"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        t = _hinge_labels(xp, t)
        margin = xp.maximum(1 - t * p, 0)
        return margin * margin, -2 * t * margin


class Poisson(_MeanLoss):
    """mean(p - t log(p + eps))."""

    name = "poisson"

    def _terms(self, xp: Any, t: Array, p: Array) -> tuple[Array, Array]:
        shifted = p + EPSILON
        return p - t * xp.log(shifted), 1 - t / shifted


class KLDivergence(Loss):
    """sum(t log(t / p)) over the last axis, with t and p clipped to [eps, 1]."""

    name = "kl_divergence"

    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        tc = xp.clip(t, EPSILON, 1)
        pc = xp.clip(p, EPSILON, 1)
        inside = (p >= EPSILON) & (p <= 1)
        return (tc * xp.log(tc / pc)).sum(axis=-1), -(tc / pc) * inside

    def _grad(self, cache: Any, upstream: Any) -> Array:
        return cache * _expand(upstream, -1)


class CosineSimilarity(Loss):
    """-sum(l2_normalize(t) * l2_normalize(p)) over `axis`; Keras normalizes by
    1 / sqrt(max(sum(x^2), eps))."""

    name = "cosine_similarity"

    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        axis = self.axis
        tn = t / xp.sqrt(xp.maximum((t * t).sum(axis=axis, keepdims=True), EPSILON))
        squares = (p * p).sum(axis=axis, keepdims=True)
        inv_norm = 1 / xp.sqrt(xp.maximum(squares, EPSILON))
        pn = p * inv_norm
        dot = (tn * pn).sum(axis=axis, keepdims=True)
        grad = -inv_norm * (tn - (squares > EPSILON) * pn * dot)
        return -xp.squeeze(dot, axis=axis), grad

    def _grad(self, cache: Any, upstream: Any) -> Array:
        return cache * _expand(upstream, self.axis)


class BinaryCrossentropy(Loss):
    """mean(-(t log p + (1 - t) log(1 - p))) over `axis` with p clipped to [eps, 1 - eps], or
    from logits z the stable `softplus(z) - t z` (Keras's log-sigmoid form); labels are
    smoothed toward 0.5 first. Gradients are computed only when asked for."""

    name = "binary_crossentropy"

    def __init__(self, config: BaseModel | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.from_logits: bool = self.config.from_logits
        self.fusable_activation = None if self.from_logits else "sigmoid"

    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        smoothing = self.config.label_smoothing
        if smoothing:
            t = t * (1 - smoothing) + 0.5 * smoothing
        size = p.shape[self.axis]
        if self.from_logits:
            terms = _softplus(xp, p) - t * p
            return terms.sum(axis=self.axis) / size, (xp, t, p, None, size)
        pc = xp.clip(p, EPSILON, 1 - EPSILON)
        terms = t * xp.log(pc) + (1 - t) * xp.log(1 - pc)
        return terms.sum(axis=self.axis) / -size, (xp, t, p, pc, size)

    def _grad(self, cache: Any, upstream: Any) -> Array:
        xp, t, p, pc, size = cache
        scale = _expand(upstream, self.axis) / size
        if pc is None:
            return (_sigmoid(xp, p) - t) * scale
        # d/dp of the clipped form is (pc - t) / (pc (1 - pc)) inside the clip, 0 outside
        return (pc - t) / (pc * (1 - pc)) * (pc == p) * scale

    def logits_backward(self, cache: _Cache) -> Array:
        _, t, p, pc, size = cache.inner
        if pc is None:
            return super().logits_backward(cache)
        scale = _expand(cache.upstream, self.axis) / size
        return ((pc - t) * (pc == p) * scale).reshape(cache.shape)


class CategoricalCrossentropy(Loss):
    """-sum(t log q) over `axis`: from probabilities q = clip(p / sum(p), eps, 1 - eps), from
    logits q = softmax(p) by a stable log-sum-exp; labels are smoothed toward 1 / classes first.
    Gradients are computed only when asked for."""

    name = "categorical_crossentropy"

    def __init__(self, config: BaseModel | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.from_logits: bool = self.config.from_logits
        self.fusable_activation = None if self.from_logits or self.axis != -1 else "softmax"

    def _align(self, xp: Any, y_true: Array, y_pred: Array) -> tuple[Array, Array]:
        if y_pred.ndim < 2:
            raise ValueError(
                "categorical_crossentropy needs outputs of shape (batch, classes); "
                f"got {tuple(y_pred.shape)}"
            )
        return super()._align(xp, y_true, y_pred)

    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        axis = self.axis
        smoothing = self.config.label_smoothing
        if smoothing:
            t = t * (1 - smoothing) + smoothing / p.shape[axis]
        if self.from_logits:
            shifted = p - p.max(axis=axis, keepdims=True)
            exp = xp.exp(shifted)
            total = exp.sum(axis=axis, keepdims=True)
            log_q = shifted - xp.log(total)
            return -(t * log_q).sum(axis=axis), (xp, t, p, exp / total, None, None)
        total = p.sum(axis=axis, keepdims=True)
        q = p / total
        qc = xp.clip(q, EPSILON, 1 - EPSILON)
        return -(t * xp.log(qc)).sum(axis=axis), (xp, t, p, q, qc, total)

    def _grad(self, cache: Any, upstream: Any) -> Array:
        xp, t, p, q, qc, total = cache
        axis = self.axis
        if qc is None:
            grad = q * t.sum(axis=axis, keepdims=True) - t
            return grad * _expand(upstream, axis)
        grad_q = -(t * (qc == q)) / qc
        grad = (grad_q - (grad_q * q).sum(axis=axis, keepdims=True)) / total
        return grad * _expand(upstream, axis)

    def logits_backward(self, cache: _Cache) -> Array:
        xp, t, p, q, qc, _ = cache.inner
        if qc is None or self.axis != -1:
            return super().logits_backward(cache)
        kept = t * (qc == q)
        grad = p * kept.sum(axis=-1, keepdims=True) - kept
        return (grad * _expand(cache.upstream, -1)).reshape(cache.shape)


@dataclass
class _SparseCache:
    xp: Any
    probs: Array  # (rows, classes): the outputs, or softmax(logits) when from_logits
    rows: Array
    labels: Array
    q: Array | None  # normalized probability of the label (None from logits)
    qc: Array | None
    total: Array | None
    shape: tuple[int, ...]  # the outputs' shape with the class axis moved last


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy against integer class ids of shape (N,) or (N, 1), computed by
    gathering the label's probability rather than building one-hot rows."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, config: BaseModel | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.from_logits: bool = self.config.from_logits
        self.fusable_activation = None if self.from_logits or self.axis != -1 else "softmax"

    def _align(self, xp: Any, y_true: Array, y_pred: Array) -> tuple[Array, Array]:
        labels = xp.asarray(y_true)
        if labels.ndim == y_pred.ndim and labels.shape[self.axis] == 1:
            labels = xp.squeeze(labels, axis=self.axis)
        expected = tuple(s for i, s in enumerate(y_pred.shape) if i != self.axis % y_pred.ndim)
        if y_pred.ndim < 2 or tuple(labels.shape) != expected:
            raise ValueError(
                f"sparse_categorical_crossentropy: labels of shape {tuple(y_true.shape)} do not "
                f"match outputs of shape {tuple(y_pred.shape)}; expected class ids of shape "
                f"{expected} or {expected + (1,)}"
            )
        classes = y_pred.shape[self.axis]
        if labels.size:
            labels = _checked_labels(xp, labels, classes)
        last = self.axis % y_pred.ndim == y_pred.ndim - 1
        outputs = y_pred if last else xp.moveaxis(y_pred, self.axis, -1)
        return labels.astype(xp.int64, copy=False), outputs

    def _values(self, xp: Any, t: Array, p: Array) -> tuple[Array, Any]:
        lead = p.shape[:-1]
        probs = p.reshape(-1, p.shape[-1])
        labels = t.reshape(-1)
        rows = xp.arange(labels.shape[0])
        if self.from_logits:
            top = probs.max(axis=1, keepdims=True)
            exp = xp.exp(probs - top)
            total = exp.sum(axis=1)
            losses = xp.log(total) + top[:, 0] - probs[rows, labels]
            softmax = exp / total[:, None]
            cache = _SparseCache(xp, softmax, rows, labels, None, None, None, p.shape)
            return losses.reshape(lead), cache
        total = probs.sum(axis=1)
        # a row summing to 0 gives NaN (0 / 0) or +-inf, as in Keras, which the clip makes a
        # finite loss or keeps NaN; without a warning, as the compiled pass and Keras give none
        with np.errstate(invalid="ignore", divide="ignore"):
            q = probs[rows, labels] / total
        qc = xp.clip(q, EPSILON, 1 - EPSILON)
        cache = _SparseCache(xp, probs, rows, labels, q, qc, total, p.shape)
        return -xp.log(qc).reshape(lead), cache

    def _grad(self, c: _SparseCache, upstream: Any) -> Array:
        up = _flat_upstream(upstream)
        if c.q is None:
            grad = c.probs * (up if isinstance(up, float) else up[:, None])
            grad[c.rows, c.labels] -= up
        else:
            assert c.qc is not None and c.total is not None
            # only the label's normalized probability enters the loss
            grad_q = -((c.qc == c.q) / c.qc) * up
            grad = c.xp.empty_like(c.probs)
            grad[...] = (-(grad_q * c.q) / c.total)[:, None]
            grad[c.rows, c.labels] += grad_q / c.total
        grad = grad.reshape(c.shape)
        return grad if self.axis == -1 else c.xp.moveaxis(grad, -1, self.axis)

    def forward_logits_backward(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> tuple[Array, Array]:
        """One compiled pass (`native.sparse_xent_rows`) for 2-D probabilities on the host
        without sample weights; the composite elsewhere. The pass replaces about twenty small
        NumPy calls (label checks, gathers, clip, masks, a scatter) in every training step."""
        fused = None
        if sample_weight is None and not self.from_logits and y_pred.ndim == 2:
            labels = y_true
            if getattr(labels, "ndim", 0) == 2 and labels.shape[1] == 1:
                labels = labels.reshape(-1)
            count = max(int(y_pred.shape[0]), 1)
            fused = native.sparse_xent_rows(y_pred, labels, EPSILON, 1 - EPSILON, 1.0 / count)
        if fused is None:
            return super().forward_logits_backward(y_true, y_pred, sample_weight)
        qc, grad = fused
        xp = backend_of(y_pred).xp
        losses = xp.negative(xp.log(qc, out=qc), out=qc)
        return xp.asarray(losses.sum() / count, dtype=y_pred.dtype), grad

    def logits_backward(self, cache: _Cache) -> Array:
        c: _SparseCache = cache.inner
        if c.q is None or self.axis != -1:
            return super().logits_backward(cache)
        kept = (c.qc == c.q).astype(c.probs.dtype) * _flat_upstream(cache.upstream)
        grad = c.probs * kept[:, None]
        grad[c.rows, c.labels] -= kept
        return grad.reshape(cache.shape)


def _flat_upstream(upstream: Any) -> Any:
    return upstream if isinstance(upstream, float) else upstream.reshape(-1)


_CLASSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        Huber,
        LogCosh,
        Hinge,
        SquaredHinge,
        Poisson,
        KLDivergence,
        CosineSimilarity,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}
_CONFIG_ADAPTER: TypeAdapter[Any] = TypeAdapter(LossConfig)


def names() -> list[str]:
    """Every loss name a spec may use, aliases included."""
    return sorted({*_CLASSES, *_ALIASES})


def get(spec: LossSpec | str | dict[str, Any] | Loss) -> Loss:
    """A loss from a name, a config map or a config model (a Loss passes through)."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        name = canonical_name(spec)
        if name not in _CLASSES:
            raise ValueError(f"unknown loss {spec!r}; expected one of {', '.join(names())}")
        spec = {"type": name}
    config = _CONFIG_ADAPTER.validate_python(spec)
    return _CLASSES[canonical_name(config.type)](config)


def _checked_labels(xp: Any, labels: Array, classes: int) -> Array:
    """The class ids, checked to lie in [0, classes); on a device the check is deferred
    (engine.device_checks) and the ids clipped meanwhile, so the step needs no sync."""

    def message(lo: Array, hi: Array) -> str:
        return (
            f"sparse_categorical_crossentropy: class ids must be in [0, {classes}); got "
            f"values from {int(lo)} to {int(hi)}"
        )

    return device_checks.in_range(xp, labels, classes, message)
