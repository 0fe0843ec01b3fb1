"""Softmax, log-softmax and the fused, numerically stable cross-entropies on logits.

The fused losses compute the loss and its gradient from one shifted log-softmax, so large
logits neither overflow nor lose precision, and the backward pass is one subtraction.
"""

from __future__ import annotations

from typing import Any

from engine import activations as _activations
from engine import backend as _backend
from engine.autodiff import record
from engine.ops._core import Array, floating, like, tensor
from engine.tensor import Tensor

_SOFTMAX = _activations.get("softmax")
_LOG_SOFTMAX = _activations.get("log_softmax")
_SIGMOID = _activations.get("sigmoid")


def softmax(logits: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the maximum for stability."""
    t = floating(tensor(logits), "softmax")
    data = t.data
    y = Tensor(_SOFTMAX.forward(data, axis=axis))
    return record(y, (t,), lambda g: (_SOFTMAX.backward(data, y.data, g, axis=axis),))


def log_softmax(logits: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`, never overflowing."""
    t = floating(tensor(logits), "log_softmax")
    data = t.data
    y = Tensor(_LOG_SOFTMAX.forward(data, axis=axis))
    return record(y, (t,), lambda g: (_LOG_SOFTMAX.backward(data, y.data, g, axis=axis),))


def softmax_cross_entropy_with_logits(labels: Any, logits: Any, axis: int = -1) -> Tensor:
    """-sum(labels * log_softmax(logits)) along `axis`: one loss per example.

    Shapes: labels and logits (batch, classes) -> (batch,). Both get gradients.
    """
    z = floating(tensor(logits), "softmax_cross_entropy_with_logits")
    p = like(labels, z)
    xp = z.backend.xp
    log_probs = _LOG_SOFTMAX.forward(z.data, axis=axis)
    labels_data = p.data
    y = Tensor(-(labels_data * log_probs).sum(axis=axis))

    def vjp(g: Array) -> tuple[Array, Array]:
        ge = xp.expand_dims(g, axis)
        probs = xp.exp(log_probs)
        total = labels_data.sum(axis=axis, keepdims=True)
        return -ge * log_probs, ge * (probs * total - labels_data)

    return record(y, (p, z), vjp)


def sparse_softmax_cross_entropy_with_logits(labels: Any, logits: Any) -> Tensor:
    """-log_softmax(logits)[label] over the last axis, for integer class labels.

    Shapes: labels (batch,) int, logits (batch, classes) -> (batch,).
    """
    z = floating(tensor(logits), "sparse_softmax_cross_entropy_with_logits")
    xp = z.backend.xp
    raw = labels.data if isinstance(labels, Tensor) else _backend.CPU.asarray(labels)
    index = _backend.to_backend(raw, z.backend)
    if index.dtype.kind not in "iu":
        raise TypeError(f"sparse labels must be integers; got {index.dtype}")
    if tuple(index.shape) != z.shape[:-1]:
        raise ValueError(f"labels of shape {tuple(index.shape)} do not match logits {z.shape}")
    log_probs = _LOG_SOFTMAX.forward(z.data, axis=-1)
    column = index[..., None].astype("int64")
    picked = xp.take_along_axis(log_probs, column, axis=-1)
    y = Tensor(-picked[..., 0])

    def vjp(g: Array) -> tuple[Array]:
        onehot = xp.arange(log_probs.shape[-1]) == column
        return ((xp.exp(log_probs) - onehot) * g[..., None],)

    return record(y, (z,), vjp)


def sigmoid_cross_entropy_with_logits(labels: Any, logits: Any) -> Tensor:
    """Element-wise max(x, 0) - x * z + log(1 + exp(-|x|)) for logits x and labels z."""
    x = floating(tensor(logits), "sigmoid_cross_entropy_with_logits")
    z = like(labels, x)
    xp = x.backend.xp
    xd, zd = x.data, z.data
    y = Tensor(xp.maximum(xd, 0) - xd * zd + xp.log1p(xp.exp(-xp.abs(xd))))
    return record(y, (z, x), lambda g: (-g * xd, g * (_SIGMOID.forward(xd) - zd)))
