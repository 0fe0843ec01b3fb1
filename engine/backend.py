"""The one place that knows which array library runs the math: NumPy on the CPU, CuPy on a GPU.

Every array call in the engine goes through the `xp` of a `Backend`, so the same kernels run on
either device. CuPy is imported lazily, only when the GPU is asked for.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np


class DeviceUnavailableError(RuntimeError):
    """Raised when a device is asked for that this machine cannot provide."""


@dataclass(frozen=True)
class Backend:
    """An array library bound to a device name ("cpu", "gpu", or "fake" for tests)."""

    name: str
    xp: ModuleType
    # out[...] = 0, then out[ids[k]] += rows[k] for every k (repeated ids summed), without
    # reading any size back to the host: a device runs it with no sync
    sum_rows: Callable[[Any, Any, Any], None]

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """Move host data (lists, NumPy arrays) onto this backend's device."""
        return self.xp.asarray(data, dtype=dtype)

    def to_host(self, array: Any) -> np.ndarray:
        """Copy an array of this backend back to a NumPy array (CuPy and the fake use asnumpy)."""
        asnumpy = getattr(self.xp, "asnumpy", None)
        if asnumpy is not None:
            return np.asarray(asnumpy(array))
        return np.asarray(array)


def _host_sum_rows(ids: Any, rows: Any, out: Any) -> None:
    from engine.kernels.scatter import host_sum_rows  # it imports this module

    host_sum_rows(ids, rows, out)


def _cupy_sum_rows(ids: Any, rows: Any, out: Any) -> None:
    import cupyx

    out[...] = 0
    cupyx.scatter_add(out, ids, rows)


CPU = Backend("cpu", np, _host_sum_rows)
_registry: dict[str, Backend] = {"cpu": CPU}
_state = threading.local()

_ALIASES = {
    "cpu": "cpu",
    "/cpu:0": "cpu",
    "cpu:0": "cpu",
    "gpu": "gpu",
    "/gpu:0": "gpu",
    "gpu:0": "gpu",
    "cuda": "gpu",
    "cuda:0": "gpu",
    "fake": "fake",
}


def canonical_device(name: str) -> str:
    """Map TensorFlow and PyTorch device spellings ("/GPU:0", "cuda") to "cpu" | "gpu"."""
    key = name.strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown device {name!r}; expected 'cpu' or 'gpu'")
    return _ALIASES[key]


def _load_gpu() -> Backend:
    try:
        import cupy
    except ImportError as exc:
        raise DeviceUnavailableError(
            "the GPU needs CuPy, which is not installed; install the gpu extra: "
            "pip install 'modelspec[gpu]'"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDA errors when no driver is present
        raise DeviceUnavailableError(f"CuPy is installed but sees no CUDA device: {exc}") from exc
    if count < 1:
        raise DeviceUnavailableError("CuPy is installed but sees no CUDA device")
    return Backend("gpu", cupy, _cupy_sum_rows)


def get_backend(name: str) -> Backend:
    """The backend for a device name, loading CuPy on first use of the GPU."""
    device = canonical_device(name)
    if device not in _registry:
        if device == "gpu":
            _registry["gpu"] = _load_gpu()
        elif device == "fake":
            fake = importlib.import_module("engine.fake_device")
            _registry["fake"] = fake.BACKEND
    return _registry[device]


def current() -> Backend:
    """The backend new tensors are placed on (set by `device(...)`)."""
    return getattr(_state, "backend", CPU)


@contextlib.contextmanager
def use(name: str) -> Iterator[Backend]:
    """Place new tensors and run new ops on the named device inside the block."""
    backend = get_backend(name)
    previous = current()
    _state.backend = backend
    try:
        yield backend
    finally:
        _state.backend = previous


def backend_of(array: Any) -> Backend:
    """The backend an array belongs to (NumPy arrays are on the CPU)."""
    if type(array) is np.ndarray:
        return CPU
    for backend in _registry.values():
        if backend.name != "cpu" and _owns(backend, array):
            return backend
    return CPU


def _owns(backend: Backend, array: Any) -> bool:
    owns = getattr(backend.xp, "owns", None)
    if owns is not None:
        return bool(owns(array))
    return type(array).__module__.startswith(backend.xp.__name__)


def to_backend(array: Any, backend: Backend) -> Any:
    """Move an array (host data, or another device's array) onto `backend`.

    A no-op for an array already there; lists and scalars become arrays. Training code uses it
    to move host batches to the device.
    """
    owner = backend_of(array)
    if owner is backend and hasattr(array, "shape"):
        return array
    host = owner.to_host(array) if owner is not CPU else array
    return backend.asarray(host)
