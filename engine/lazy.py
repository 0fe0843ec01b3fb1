"""Modules loaded on first use, so the spec side imports the layer classes without their runtime.

`modelspec lint` and `summary` need a layer's config, shape rule and weight list, not its
forward pass: a layer module names NumPy, the backend, the tensors and its kernels through
these stand-ins (the standard library's `LazyLoader`), which run the real module at the first
attribute read and are then that module itself, at no cost per call. Building a layer loads
them all (`load_all`) before any training thread could race to do it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

_PENDING: list[ModuleType] = []


def module(name: str) -> ModuleType:
    """`name` as it is in `sys.modules`, or a stand-in that imports it on first use."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    lazy = importlib.util.module_from_spec(spec)
    sys.modules[name] = lazy
    spec.loader.exec_module(lazy)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, lazy)
    _PENDING.append(lazy)
    return lazy


def is_loaded(candidate: ModuleType) -> bool:
    """Whether a module's code has run (a stand-in not yet used has not)."""
    return not isinstance(candidate, importlib.util._LazyModule)  # type: ignore[attr-defined]


def load_all() -> None:
    """Run every stand-in's module now (reading an attribute loads it)."""
    while _PENDING:
        _PENDING.pop().__name__  # noqa: B018


if TYPE_CHECKING:
    import numpy

    from engine import autodiff, backend, device_checks, native, tensor
    from engine.fused import batched_gemm, blas_threads, gemm, workspace
    from engine.kernels import attention as attention_kernels
    from engine.kernels import batch_norm, layer_norm
    from engine.kernels import conv as conv_kernels
    from engine.kernels import conv_pool as conv_pool_kernels
    from engine.kernels import pool as pool_kernels
    from engine.kernels import recurrent as recurrent_kernels
    from engine.kernels import relu as relu_kernels
    from engine.kernels import softmax as softmax_kernels
else:
    numpy = module("numpy")
    autodiff = module("engine.autodiff")
    backend = module("engine.backend")
    device_checks = module("engine.device_checks")
    native = module("engine.native")
    tensor = module("engine.tensor")
    gemm = module("engine.fused.gemm")
    batched_gemm = module("engine.fused.batched_gemm")
    blas_threads = module("engine.fused.blas_threads")
    workspace = module("engine.fused.workspace")
    attention_kernels = module("engine.kernels.attention")
    batch_norm = module("engine.kernels.batch_norm")
    conv_kernels = module("engine.kernels.conv")
    conv_pool_kernels = module("engine.kernels.conv_pool")
    layer_norm = module("engine.kernels.layer_norm")
    pool_kernels = module("engine.kernels.pool")
    recurrent_kernels = module("engine.kernels.recurrent")
    relu_kernels = module("engine.kernels.relu")
    softmax_kernels = module("engine.kernels.softmax")
