"""`gate_exp`, the LSTM's own float32 exp: accurate to within an ulp, with its clamps and NaN
as documented. (Its compiled twin is compared bit for bit in test_native's LSTM rows.)"""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernels.gate_exp import HI, LO, gate_exp, tanh_by_exp


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.abs(got.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32))


def test_gate_exp_is_within_one_ulp_over_its_range() -> None:
    x = np.linspace(float(LO), float(HI), 200_001, dtype=np.float32)
    got = x.copy()
    gate_exp(got)
    assert _ulps(got, np.exp(x.astype(np.float64))).max() <= 1.0


def test_tanh_by_exp_is_close_to_tanh() -> None:
    x = np.linspace(-20, 20, 100_001, dtype=np.float32)
    out = np.empty_like(x)
    tanh_by_exp(x, out)
    np.testing.assert_allclose(out, np.tanh(x.astype(np.float64)), rtol=0, atol=2e-7)
    assert out.min() == -1.0 and out.max() == 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, 1.0),
        (-0.0, 1.0),
        (np.inf, float(np.exp(np.float64(HI)))),
        (1e30, float(np.exp(np.float64(HI)))),
        (-np.inf, float(np.exp(np.float64(LO)))),
        (np.nan, np.nan),
    ],
)
def test_gate_exp_clamps_and_keeps_nan(value: float, expected: float) -> None:
    x = np.array([value], dtype=np.float32)
    gate_exp(x)
    np.testing.assert_allclose(x[0], np.float32(expected), rtol=1e-6)


def test_float64_takes_numpys_exp() -> None:
    x = np.linspace(-5, 5, 101)
    got = x.copy()
    gate_exp(got)
    np.testing.assert_array_equal(got, np.exp(x))
