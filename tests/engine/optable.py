"""The op table: every differentiable op, with input domains, a NumPy or torch reference.

Each row's `fn` takes engine tensors and returns one tensor. Non-differentiable arguments
(indices, labels, masks) are fixed inside `fn` as host arrays, which the ops must move to the
device themselves. `torch_fn(torch, *tensors)` computes the same thing in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import engine as en


@dataclass(frozen=True)
class In:
    """One differentiable input: a shape and a value domain."""

    shape: tuple[int, ...]
    lo: float = -1.0
    hi: float = 1.0
    away: float = 0.0  # magnitudes at least this (random sign): keeps kinks out of reach


@dataclass(frozen=True)
class OpCase:
    id: str
    fn: Callable[..., Any]
    inputs: tuple[In, ...]
    numpy_fn: Callable[..., np.ndarray] | None = None
    torch_fn: Callable[..., Any] | None = None
    rtol: float = 1e-5
    atol: float = 1e-6


def sample(rng: np.random.Generator, spec: In, dtype: Any = np.float64) -> np.ndarray:
    """Values of one input in its domain."""
    if spec.away:
        mag = rng.uniform(spec.away, spec.hi, spec.shape)
        sign = rng.choice([-1.0, 1.0], spec.shape) if spec.lo < 0 else 1.0
        return (mag * sign).astype(dtype)
    return rng.uniform(spec.lo, spec.hi, spec.shape).astype(dtype)


def _chw(t: Any, nd: int) -> Any:
    """channels-last -> torch's channels-first."""
    return t.permute(0, nd + 1, *range(1, nd + 1))


def _hwc(t: Any, nd: int) -> Any:
    return t.permute(0, *range(2, nd + 2), 1)


def _torch_conv(T: Any, x: Any, w: Any, nd: int, stride: int, dilation: int, groups: int) -> Any:
    conv = getattr(T.nn.functional, f"conv{nd}d")
    kernel = w.permute(nd + 1, nd, *range(nd))
    return _hwc(conv(_chw(x, nd), kernel, stride=stride, dilation=dilation, groups=groups), nd)


def _torch_pool(T: Any, x: Any, nd: int, mode: str, k: int, s: int) -> Any:
    pool = getattr(T.nn.functional, f"{mode}_pool{nd}d")
    return _hwc(pool(_chw(x, nd), k, s), nd)


X = In((3, 4))
POS = In((3, 4), 0.2, 2.0)
AWAY = In((3, 4), -2.0, 2.0, away=0.1)
LABELS = np.array([2, 0, 3])
GATHER = np.array([[0, 2], [2, 1]])
MASK = np.array([[True, False, True, False]])
SOFT = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
HALF = np.array([[0.0, 1.0, 1.0, 0.0]] * 3)


def _np_logsumexp(x: np.ndarray, axis: Any) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m, axis=axis)


def _np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x - np.expand_dims(_np_logsumexp(x, axis), axis)


ROWS: list[OpCase] = [
    # element-wise binary, with broadcasting
    OpCase("add", lambda a, b: a + b, (In((3, 4)), In((4,))), np.add, lambda T, a, b: a + b),
    OpCase(
        "subtract",
        lambda a, b: a - b,
        (In((2, 1, 3)), In((4, 3))),
        np.subtract,
        lambda T, a, b: a - b,
    ),
    OpCase(
        "multiply",
        lambda a, b: a * b,
        (In((3, 1)), In((1, 4))),
        np.multiply,
        lambda T, a, b: a * b,
    ),
    OpCase(
        "divide",
        lambda a, b: a / b,
        (X, In((3, 1), 0.5, 2.0)),
        np.divide,
        lambda T, a, b: a / b,
    ),
    OpCase(
        "power",
        lambda a, b: a**b,
        (POS, In((4,))),
        np.power,
        lambda T, a, b: a**b,
    ),
    OpCase(
        "mod",
        lambda a, b: en.mod(a, b),
        (In((3, 4), 2.2, 2.8), In((4,), 1.0, 1.05)),
        np.mod,
        lambda T, a, b: T.remainder(a, b),
    ),
    OpCase(
        "maximum", en.maximum, (In((3, 4)), In((4,))), np.maximum, lambda T, a, b: T.maximum(a, b)
    ),
    OpCase(
        "minimum", en.minimum, (In((3, 4)), In((3, 1))), np.minimum, lambda T, a, b: T.minimum(a, b)
    ),
    OpCase(
        "squared_difference",
        en.squared_difference,
        (X, In((4,))),
        lambda a, b: (a - b) ** 2,
        lambda T, a, b: (a - b) ** 2,
    ),
    OpCase(
        "scalar_rsub",
        lambda a: 2.0 - a,
        (X,),
        lambda a: 2.0 - a,
        lambda T, a: 2.0 - a,
    ),
    OpCase(
        "where",
        lambda a, b: en.where(MASK, a, b),
        (X, In((3, 1))),
        lambda a, b: np.where(MASK, a, b),
        lambda T, a, b: T.where(T.tensor(MASK), a, b),
    ),
    OpCase(
        "clip_by_value",
        lambda a: en.clip_by_value(a, -0.5, 0.5),
        (X,),
        lambda a: np.clip(a, -0.5, 0.5),
        lambda T, a: T.clamp(a, -0.5, 0.5),
    ),
    OpCase(
        "clip_tensor_bounds",
        lambda a, lo, hi: en.clip_by_value(a, lo, hi),
        (In((3, 4), -2.0, 2.0), In((4,), -1.0, -0.2), In((4,), 0.2, 1.0)),
        lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
        lambda T, a, lo, hi: T.minimum(T.maximum(a, lo), hi),
    ),
    # element-wise unary math
    OpCase("negative", lambda a: -a, (X,), np.negative, lambda T, a: -a),
    OpCase("abs", en.abs, (AWAY,), np.abs, lambda T, a: a.abs()),
    OpCase("square", en.square, (X,), np.square, lambda T, a: a * a),
    OpCase("exp", en.exp, (X,), np.exp, lambda T, a: a.exp()),
    OpCase("expm1", en.expm1, (X,), np.expm1, lambda T, a: a.expm1()),
    OpCase("log", en.log, (POS,), np.log, lambda T, a: a.log()),
    OpCase("log1p", en.log1p, (POS,), np.log1p, lambda T, a: a.log1p()),
    OpCase("sqrt", en.sqrt, (POS,), np.sqrt, lambda T, a: a.sqrt()),
    OpCase("rsqrt", en.rsqrt, (POS,), lambda a: 1 / np.sqrt(a), lambda T, a: a.rsqrt()),
    OpCase("reciprocal", en.reciprocal, (POS,), np.reciprocal, lambda T, a: 1 / a),
    OpCase("sin", en.sin, (X,), np.sin, lambda T, a: a.sin()),
    OpCase("cos", en.cos, (X,), np.cos, lambda T, a: a.cos()),
    OpCase("pow_scalar", lambda a: en.pow(a, 3.0), (X,), lambda a: a**3, lambda T, a: a**3),
    # activations (the names of docs/spec-format.md)
    OpCase("tanh", en.tanh, (X,), np.tanh, lambda T, a: a.tanh()),
    OpCase(
        "sigmoid", en.sigmoid, (AWAY,), lambda a: 1 / (1 + np.exp(-a)), lambda T, a: a.sigmoid()
    ),
    OpCase("relu", en.nn.relu, (AWAY,), lambda a: np.maximum(a, 0), lambda T, a: a.relu()),
    OpCase(
        "relu6",
        en.nn.relu6,
        (In((3, 4), -3.0, 9.0),),
        lambda a: np.clip(a, 0, 6),
        lambda T, a: T.nn.functional.relu6(a),
    ),
    OpCase("elu", en.nn.elu, (AWAY,), None, lambda T, a: T.nn.functional.elu(a)),
    OpCase("selu", en.nn.selu, (AWAY,), None, lambda T, a: T.nn.functional.selu(a)),
    OpCase(
        "gelu",
        en.nn.gelu,
        (In((3, 4), -3.0, 3.0),),
        None,
        lambda T, a: T.nn.functional.gelu(a),
        rtol=1e-4,
        atol=1e-6,
    ),
    OpCase(
        "gelu_tanh",
        lambda a: en.nn.gelu(a, approximate=True),
        (In((3, 4), -3.0, 3.0),),
        None,
        lambda T, a: T.nn.functional.gelu(a, approximate="tanh"),
    ),
    OpCase(
        "leaky_relu",
        en.nn.leaky_relu,
        (AWAY,),
        lambda a: np.where(a > 0, a, 0.2 * a),
        lambda T, a: T.nn.functional.leaky_relu(a, 0.2),
    ),
    OpCase(
        "softplus",
        en.nn.softplus,
        (In((3, 4), -30.0, 30.0),),
        lambda a: np.logaddexp(a, 0),
        lambda T, a: T.nn.functional.softplus(a),
    ),
    OpCase(
        "softsign",
        en.nn.softsign,
        (X,),
        lambda a: a / (1 + np.abs(a)),
        lambda T, a: T.nn.functional.softsign(a),
    ),
    OpCase("silu", en.nn.silu, (X,), None, lambda T, a: T.nn.functional.silu(a)),
    OpCase(
        "hard_sigmoid",
        en.nn.hard_sigmoid,
        (In((3, 4), -2.9, 2.9),),
        None,
        lambda T, a: T.nn.functional.hardsigmoid(a),
    ),
    # reductions
    OpCase("reduce_sum_all", en.reduce_sum, (X,), np.sum, lambda T, a: a.sum()),
    OpCase(
        "reduce_sum_axis0",
        lambda a: en.reduce_sum(a, axis=0),
        (X,),
        lambda a: a.sum(axis=0),
        lambda T, a: a.sum(0),
    ),
    OpCase(
        "reduce_mean_02_keep",
        lambda a: en.reduce_mean(a, axis=(0, 2), keepdims=True),
        (In((2, 3, 5)),),
        lambda a: a.mean(axis=(0, 2), keepdims=True),
        lambda T, a: a.mean((0, 2), keepdim=True),
    ),
    OpCase(
        "reduce_max_-1",
        lambda a: en.reduce_max(a, axis=-1),
        (X,),
        lambda a: a.max(axis=-1),
        lambda T, a: a.amax(-1),
    ),
    OpCase(
        "reduce_min_all",
        en.reduce_min,
        (In((2, 3, 5)),),
        np.min,
        lambda T, a: a.amin(),
    ),
    OpCase(
        "reduce_prod_1",
        lambda a: en.reduce_prod(a, axis=1),
        (In((3, 5), 0.5, 1.5),),
        lambda a: a.prod(axis=1),
        lambda T, a: a.prod(1),
    ),
    OpCase(
        "reduce_prod_with_zero",
        lambda a: en.reduce_prod(a * HALF, axis=1),
        (X,),
        lambda a: (a * HALF).prod(axis=1),
        lambda T, a: (a * T.tensor(HALF)).prod(1),
    ),
    OpCase(
        "reduce_variance_0",
        lambda a: en.reduce_variance(a, axis=0),
        (X,),
        lambda a: a.var(axis=0),
        lambda T, a: a.var(0, unbiased=False),
    ),
    OpCase(
        "reduce_std_all",
        en.reduce_std,
        (X,),
        np.std,
        lambda T, a: a.std(unbiased=False),
    ),
    OpCase(
        "reduce_logsumexp_1",
        lambda a: en.reduce_logsumexp(a, axis=1),
        (In((3, 4), -5, 5),),
        lambda a: _np_logsumexp(a, 1),
        lambda T, a: a.logsumexp(1),
    ),
    # movement
    OpCase(
        "reshape",
        lambda a: en.reshape(a, (2, -1)),
        (X,),
        lambda a: a.reshape(2, -1),
        lambda T, a: a.reshape(2, -1),
    ),
    OpCase(
        "transpose",
        lambda a: en.transpose(a, (2, 0, 1)),
        (In((2, 3, 4)),),
        lambda a: a.transpose(2, 0, 1),
        lambda T, a: a.permute(2, 0, 1),
    ),
    OpCase(
        "concat",
        lambda a, b: en.concat([a, b], axis=1),
        (In((3, 2)), In((3, 5))),
        lambda a, b: np.concatenate([a, b], 1),
        lambda T, a, b: T.cat([a, b], 1),
    ),
    OpCase(
        "stack",
        lambda a, b: en.stack([a, b], axis=1),
        (X, X),
        lambda a, b: np.stack([a, b], 1),
        lambda T, a, b: T.stack([a, b], 1),
    ),
    OpCase(
        "split",
        lambda a: en.concat(en.split(a, [1, -1, 2], axis=1)[::-1], axis=1),
        (In((3, 5)),),
        lambda a: np.concatenate([a[:, 3:], a[:, 1:3], a[:, :1]], 1),
    ),
    OpCase(
        "unstack",
        lambda a: en.unstack(a, axis=1)[1] * 2.0,
        (X,),
        lambda a: a[:, 1] * 2,
    ),
    OpCase(
        "squeeze_expand",
        lambda a: en.expand_dims(en.squeeze(a, axis=1), 0),
        (In((3, 1, 4)),),
        lambda a: a.reshape(1, 3, 4),
    ),
    OpCase(
        "broadcast_to",
        lambda a: en.broadcast_to(a, (3, 4)),
        (In((4,)),),
        lambda a: np.broadcast_to(a, (3, 4)),
        lambda T, a: a.expand(3, 4),
    ),
    OpCase(
        "tile",
        lambda a: en.tile(a, (2, 3)),
        (In((2, 3)),),
        lambda a: np.tile(a, (2, 3)),
        lambda T, a: a.tile(2, 3),
    ),
    OpCase(
        "slice",
        lambda a: a[1:, ::2],
        (In((4, 5)),),
        lambda a: a[1:, ::2],
        lambda T, a: a[1:, ::2],
    ),
    OpCase(
        "index_scalar",
        lambda a: a[1, 2] * a[0],
        (X,),
        lambda a: a[1, 2] * a[0],
        lambda T, a: a[1, 2] * a[0],
    ),
    OpCase(
        "index_repeats",
        lambda a: a[[0, 2, 0]],
        (X,),
        lambda a: a[[0, 2, 0]],
        lambda T, a: a[[0, 2, 0]],
    ),
    OpCase(
        "gather_axis0",
        lambda a: en.gather(a, GATHER),
        (In((3, 2)),),
        lambda a: a[GATHER],
        lambda T, a: a[T.tensor(GATHER)],
    ),
    OpCase(
        "gather_axis1",
        lambda a: en.gather(a, [2, 0, 2], axis=1),
        (In((2, 3, 2)),),
        lambda a: a[:, [2, 0, 2]],
        lambda T, a: a[:, [2, 0, 2]],
    ),
    OpCase(
        "pad",
        lambda a: en.pad(a, [[1, 0], [2, 1]], constant_values=0.5),
        (X,),
        lambda a: np.pad(a, [[1, 0], [2, 1]], constant_values=0.5),
        lambda T, a: T.nn.functional.pad(a, (2, 1, 1, 0), value=0.5),
    ),
    # linear algebra
    OpCase("matmul", en.matmul, (In((3, 4)), In((4, 5))), np.matmul, lambda T, a, b: a @ b),
    OpCase(
        "matmul_batched_broadcast",
        lambda a, b: a @ b,
        (In((2, 1, 3, 4)), In((3, 4, 2))),
        np.matmul,
        lambda T, a, b: a @ b,
    ),
    OpCase(
        "matmul_transpose_b",
        lambda a, b: en.matmul(a, b, transpose_b=True),
        (In((2, 3, 4)), In((2, 5, 4))),
        lambda a, b: a @ b.swapaxes(-1, -2),
        lambda T, a, b: a @ b.transpose(-1, -2),
    ),
    # softmax and the fused cross-entropies
    OpCase(
        "softmax",
        en.nn.softmax,
        (In((3, 4), -3, 3),),
        lambda a: np.exp(_np_log_softmax(a)),
        lambda T, a: a.softmax(-1),
    ),
    OpCase(
        "softmax_axis0",
        lambda a: en.nn.softmax(a, axis=0),
        (In((3, 4), -3, 3),),
        lambda a: np.exp(_np_log_softmax(a, 0)),
        lambda T, a: a.softmax(0),
    ),
    OpCase(
        "log_softmax",
        en.nn.log_softmax,
        (In((3, 4), -30, 30),),
        _np_log_softmax,
        lambda T, a: a.log_softmax(-1),
    ),
    OpCase(
        "softmax_cross_entropy",
        lambda z: en.nn.softmax_cross_entropy_with_logits(labels=SOFT, logits=z),
        (In((3, 4), -3, 3),),
        lambda z: -(SOFT * _np_log_softmax(z)).sum(-1),
        lambda T, z: T.nn.functional.cross_entropy(z, T.tensor(SOFT), reduction="none"),
    ),
    OpCase(
        "softmax_cross_entropy_labels_grad",
        lambda p, z: en.nn.softmax_cross_entropy_with_logits(labels=p, logits=z),
        (In((3, 4), 0.0, 1.0), In((3, 4), -3, 3)),
        lambda p, z: -(p * _np_log_softmax(z)).sum(-1),
    ),
    OpCase(
        "sparse_softmax_cross_entropy",
        lambda z: en.nn.sparse_softmax_cross_entropy_with_logits(labels=LABELS, logits=z),
        (In((3, 4), -3, 3),),
        lambda z: -_np_log_softmax(z)[np.arange(3), LABELS],
        lambda T, z: T.nn.functional.cross_entropy(z, T.tensor(LABELS), reduction="none"),
    ),
    OpCase(
        "sigmoid_cross_entropy",
        lambda p, z: en.nn.sigmoid_cross_entropy_with_logits(labels=p, logits=z),
        (In((3, 4), 0.0, 1.0), In((3, 4), -30, 30)),
        None,
        lambda T, p, z: T.nn.functional.binary_cross_entropy_with_logits(z, p, reduction="none"),
    ),
    # convolution and pooling, channels last
    OpCase(
        "conv1d_same_stride2",
        lambda x, w: en.nn.conv1d(x, w, 2, "SAME"),
        (In((2, 7, 3)), In((3, 3, 4))),
        None,
    ),
    OpCase(
        "conv1d_valid",
        lambda x, w: en.nn.conv1d(x, w, 1, "VALID"),
        (In((2, 7, 3)), In((3, 3, 4))),
        None,
        lambda T, x, w: _torch_conv(T, x, w, 1, 1, 1, 1),
    ),
    OpCase(
        "conv2d_valid_dilated",
        lambda x, w: en.nn.conv2d(x, w, 1, "VALID", dilations=2),
        (In((2, 6, 7, 3)), In((2, 3, 3, 2))),
        None,
        lambda T, x, w: _torch_conv(T, x, w, 2, 1, 2, 1),
    ),
    OpCase(
        "conv2d_groups_stride",
        lambda x, w: en.nn.conv2d(x, w, 2, "VALID"),
        (In((2, 5, 5, 4)), In((3, 3, 2, 6))),
        None,
        lambda T, x, w: _torch_conv(T, x, w, 2, 2, 1, 2),
    ),
    OpCase(
        "conv2d_same",
        lambda x, w: en.nn.conv2d(x, w, [1, 2, 2, 1], "SAME"),
        (In((1, 5, 6, 2)), In((3, 2, 2, 3))),
        None,
    ),
    OpCase(
        "conv3d_valid",
        lambda x, w: en.nn.conv3d(x, w, 1, "VALID"),
        (In((1, 4, 3, 4, 2)), In((2, 2, 2, 2, 3))),
        None,
        lambda T, x, w: _torch_conv(T, x, w, 3, 1, 1, 1),
    ),
    OpCase(
        "max_pool1d",
        lambda x: en.nn.max_pool1d(x, 2, 2),
        (In((2, 6, 3)),),
        None,
        lambda T, x: _torch_pool(T, x, 1, "max", 2, 2),
    ),
    OpCase(
        "max_pool2d_overlap",
        lambda x: en.nn.max_pool2d(x, 3, 1),
        (In((2, 5, 4, 2)),),
        None,
        lambda T, x: _torch_pool(T, x, 2, "max", 3, 1),
    ),
    OpCase(
        "max_pool3d",
        lambda x: en.nn.max_pool3d(x, 2, 2),
        (In((1, 4, 4, 4, 2)),),
        None,
        lambda T, x: _torch_pool(T, x, 3, "max", 2, 2),
    ),
    OpCase(
        "avg_pool1d_same",
        lambda x: en.nn.avg_pool1d(x, 3, 2, "SAME"),
        (In((2, 7, 3)),),
        None,
    ),
    OpCase(
        "avg_pool2d",
        lambda x: en.nn.avg_pool2d(x, 2, 2),
        (In((2, 4, 6, 3)),),
        None,
        lambda T, x: _torch_pool(T, x, 2, "avg", 2, 2),
    ),
    OpCase(
        "avg_pool3d",
        lambda x: en.nn.avg_pool3d(x, 2, 1),
        (In((1, 3, 3, 4, 2)),),
        None,
        lambda T, x: _torch_pool(T, x, 3, "avg", 2, 1),
    ),
]

# Ops checked elsewhere: no gradient (comparisons, logic, rounding, argmax), or a generic entry
# point whose rows go by the specific name.
NOT_IN_TABLE = {
    "argmax",
    "argmin",
    "cast",
    "ceil",
    "equal",
    "floor",
    "floordiv",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "not_equal",
    "reduce_all",
    "reduce_any",
    "round",
    "sign",
}
ROW_FOR = {
    "getitem": "slice",
    "pool": "max_pool1d",
    "activation": "relu",
    "squeeze": "squeeze_expand",
    "expand_dims": "squeeze_expand",
    "reduce_std": "reduce_std_all",
    "softmax_cross_entropy_with_logits": "softmax_cross_entropy",
    "sparse_softmax_cross_entropy_with_logits": "sparse_softmax_cross_entropy",
    "sigmoid_cross_entropy_with_logits": "sigmoid_cross_entropy",
}
