"""A strict fake accelerator for CI: arrays that refuse to mix with host arrays, as CuPy's do.

`FakeArray` is a NumPy ndarray subclass whose ufuncs, array functions and item assignment raise
`TypeError` when any argument is a plain host `ndarray` (Python numbers and NumPy scalars are
fine, as on CuPy). `xp` mirrors the NumPy namespace the engine uses and returns fake arrays;
`xp.asarray` is the explicit host -> device copy and `xp.asnumpy` the device -> host copy. Running
the op table and a training step on this backend proves that no host array leaks into device
math. One leak it cannot catch: `np.asarray(fake)` returns a host view without complaint.

`TRANSFERS` counts the copies a GPU would make: host -> device (`xp.asarray` of host data) and
device -> host (`xp.asnumpy`, and reading a device value into Python with `float`, `int`,
`bool`, `item` or `tolist`, each a copy and a sync on CuPy; and results whose size depends on
the data, `to_host:size`: indexing with a boolean mask, `nonzero`, `flatnonzero`, `argwhere`,
for which CuPy reads the count back before it can allocate), so a test can require a training
step to make none. `CALLS` counts the operations run on the device (ufuncs, array functions,
`xp` calls): on CuPy each is a kernel launch or an allocation, the host's cost per step.
"""

from __future__ import annotations

import collections
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.backend import Backend
from engine.kernels.scatter import host_sum_rows

TRANSFERS: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def _to_host(kind: str) -> None:
    TRANSFERS["to_host"] += 1
    TRANSFERS[f"to_host:{kind}"] += 1


class FakeArray(np.ndarray):
    """A device array: NumPy storage, CuPy's refusal to mix with host arrays."""

    def __float__(self) -> float:
        _to_host("float")
        return float(self.view(np.ndarray))

    def __int__(self) -> int:
        _to_host("int")
        return int(self.view(np.ndarray))

    def __bool__(self) -> bool:
        _to_host("bool")
        return bool(self.view(np.ndarray))

    def item(self, *args: Any) -> Any:
        _to_host("item")
        return self.view(np.ndarray).item(*args)

    def tolist(self) -> Any:
        _to_host("tolist")
        return self.view(np.ndarray).tolist()

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        CALLS["device"] += 1
        _refuse_host(ufunc.__name__, inputs)
        out = kwargs.get("out")
        if out is not None:
            _refuse_host(ufunc.__name__, out)
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*(_unwrap(i) for i in inputs), **kwargs)
        return None if method == "at" else _wrap(result)

    def __array_function__(
        self, func: Callable[..., Any], types: Any, args: Any, kwargs: Any
    ) -> Any:
        CALLS["device"] += 1
        if func in _SIZED:
            _to_host("size")
        if np.ndarray in types:
            raise TypeError(
                f"{func.__name__}: cannot mix a device array with a host numpy.ndarray; "
                "move it with xp.asarray first"
            )
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __getitem__(self, index: Any) -> Any:
        if _has_mask(index):
            _to_host("size")
        # CuPy returns 0-d device arrays where NumPy returns host scalars
        return _wrap(super().__getitem__(index))

    def nonzero(self) -> Any:
        return np.nonzero(self)

    def __setitem__(self, index: Any, value: Any) -> None:
        _refuse_host("__setitem__", (value,))
        super().__setitem__(_unwrap(index), _unwrap(value))


# functions whose result size depends on the values: CuPy syncs to read it
_SIZED = frozenset({np.nonzero, np.flatnonzero, np.argwhere})


def _has_mask(index: Any) -> bool:
    """Whether an index holds a boolean array (its count of True sets the result's size)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(part, np.ndarray) and part.dtype == np.bool_ for part in parts)


def _refuse_host(name: str, values: Any) -> None:
    for value in values:
        if type(value) is np.ndarray:
            raise TypeError(
                f"{name}: cannot mix a device array with a host numpy.ndarray; "
                "move it with xp.asarray first"
            )


def _unwrap(value: Any) -> Any:
    """Plain ndarray views of fake arrays, through lists, tuples and dicts."""
    if isinstance(value, FakeArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """Fake views of results; NumPy scalars become 0-d device arrays, as CuPy returns."""
    if isinstance(value, FakeArray):
        return value
    if isinstance(value, np.ndarray):
        return value.view(FakeArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(FakeArray)
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _device_function(func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        CALLS["device"] += 1
        return _wrap(func(*args, **kwargs))

    call.__name__ = getattr(func, "__name__", "function")
    return call


def asarray(data: Any, dtype: Any = None) -> Any:
    """Copy host data to the device (a no-op for arrays already there, as in CuPy)."""
    if isinstance(data, FakeArray):
        return data if dtype is None else data.astype(dtype, copy=False)
    TRANSFERS["to_device"] += 1
    return np.array(data, dtype=dtype, copy=True).view(FakeArray)


def asnumpy(array: Any) -> np.ndarray:
    """Copy a device array back to the host."""
    _to_host("asnumpy")
    return np.array(_unwrap(array), copy=True)


def owns(array: Any) -> bool:
    """True for arrays living on this device."""
    return isinstance(array, FakeArray)


def as_strided(x: Any, shape: Any = None, strides: Any = None) -> Any:
    """A strided window view that stays on the device."""
    return np.lib.stride_tricks.as_strided(x, shape, strides, subok=True)


class _Namespace(types.ModuleType):
    """Forwards to NumPy, turning every array a function returns into a device array."""

    def __init__(self, name: str, source: Any, overrides: dict[str, Any]) -> None:
        super().__init__(name)
        self._source = source
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._source, name)
        if isinstance(attr, (type, np.ufunc)) or not callable(attr):
            return attr
        wrapped = _device_function(attr)
        setattr(self, name, wrapped)
        return wrapped


_stride_tricks = _Namespace(
    "engine.fake_device.xp.lib.stride_tricks",
    np.lib.stride_tricks,
    {"as_strided": as_strided},
)
_lib = _Namespace("engine.fake_device.xp.lib", np.lib, {"stride_tricks": _stride_tricks})

xp = _Namespace(
    "engine.fake_device.xp",
    np,
    {
        "asarray": asarray,
        "array": asarray,
        "asnumpy": asnumpy,
        "owns": owns,
        "ndarray": FakeArray,
        "lib": _lib,
    },
)


def sum_rows(ids: Any, rows: Any, out: Any) -> None:
    """out = 0, then out[ids[k]] += rows[k], as one device operation (`cupyx.scatter_add` on a
    GPU) that reads no size back; computed with the CPU's method, so its bits are the CPU's."""
    CALLS["device"] += 1
    host_sum_rows(_unwrap(ids), _unwrap(rows), _unwrap(out))


BACKEND = Backend("fake", xp, sum_rows)
