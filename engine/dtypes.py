"""TensorFlow-style dtype objects (`en.float32`, `en.int32`, `en.string`, ...) over NumPy dtypes."""

from __future__ import annotations

from typing import Any

import numpy as np


class DType:
    """A tensor's element type; prints as TensorFlow does (`<dtype: 'float32'>`)."""

    __slots__ = ("name", "np_dtype")

    def __init__(self, name: str, np_dtype: Any) -> None:
        self.name = name
        self.np_dtype = np.dtype(np_dtype)

    @property
    def is_floating(self) -> bool:
        return self.np_dtype.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.np_dtype.kind in "iu"

    @property
    def is_string(self) -> bool:
        return self.name == "string"

    def __repr__(self) -> str:
        return f"<dtype: '{self.name}'>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return False

    def __hash__(self) -> int:
        return hash(self.name)


float16 = DType("float16", np.float16)
float32 = DType("float32", np.float32)
float64 = DType("float64", np.float64)
int8 = DType("int8", np.int8)
int16 = DType("int16", np.int16)
int32 = DType("int32", np.int32)
int64 = DType("int64", np.int64)
uint8 = DType("uint8", np.uint8)
bool_ = DType("bool", np.bool_)
string = DType("string", np.object_)

_BY_NAME = {
    d.name: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool_, string)
}

_BY_NUMPY = {d.np_dtype: d for d in _BY_NAME.values() if d is not string}
_BY_NUMPY[np.dtype(object)] = string


def as_dtype(value: Any) -> DType:
    """Accept a DType, a name ("float32"), a NumPy dtype or a Python type and return a DType."""
    if isinstance(value, DType):
        return value
    found = _BY_NUMPY.get(value) if isinstance(value, np.dtype) else None
    if found is not None:
        return found
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    if value is str:
        return string
    np_dtype = np.dtype(value)
    if np_dtype.kind in "OUS":
        return string
    for dtype in _BY_NAME.values():
        if dtype.np_dtype == np_dtype and dtype is not string:
            return dtype
    raise TypeError(f"unsupported dtype {value!r}")
