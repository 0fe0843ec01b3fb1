"""Every op of the table: forward against NumPy, tape gradients against central finite differences
in float64, against torch where it is installed, float32 kept float32, and the same numbers on
the strict fake device (which refuses any host array mixed into device math).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

import engine as en
from engine.tensor import Tensor
from tests.engine.optable import ROWS, OpCase, sample

EPS = 1e-6


def _inputs(case: OpCase, dtype: Any = np.float64) -> list[np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    return [sample(rng, spec, dtype) for spec in case.inputs]


def _weights(case: OpCase, shape: tuple[int, ...]) -> np.ndarray:
    """Random output weights, so the checked gradient is not just a sum of ones."""
    return np.random.default_rng(7).uniform(0.5, 1.5, shape)


def _run(case: OpCase, arrays: list[np.ndarray], device: str) -> tuple[Tensor, list[Any]]:
    """Output and tape gradients of sum(weights * op(inputs)) on a device."""
    with en.device(device):
        xs = [en.constant(a) for a in arrays]
        with en.GradientTape() as tape:
            tape.watch(xs)
            y = case.fn(*xs)
            w = en.constant(_weights(case, y.shape).astype(arrays[0].dtype))
            loss = en.reduce_sum(y * w)
        return y, tape.gradient(loss, xs)


def _numeric_grads(case: OpCase, arrays: list[np.ndarray]) -> list[np.ndarray]:
    def f(values: list[np.ndarray]) -> float:
        y = case.fn(*[en.constant(v) for v in values]).numpy()
        return float((y * _weights(case, y.shape)).sum())

    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        for j in range(a.size):
            plus = [v.copy() for v in arrays]
            minus = [v.copy() for v in arrays]
            plus[i].flat[j] += EPS
            minus[i].flat[j] -= EPS
            g.flat[j] = (f(plus) - f(minus)) / (2 * EPS)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case", ROWS, ids=lambda c: c.id)
def test_forward_matches_numpy(case: OpCase) -> None:
    if case.numpy_fn is None:
        pytest.skip("checked against torch and finite differences instead")
    arrays = _inputs(case)
    y = case.fn(*[en.constant(a) for a in arrays])
    np.testing.assert_allclose(y.numpy(), case.numpy_fn(*arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ROWS, ids=lambda c: c.id)
def test_gradient_matches_finite_differences(case: OpCase) -> None:
    arrays = _inputs(case)
    _, grads = _run(case, arrays, "cpu")
    for got, want in zip(grads, _numeric_grads(case, arrays), strict=True):
        assert got is not None and got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=case.rtol, atol=case.atol)


@pytest.mark.torch
@pytest.mark.parametrize("case", [r for r in ROWS if r.torch_fn], ids=lambda c: c.id)
def test_matches_torch(case: OpCase) -> None:
    torch = pytest.importorskip("torch")
    arrays = _inputs(case)
    y, grads = _run(case, arrays, "cpu")
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    assert case.torch_fn is not None
    ty = case.torch_fn(torch, *ts)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    (ty * torch.tensor(_weights(case, y.shape))).sum().backward()
    for got, t in zip(grads, ts, strict=True):
        np.testing.assert_allclose(got.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", ROWS, ids=lambda c: c.id)
def test_float32_stays_float32(case: OpCase) -> None:
    arrays = _inputs(case, np.float32)
    y, grads = _run(case, arrays, "cpu")
    assert y.dtype == en.float32
    assert y.data.dtype == np.float32
    assert all(g.data.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("device", ["cpu", "fake"])
@pytest.mark.parametrize("case", ROWS, ids=lambda c: c.id)
def test_device_discipline(case: OpCase, device: str) -> None:
    arrays = _inputs(case, np.float32)
    y_cpu, g_cpu = _run(case, arrays, "cpu")
    y, grads = _run(case, arrays, device)
    assert y.device == device
    assert all(g.device == device for g in grads)
    np.testing.assert_array_equal(y.numpy(), y_cpu.numpy())
    for got, want in zip(grads, g_cpu, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_every_op_has_a_row() -> None:
    from engine import ops
    from tests.engine.optable import NOT_IN_TABLE, ROW_FOR

    ids = [row.id for row in ROWS]
    missing = [
        name
        for name in ops.__all__
        if name not in NOT_IN_TABLE and not any(i.startswith(ROW_FOR.get(name, name)) for i in ids)
    ]
    assert missing == []
