"""`Tensor`, an immutable array with a dtype and a device, and `Variable`, the mutable kind.

A Tensor wraps one backend array (NumPy or CuPy). Every operation returns a new Tensor; only
`Variable.assign*` changes values in place. Python operators dispatch to `engine.ops`, which
record themselves for autodiff.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from engine import backend as _backend
from engine.dtypes import DType, as_dtype
from engine.dtypes import float32 as _float32
from engine.dtypes import int32 as _int32
from engine.dtypes import string as _string

_OPS: list[Any] = []


def _ops() -> Any:
    """engine.ops, imported on first use (it imports this module)."""
    if not _OPS:
        from engine import ops

        _OPS.append(ops)
    return _OPS[0]


class Tensor:
    """An immutable n-dimensional array of one dtype on one device."""

    __slots__ = ("_data", "__weakref__")
    __array_priority__ = 100
    # NumPy defers to our reflected operators, so `ndarray + tensor` is a Tensor op.
    __array_ufunc__ = None

    def __init__(self, data: Any) -> None:
        # NumPy reductions and ufuncs on 0-d arrays return scalars; a tensor always holds an array.
        self._data = np.asarray(data) if isinstance(data, np.generic) else data

    @property
    def data(self) -> Any:
        """The backend array (NumPy or CuPy). Do not write to it."""
        return self._data

    @property
    def backend(self) -> _backend.Backend:
        return _backend.backend_of(self._data)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def ndim(self) -> int:
        return int(self._data.ndim)

    @property
    def dtype(self) -> DType:
        return as_dtype(self._data.dtype)

    @property
    def device(self) -> str:
        return self.backend.name

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the values on the host."""
        return self.backend.to_host(self._data).copy()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a scalar tensor")
        return int(self._data.shape[0])

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __index__(self) -> int:
        return int(self._data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.backend.to_host(self._data)
        return out.astype(dtype) if dtype is not None else out

    def __repr__(self) -> str:
        values = self.numpy()
        if self.dtype == _string:
            body = np.array2string(
                values.astype(str),
                separator=" ",
                formatter={"all": lambda s: repr(str(s).encode())},
            )
        else:
            body = np.array2string(values, separator=" ")
        lead = "\n" if "\n" in body else ""
        return f"Tensor({lead}{body}, shape={self.shape}, dtype={self.dtype.name})"

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    # Python operators, all delegated to engine.ops so that they record for autodiff.
    def __add__(self, other: Any) -> Tensor:
        return _ops().add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops().add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops().subtract(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops().subtract(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops().multiply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops().multiply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops().divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops().divide(other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return _ops().floordiv(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _ops().floordiv(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return _ops().mod(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return _ops().mod(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops().power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops().power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops().matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops().negative(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops().abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops().getitem(self, index)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops().equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops().not_equal(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _ops().less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _ops().less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _ops().greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _ops().greater_equal(self, other)

    def __and__(self, other: Any) -> Tensor:
        return _ops().logical_and(self, other)

    def __or__(self, other: Any) -> Tensor:
        return _ops().logical_or(self, other)

    def __xor__(self, other: Any) -> Tensor:
        return _ops().logical_xor(self, other)

    def __invert__(self) -> Tensor:
        return _ops().logical_not(self)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "Tensor is immutable: build a new tensor instead (or use a Variable and assign)"
        )


_variable_ids = itertools.count()


class Variable(Tensor):
    """A mutable tensor: model weights. Trainable Variables are watched by every tape."""

    __slots__ = ("name", "trainable", "_uid", "constraint", "regularizer")

    def __init__(
        self,
        initial_value: Any,
        trainable: bool = True,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        value = as_tensor(initial_value, dtype=dtype)
        super().__init__(value.data.copy())
        self._uid = next(_variable_ids)
        self.name = name or f"Variable:{self._uid}"
        self.trainable = trainable
        self.constraint: Any = None
        self.regularizer: Any = None

    def _incoming(self, value: Any, op: str) -> Any:
        """`value` as an array of this variable's dtype, shape and device.

        Host data (lists, NumPy arrays) is copied over; a tensor on another device is an error,
        as CuPy refuses to mix host and device arrays.
        """
        if isinstance(value, Tensor) and value.backend is not self.backend:
            raise TypeError(
                f"{op}: Variable {self.name!r} is on {self.device} but the value is on "
                f"{value.device}"
            )
        new = _backend.to_backend(as_tensor(value, dtype=self.dtype).data, self.backend)
        if tuple(new.shape) != self.shape and op == "assign":
            raise ValueError(
                f"cannot assign shape {tuple(new.shape)} to Variable "
                f"{self.name!r} of shape {self.shape}"
            )
        return new

    def assign(self, value: Any) -> Variable:
        """Overwrite the values in place (same shape)."""
        self._data[...] = self._incoming(value, "assign")
        return self

    def assign_add(self, delta: Any) -> Variable:
        """Add `delta` in place (broadcast to the variable's shape)."""
        self._data += self._incoming(delta, "assign_add")
        return self

    def assign_sub(self, delta: Any) -> Variable:
        """Subtract `delta` in place: the SGD update `w.assign_sub(lr * dw)`."""
        self._data -= self._incoming(delta, "assign_sub")
        return self

    def value(self) -> Tensor:
        return Tensor(self._data.copy())

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=" ")
        return (
            f"<Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}, numpy=\n{body}>"
            if "\n" in body
            else f"<Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}, "
            f"numpy={body}>"
        )

    __str__ = __repr__


def _default_dtype(host: np.ndarray) -> DType:
    kind = host.dtype.kind
    if kind == "f":
        return _float32
    if kind in "iu":
        return _int32
    if kind in "OUS":
        return _string
    return as_dtype(host.dtype)


def as_tensor(value: Any, dtype: Any = None) -> Tensor:
    """Turn a Tensor, NumPy array, list or scalar into a Tensor on the current device.

    Python and list data follow TensorFlow: floats -> float32, ints -> int32. NumPy arrays keep
    their dtype, so float64 data stays float64 and float32 stays float32.
    """
    if isinstance(value, Tensor):
        if dtype is None or as_dtype(dtype) == value.dtype:
            return value
        return _ops().cast(value, dtype)
    target = as_dtype(dtype) if dtype is not None else None
    current = _backend.current()
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy"):
        owner = _backend.backend_of(value)
        arr = value if owner is not _backend.CPU else current.asarray(value)
        if target is not None and target != _string:
            arr = arr.astype(target.np_dtype, copy=False)
        elif target is None and arr.dtype.kind in "US":
            arr = arr.astype(object)
        return Tensor(arr)
    host = np.asarray(value)
    if target is None:
        target = _default_dtype(host)
    if target == _string:
        return Tensor(np.asarray(value, dtype=object))
    return Tensor(current.asarray(host, dtype=target.np_dtype))


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Tensor:
    """Create a tensor from a value, as `tf.constant` does (optionally broadcast to `shape`)."""
    t = as_tensor(value, dtype=dtype)
    if shape is not None and tuple(shape) != t.shape:
        xp = t.backend.xp
        data = t.data
        data = (
            xp.reshape(data, shape)
            if data.size == int(np.prod(shape))
            else xp.broadcast_to(data, shape).copy()
        )
        t = Tensor(data)
    return t
