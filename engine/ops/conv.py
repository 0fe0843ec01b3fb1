"""Convolution and pooling ops (1-D, 2-D, 3-D, channels last) over the shared fused kernels.

The forward/backward math lives in `engine.kernels.conv` and `engine.kernels.pool`, which the
Conv and Pooling layers call directly; these ops add the tape, TensorFlow's argument spellings
("SAME"/"VALID", 4-element strides) and group inference from the filter's channel count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.autodiff import record
from engine.kernels import conv as _conv_kernel
from engine.kernels import pool as _pool_kernel
from engine.ops._core import Array, floating, pair, tensor
from engine.tensor import Tensor

IntOrSeq = int | Sequence[int]


def _spatial(value: IntOrSeq, nd: int, name: str) -> tuple[int, ...]:
    """An int, nd ints, or TensorFlow's nd + 2 ints with batch and channel entries of 1."""
    if isinstance(value, int):
        return (value,) * nd
    items = tuple(int(v) for v in value)
    if len(items) == nd + 2 and items[0] == items[-1] == 1:
        items = items[1:-1]
    if len(items) == 1:
        items = items * nd
    if len(items) != nd:
        raise ValueError(f"{name} needs {nd} values; got {list(items)}")
    return items


def _check_rank(t: Tensor, nd: int, op: str) -> None:
    if t.ndim != nd + 2:
        raise ValueError(
            f"{op} needs input of rank {nd + 2} (batch, {nd} spatial, channels); got {t.shape}"
        )


def conv(
    input: Any,  # noqa: A002
    filters: Any,
    strides: IntOrSeq = 1,
    padding: str = "VALID",
    dilations: IntOrSeq = 1,
) -> Tensor:
    """N-d convolution: input (N, *spatial, Cin), filters (*kernel, Cin // groups, Cout).

    Groups are Cin // filters' input channels, as in TensorFlow. Example: (2, 8, 8, 3) with
    filters (3, 3, 3, 4), padding "SAME" -> (2, 8, 8, 4).
    """
    x, w = pair(input, filters, "conv")
    floating(x, "conv")
    nd = x.ndim - 2
    if nd not in (1, 2, 3) or w.ndim != nd + 2:
        raise ValueError(
            f"conv needs a 3-5-d input and a matching filter; got {x.shape}, {w.shape}"
        )
    groups = max(x.shape[-1] // max(w.shape[-2], 1), 1)
    y, cache = _conv_kernel.conv_forward(
        x.data,
        w.data,
        None,
        _spatial(strides, nd, "strides"),
        padding.lower(),
        _spatial(dilations, nd, "dilations"),
        groups,
    )

    def vjp(g: Array) -> tuple[Array | None, Array]:
        dx, dw, _ = _conv_kernel.conv_backward(cache, g)
        return dx, dw

    return record(Tensor(y), (x, w), vjp)


def _conv_nd(nd: int) -> Any:
    def op(
        input: Any,  # noqa: A002
        filters: Any,
        stride: IntOrSeq = 1,
        padding: str = "VALID",
        dilations: IntOrSeq = 1,
    ) -> Tensor:
        x, _ = pair(input, filters, f"conv{nd}d")
        _check_rank(x, nd, f"conv{nd}d")
        return conv(input, filters, stride, padding, dilations)

    op.__name__ = f"conv{nd}d"
    op.__doc__ = f"{nd}-D convolution, channels last (see `conv`)."
    return op


conv1d = _conv_nd(1)
conv2d = _conv_nd(2)
conv3d = _conv_nd(3)


def pool(
    input: Any,  # noqa: A002
    ksize: IntOrSeq,
    strides: IntOrSeq | None = None,
    padding: str = "VALID",
    mode: str = "max",
) -> Tensor:
    """N-d max or average pooling over windows `ksize` moved by `strides` (default ksize).

    Example: max pooling (1, 4, 4, 2) with ksize 2 -> (1, 2, 2, 2). Average pooling with
    "SAME" divides by the number of real (unpadded) elements, as Keras does.
    """
    x = floating(tensor(input), "pool")
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"pooling needs a 3-5-d input (batch, spatial, channels); got {x.shape}")
    y, cache = _pool_kernel.pool_forward(
        x.data,
        _spatial(ksize, nd, "ksize"),
        None if strides is None else _spatial(strides, nd, "strides"),
        padding.lower(),
        mode,
    )
    return record(Tensor(y), (x,), lambda g: (_pool_kernel.pool_backward(cache, g),))


def _pool_nd(nd: int, mode: str) -> Any:
    name = f"{mode}_pool{nd}d"

    def op(
        input: Any,  # noqa: A002
        ksize: IntOrSeq,
        strides: IntOrSeq | None = None,
        padding: str = "VALID",
    ) -> Tensor:
        x = tensor(input)
        _check_rank(x, nd, name)
        return pool(x, ksize, strides, padding, mode)

    op.__name__ = name
    op.__doc__ = f"{nd}-D {mode} pooling, channels last (see `pool`)."
    return op


max_pool1d = _pool_nd(1, "max")
max_pool2d = _pool_nd(2, "max")
max_pool3d = _pool_nd(3, "max")
avg_pool1d = _pool_nd(1, "avg")
avg_pool2d = _pool_nd(2, "avg")
avg_pool3d = _pool_nd(3, "avg")
