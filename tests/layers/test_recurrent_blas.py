"""The recurrent layers run their small per-step GEMMs on one BLAS thread (see
engine.fused.blas_threads.single_threaded_blas) and restore the thread count afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from engine.fused.blas_threads import single_threaded_blas
from engine.kernels import recurrent as K
from engine.layers import registry
from engine.layers.base import CallContext

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    """Thread counts of NumPy's BLAS: the one a recurrent layer's products run on. Libraries
    loaded later by other code (SciPy's own OpenBLAS, once an earlier test
    imported it) are outside the engine's cached controller and not its to limit."""
    blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    numpy_blas = [p for p in blas if "numpy" in p["filepath"]]
    return [p["num_threads"] for p in numpy_blas or blas]


def test_single_threaded_blas_limits_and_restores() -> None:
    before = _blas_threads()
    with single_threaded_blas():
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def test_lstm_forward_and_backward_run_single_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[int]] = []
    layer = registry.get("LSTM").from_config({"units": 3})
    layer.build((None, 4, 2), rng=np.random.default_rng(0))
    original = K.lstm_forward

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(_blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(K, "lstm_forward", spy)
    params = [w.data for w in layer.weights]
    x = np.random.default_rng(1).standard_normal((2, 4, 2)).astype(np.float32)
    out, cache = layer.forward(params, x, CallContext())
    layer.backward(
        params, cache, np.ones_like(out), [np.empty_like(p) for p in params], CallContext()
    )
    assert seen and all(n == 1 for n in seen[0])
