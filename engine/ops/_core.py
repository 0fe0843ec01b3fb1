"""Shared plumbing of the ops: turning arguments into tensors on one device with one dtype.

TensorFlow's rules: a non-tensor argument (Python number, list, NumPy array) takes the dtype and
device of the tensor it meets; two tensors of different dtypes are an error, never a silent
promotion; string tensors refuse arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import backend as _backend
from engine.dtypes import string as _string
from engine.tensor import Tensor, Variable, as_tensor

Array = Any


def tensor(value: Any) -> Tensor:
    """A tensor for an op argument: tensors pass through, anything else lands on the device."""
    return value if isinstance(value, Tensor) else as_tensor(value)


def like(value: Any, other: Tensor) -> Tensor:
    """Convert a non-tensor argument to `other`'s dtype and device."""
    if isinstance(value, Tensor):
        return value
    target = other.dtype
    if target == _string:
        return as_tensor(value)
    host = value if isinstance(value, np.ndarray) else np.asarray(value)
    if host.dtype.kind == "f" and target.np_dtype.kind in "iub":
        raise TypeError(f"cannot combine a float value with a {target.name} tensor; cast first")
    if host.dtype.kind in "OUS":
        raise TypeError(f"cannot combine text with a {target.name} tensor")
    data = _backend.to_backend(host, other.backend)
    return Tensor(data.astype(target.np_dtype, copy=False))


def pair(a: Any, b: Any, op: str) -> tuple[Tensor, Tensor]:
    """Two operands with one dtype on one device, as a binary op needs."""
    if isinstance(a, Tensor):
        tb = like(b, a)
        ta = a
    elif isinstance(b, Tensor):
        ta = like(a, b)
        tb = b
    else:
        ta = as_tensor(a)
        tb = like(b, ta)
    # different array types are the cheap sign of different devices
    if type(ta.data) is not type(tb.data) and ta.backend is not tb.backend:
        raise TypeError(
            f"{op}: operands are on different devices ({ta.device} and {tb.device}); "
            "create both under one en.device(...)"
        )
    if ta.data.dtype != tb.data.dtype:
        raise TypeError(
            f"{op}: operands have different dtypes {ta.dtype.name} and {tb.dtype.name}; "
            "cast one with en.cast"
        )
    return ta, tb


def numeric(t: Tensor, op: str) -> Tensor:
    """Refuse string tensors in arithmetic, as TensorFlow does."""
    if t.data.dtype.kind == "O":
        raise TypeError(f"{op} does not take string tensors; got dtype string")
    return t


def floating(t: Tensor, op: str) -> Tensor:
    """Refuse non-float tensors where the math is only defined for floats (exp, log, ...)."""
    kind = t.data.dtype.kind
    if kind != "f":
        raise TypeError(
            f"{op} needs a floating tensor (float32 or float64); got {t.dtype.name}; "
            "cast it with en.cast(x, en.float32)"
        )
    return t


def result(data: Array, source: Tensor) -> Tensor:
    """Wrap an output that may be a view of `source`; a Variable's later assign must not show."""
    return Tensor(data.copy() if isinstance(source, Variable) else data)


def axes_of(axis: Any, ndim: int) -> tuple[int, ...]:
    """Normalize None | int | sequence (negatives allowed) to a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)
    if isinstance(axis, Tensor):
        axis = axis.numpy().tolist()
    items = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    out = []
    for a in items:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(set(out)))
