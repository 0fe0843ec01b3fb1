"""The `import engine as en` tensor API: TensorFlow's names over the engine's ops and tensors.

The tutorial's tensor examples run with `en` in place of `tf` and print the same values,
shapes and dtypes. `en.nn`, `en.random` and `en.math` are namespaces as in TensorFlow.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

from engine import backend as _backend
from engine import ops as _ops
from engine import rng as _rng
from engine.autodiff import GradientTape
from engine.backend import Backend, DeviceUnavailableError
from engine.dtypes import (
    DType,
    as_dtype,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    string,
    uint8,
)
from engine.ops import (
    abs,
    add,
    argmax,
    argmin,
    broadcast_to,
    cast,
    ceil,
    clip_by_value,
    concat,
    cos,
    divide,
    equal,
    exp,
    expand_dims,
    expm1,
    floor,
    gather,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    matmul,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    not_equal,
    pad,
    reciprocal,
    reduce_all,
    reduce_any,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_std,
    reduce_sum,
    reduce_variance,
    reshape,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    split,
    sqrt,
    square,
    squared_difference,
    squeeze,
    stack,
    subtract,
    tanh,
    tile,
    transpose,
    unstack,
    where,
)
from engine.ops._core import tensor as _tensor
from engine.tensor import Tensor, Variable, as_tensor, constant

bool = bool_  # noqa: A001  (TensorFlow's spelling: en.bool)
pow = _ops.power  # noqa: A001
convert_to_tensor = as_tensor
reduce_var = reduce_variance


@contextlib.contextmanager
def device(name: str) -> Iterator[Backend]:
    """Place new tensors and run ops on "cpu" or "gpu" ("/GPU:0", "/CPU:0" accepted).

    Placement is soft, as TensorFlow's is by default: where the GPU cannot be used, the block
    runs on the CPU and the reason is logged once (the CLI's `--device gpu` stays an error).
    """
    try:
        _backend.get_backend(name)
    except _backend.DeviceUnavailableError as exc:
        if not _fallbacks:
            logging.getLogger("engine").warning("%s: %s; running on the CPU", name, exc)
        _fallbacks.add(name)
        name = "cpu"
    with _backend.use(name) as chosen:
        yield chosen


_fallbacks: set[str] = set()


def _index_tensor(value: Any) -> Tensor:
    return as_tensor(np.asarray(value, dtype=np.int32))


def rank(input: Any) -> Tensor:  # noqa: A002
    """The number of axes, as a 0-d int32 tensor: rank([[1, 2], [3, 4]]).numpy() == 2."""
    return _index_tensor(_tensor(input).ndim)


def size(input: Any) -> Tensor:  # noqa: A002
    """The number of elements, as a 0-d int32 tensor."""
    return _index_tensor(int(np.prod(_tensor(input).shape)))


def shape(input: Any) -> Tensor:  # noqa: A002
    """The shape as a 1-d int32 tensor."""
    return _index_tensor(list(_tensor(input).shape))


def identity(input: Any) -> Tensor:  # noqa: A002
    """The same values as a new tensor (gradient passes through)."""
    return _ops.reshape(input, _tensor(input).shape)


def stop_gradient(input: Any) -> Tensor:  # noqa: A002
    """The same values, seen by tapes as a constant."""
    return Tensor(_tensor(input).data)


def _shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, Tensor):
        return tuple(int(v) for v in value.numpy().reshape(-1))
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    return tuple(int(v) for v in value)


def _filled(shape_: Any, value: Any, dtype: Any) -> Tensor:
    current = _backend.current()
    return Tensor(current.xp.full(_shape(shape_), value, dtype=as_dtype(dtype).np_dtype))


def zeros(shape: Any, dtype: Any = float32) -> Tensor:
    """A tensor of zeros (float32 by default)."""
    return _filled(shape, 0, dtype)


def ones(shape: Any, dtype: Any = float32) -> Tensor:
    """A tensor of ones (float32 by default)."""
    return _filled(shape, 1, dtype)


def zeros_like(input: Any, dtype: Any = None) -> Tensor:  # noqa: A002
    """Zeros of `input`'s shape, dtype (unless given) and device."""
    t = _tensor(input)
    kind = as_dtype(dtype) if dtype is not None else t.dtype
    return Tensor(t.backend.xp.zeros(t.shape, dtype=kind.np_dtype))


def ones_like(input: Any, dtype: Any = None) -> Tensor:  # noqa: A002
    """Ones of `input`'s shape, dtype (unless given) and device."""
    t = _tensor(input)
    kind = as_dtype(dtype) if dtype is not None else t.dtype
    return Tensor(t.backend.xp.ones(t.shape, dtype=kind.np_dtype))


def fill(dims: Any, value: Any) -> Tensor:
    """A tensor of shape `dims` filled with `value` (its dtype follows the value)."""
    scalar = as_tensor(value)
    return _filled(dims, scalar.numpy().item(), scalar.dtype)


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None) -> Tensor:  # noqa: A001
    """[start, limit) in steps of delta: int32 for ints, float32 when any argument is a float."""
    if limit is None:
        start, limit = 0, start
    values = (start, limit, delta)
    is_float = any(isinstance(v, builtins.float) for v in values)
    kind = as_dtype(dtype) if dtype is not None else (float32 if is_float else int32)
    host = np.arange(start, limit, delta, dtype=kind.np_dtype)
    return Tensor(_backend.current().asarray(host))


def eye(num_rows: int, num_columns: int | None = None, dtype: Any = float32) -> Tensor:
    """An identity matrix (float32 by default)."""
    return Tensor(_backend.current().xp.eye(num_rows, num_columns, dtype=as_dtype(dtype).np_dtype))


def one_hot(
    indices: Any,
    depth: int,
    on_value: Any = 1.0,
    off_value: Any = 0.0,
    axis: int = -1,
    dtype: Any = float32,
) -> Tensor:
    """One-hot rows for integer `indices`: (batch,) -> (batch, depth); out-of-range rows are off."""
    idx = _tensor(indices)
    xp = idx.backend.xp
    hot = xp.expand_dims(idx.data, -1) == xp.arange(depth)
    if axis != -1:
        hot = xp.moveaxis(hot, -1, axis)
    kind = as_dtype(dtype).np_dtype
    return Tensor(xp.where(hot, kind.type(on_value), kind.type(off_value)).astype(kind))


def _sampled(host: np.ndarray) -> Tensor:
    return Tensor(_backend.current().asarray(host))


def _normal(
    shape: Any,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = float32,
    seed: int | None = None,
) -> Tensor:
    """Samples from N(mean, stddev^2); the same seed gives the same values on every device."""
    kind = as_dtype(dtype).np_dtype
    draw = _rng.generator(seed).standard_normal(_shape(shape), dtype=kind)
    return _sampled((draw * kind.type(stddev) + kind.type(mean)).astype(kind))


def _uniform(
    shape: Any,
    minval: Any = 0,
    maxval: Any = None,
    dtype: Any = float32,
    seed: int | None = None,
) -> Tensor:
    """Samples from [minval, maxval) (maxval defaults to 1 for floats, required for ints)."""
    kind = as_dtype(dtype)
    gen = _rng.generator(seed)
    dims = _shape(shape)
    if kind.is_integer:
        if maxval is None:
            raise ValueError("uniform with an integer dtype needs maxval")
        return _sampled(gen.integers(minval, maxval, dims, dtype=kind.np_dtype))
    high = 1.0 if maxval is None else maxval
    t = kind.np_dtype.type
    draw = gen.random(dims, dtype=kind.np_dtype)
    return _sampled((draw * (t(high) - t(minval)) + t(minval)).astype(kind.np_dtype))


random = SimpleNamespace(
    normal=_normal,
    uniform=_uniform,
    set_seed=_rng.set_seed,
)


def _pool_any(mode: str) -> Any:
    def op(
        input: Any,  # noqa: A002
        ksize: Any,
        strides: Any = None,
        padding: str = "VALID",
    ) -> Tensor:
        return _ops.pool(input, ksize, strides, padding, mode)

    op.__name__ = f"{mode}_pool"
    return op


nn = SimpleNamespace(
    relu=_ops.relu,
    relu6=_ops.relu6,
    elu=_ops.elu,
    selu=_ops.selu,
    gelu=_ops.gelu,
    leaky_relu=_ops.leaky_relu,
    sigmoid=_ops.sigmoid,
    tanh=_ops.tanh,
    softplus=_ops.softplus,
    softsign=_ops.softsign,
    silu=_ops.silu,
    swish=_ops.silu,
    hard_sigmoid=_ops.hard_sigmoid,
    softmax=_ops.softmax,
    log_softmax=_ops.log_softmax,
    softmax_cross_entropy_with_logits=_ops.softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits=_ops.sparse_softmax_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits=_ops.sigmoid_cross_entropy_with_logits,
    convolution=_ops.conv,
    conv1d=_ops.conv1d,
    conv2d=_ops.conv2d,
    conv3d=_ops.conv3d,
    max_pool=_pool_any("max"),
    avg_pool=_pool_any("avg"),
    max_pool1d=_ops.max_pool1d,
    max_pool2d=_ops.max_pool2d,
    max_pool3d=_ops.max_pool3d,
    avg_pool1d=_ops.avg_pool1d,
    avg_pool2d=_ops.avg_pool2d,
    avg_pool3d=_ops.avg_pool3d,
)

math = SimpleNamespace(
    **{
        name: globals()[name]
        for name in [
            "abs",
            "add",
            "argmax",
            "argmin",
            "ceil",
            "cos",
            "divide",
            "equal",
            "exp",
            "expm1",
            "floor",
            "greater",
            "greater_equal",
            "less",
            "less_equal",
            "log",
            "log1p",
            "logical_and",
            "logical_not",
            "logical_or",
            "logical_xor",
            "maximum",
            "minimum",
            "mod",
            "multiply",
            "negative",
            "not_equal",
            "pow",
            "reciprocal",
            "reduce_all",
            "reduce_any",
            "reduce_logsumexp",
            "reduce_max",
            "reduce_mean",
            "reduce_min",
            "reduce_prod",
            "reduce_std",
            "reduce_sum",
            "reduce_variance",
            "round",
            "rsqrt",
            "sigmoid",
            "sign",
            "sin",
            "sqrt",
            "square",
            "squared_difference",
            "subtract",
            "tanh",
        ]
    },
    log_softmax=_ops.log_softmax,
    softmax=_ops.softmax,
    softplus=_ops.softplus,
)

__all__ = [
    "DType",
    "DeviceUnavailableError",
    "GradientTape",
    "Tensor",
    "Variable",
    "abs",
    "add",
    "argmax",
    "argmin",
    "bool",
    "broadcast_to",
    "cast",
    "ceil",
    "clip_by_value",
    "concat",
    "constant",
    "convert_to_tensor",
    "cos",
    "device",
    "divide",
    "equal",
    "exp",
    "expand_dims",
    "expm1",
    "eye",
    "fill",
    "float16",
    "float32",
    "float64",
    "floor",
    "gather",
    "greater",
    "greater_equal",
    "identity",
    "int8",
    "int16",
    "int32",
    "int64",
    "less",
    "less_equal",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "math",
    "matmul",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "negative",
    "nn",
    "not_equal",
    "one_hot",
    "ones",
    "ones_like",
    "pad",
    "pow",
    "random",
    "range",
    "rank",
    "reciprocal",
    "reduce_all",
    "reduce_any",
    "reduce_logsumexp",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_std",
    "reduce_sum",
    "reduce_var",
    "reduce_variance",
    "reshape",
    "round",
    "rsqrt",
    "shape",
    "sigmoid",
    "sign",
    "sin",
    "size",
    "split",
    "sqrt",
    "square",
    "squared_difference",
    "squeeze",
    "stack",
    "stop_gradient",
    "string",
    "subtract",
    "tanh",
    "tile",
    "transpose",
    "uint8",
    "unstack",
    "where",
    "zeros",
    "zeros_like",
]
