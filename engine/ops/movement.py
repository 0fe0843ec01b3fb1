"""Ops that move values without changing them: reshape, transpose, concat, stack, split,
squeeze, expand_dims, broadcast_to, tile, slicing, gather and pad, each with its gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine import backend as _backend
from engine.autodiff import record
from engine.ops._core import Array, axes_of, like, result, tensor
from engine.tensor import Tensor


def _ints(value: Any) -> list[int]:
    """A shape-like argument (list, tuple, tensor) as a list of Python ints."""
    if isinstance(value, Tensor):
        return [int(v) for v in value.numpy().reshape(-1)]
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


def reshape(tensor_: Any, shape: Any) -> Tensor:
    """The same values in a new shape (one -1 entry is inferred). (2, 3) -> (3, 2)."""
    t = tensor(tensor_)
    before = t.shape
    y = result(t.data.reshape(_ints(shape)), t)
    return record(y, (t,), lambda g: (g.reshape(before),))


def transpose(a: Any, perm: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them by default): (2, 3) -> (3, 2)."""
    t = tensor(a)
    order = list(range(t.ndim))[::-1] if perm is None else _ints(perm)
    inverse = list(np.argsort(order))
    xp = t.backend.xp
    y = result(xp.transpose(t.data, order), t)
    return record(y, (t,), lambda g: (xp.transpose(g, inverse),))


def squeeze(input: Any, axis: Any = None) -> Tensor:  # noqa: A002
    """Drop size-1 axes (all of them, or those in `axis`)."""
    t = tensor(input)
    before = t.shape
    axes = (
        tuple(a for a, n in enumerate(before) if n == 1) if axis is None else axes_of(axis, t.ndim)
    )
    for a in axes:
        if before[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of size {before[a]}")
    y = result(t.backend.xp.squeeze(t.data, axis=axes), t)
    return record(y, (t,), lambda g: (g.reshape(before),))


def expand_dims(input: Any, axis: int) -> Tensor:  # noqa: A002
    """Insert a size-1 axis at `axis` (negative counts from the end of the result)."""
    t = tensor(input)
    before = t.shape
    y = result(t.backend.xp.expand_dims(t.data, int(axis)), t)
    return record(y, (t,), lambda g: (g.reshape(before),))


def broadcast_to(input: Any, shape: Any) -> Tensor:  # noqa: A002
    """Broadcast to `shape` as NumPy does; the tape sums the gradient back."""
    t = tensor(input)
    y = Tensor(t.backend.xp.broadcast_to(t.data, _ints(shape)).copy())
    return record(y, (t,), lambda g: (g,))


def tile(input: Any, multiples: Any) -> Tensor:  # noqa: A002
    """Repeat the whole tensor `multiples[i]` times along axis i."""
    t = tensor(input)
    reps = _ints(multiples)
    if len(reps) != t.ndim:
        raise ValueError(f"tile needs one multiple per axis ({t.ndim}); got {reps}")
    xp = t.backend.xp
    before = t.shape
    y = Tensor(xp.tile(t.data, reps))

    def vjp(g: Array) -> tuple[Array]:
        split = [n for pair in zip(reps, before, strict=True) for n in pair]
        return (g.reshape(split).sum(axis=tuple(range(0, 2 * len(reps), 2))),)

    return record(y, (t,), vjp)


def concat(values: Sequence[Any], axis: int) -> Tensor:
    """Join tensors along an existing axis: two (2, 3) on axis 0 -> (4, 3)."""
    ts = _same_kind([tensor(v) for v in values], "concat")
    xp = ts[0].backend.xp
    a = int(axis) % max(ts[0].ndim, 1)
    bounds = np.cumsum([t.shape[a] for t in ts])[:-1].tolist()
    y = Tensor(xp.concatenate([t.data for t in ts], axis=a))
    return record(y, ts, lambda g: xp.split(g, bounds, axis=a))


def stack(values: Sequence[Any], axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new axis: three (2,) -> (3, 2)."""
    ts = _same_kind([tensor(v) for v in values], "stack")
    xp = ts[0].backend.xp
    a = int(axis) % (ts[0].ndim + 1)
    y = Tensor(xp.stack([t.data for t in ts], axis=a))
    return record(y, ts, lambda g: [xp.take(g, i, axis=a) for i in range(len(ts))])


def unstack(value: Any, axis: int = 0) -> list[Tensor]:
    """Split along `axis` into tensors with that axis removed."""
    t = tensor(value)
    return [squeeze(piece, axis) for piece in split(t, t.shape[axis], axis)]


def split(value: Any, num_or_size_splits: Any, axis: int = 0) -> list[Tensor]:
    """Split along `axis` into equal parts (an int) or the given sizes (one may be -1)."""
    t = tensor(value)
    a = int(axis) % t.ndim
    length = t.shape[a]
    if isinstance(num_or_size_splits, (int, np.integer)):
        if length % int(num_or_size_splits):
            raise ValueError(f"cannot split an axis of {length} into {num_or_size_splits} parts")
        sizes = [length // int(num_or_size_splits)] * int(num_or_size_splits)
    else:
        sizes = _ints(num_or_size_splits)
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = length - (sum(sizes) + 1)
        if sum(sizes) != length or min(sizes) < 0:
            raise ValueError(f"split sizes {sizes} do not add up to the axis length {length}")
    starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    lead = (slice(None),) * a
    return [getitem(t, (*lead, slice(s, e))) for s, e in zip(starts[:-1], starts[1:], strict=True)]


def _same_kind(ts: list[Tensor], op: str) -> list[Tensor]:
    if not ts:
        raise ValueError(f"{op} needs at least one tensor")
    first = ts[0]
    for t in ts[1:]:
        if t.data.dtype != first.data.dtype:
            raise TypeError(f"{op}: tensors have different dtypes {first.dtype} and {t.dtype}")
    return [first, *(like(t, first) for t in ts[1:])]


def _index_data(index: Any, backend: _backend.Backend) -> Any:
    """Tensors inside an index become arrays on the indexed tensor's device."""
    if isinstance(index, tuple):
        return tuple(_index_data(i, backend) for i in index)
    if isinstance(index, Tensor):
        return _backend.to_backend(index.data, backend)
    if isinstance(index, (list, np.ndarray)):
        return _backend.to_backend(np.asarray(index), backend)
    return index


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def getitem(x: Any, index: Any) -> Tensor:
    """NumPy indexing and slicing (`t[1:, ::2]`, `t[..., 0]`, `t[[0, 2]]`, masks)."""
    t = tensor(x)
    backend = t.backend
    key = _index_data(index, backend)
    data = t.data
    y = result(data[key], t)

    def vjp(g: Array) -> tuple[Array]:
        grad = backend.xp.zeros_like(data)
        if _is_basic(key):
            grad[key] = g
        else:
            backend.xp.add.at(grad, key, g)
        return (grad,)

    return record(y, (t,), vjp)


def gather(params: Any, indices: Any, axis: int = 0) -> Tensor:
    """Rows of `params` picked by integer `indices` along `axis` (Embedding's lookup).

    Shapes: params (5, 3), indices (2, 4), axis 0 -> (2, 4, 3). Repeated indices add up in the
    gradient.
    """
    p = tensor(params)
    backend = p.backend
    xp = backend.xp
    idx = _backend.to_backend(
        indices.data if isinstance(indices, Tensor) else np.asarray(indices), backend
    )
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather indices must be integers; got {idx.dtype}")
    a = int(axis) % p.ndim
    data = p.data
    y = Tensor(xp.take(data, idx, axis=a))

    def vjp(g: Array) -> tuple[Array]:
        grad = xp.zeros_like(data)
        index_axes = list(range(a, a + idx.ndim))
        moved = xp.moveaxis(g, index_axes, list(range(idx.ndim)))
        xp.add.at(xp.moveaxis(grad, a, 0), idx, moved)
        return (grad,)

    return record(y, (p,), vjp)


def pad(tensor_: Any, paddings: Any, mode: str = "CONSTANT", constant_values: Any = 0) -> Tensor:
    """Pad each axis by [before, after] with `constant_values` (constant mode only).

    Example: pad((2, 3), [[1, 1], [0, 2]]) -> (4, 5).
    """
    if mode.upper() != "CONSTANT":
        raise ValueError(f"pad supports mode 'CONSTANT' only; got {mode!r}")
    t = tensor(tensor_)
    host = paddings.numpy() if isinstance(paddings, Tensor) else np.asarray(paddings)
    amounts = host.astype(int).reshape(-1, 2).tolist()
    if len(amounts) != t.ndim:
        raise ValueError(f"paddings need one [before, after] per axis ({t.ndim}); got {amounts}")
    y = Tensor(t.backend.xp.pad(t.data, amounts, mode="constant", constant_values=constant_values))
    window = tuple(slice(b, b + n) for (b, _), n in zip(amounts, t.shape, strict=True))
    return record(y, (t,), lambda g: (g[window],))
