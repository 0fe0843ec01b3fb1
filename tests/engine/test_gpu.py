"""The op table on a real GPU through CuPy: same numbers as the CPU within float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.optable import ROWS, OpCase
from tests.engine.test_ops import _inputs, _run

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("case", ROWS, ids=lambda c: c.id)
def test_op_table_on_gpu(case: OpCase) -> None:
    arrays = _inputs(case, np.float32)
    y_cpu, g_cpu = _run(case, arrays, "cpu")
    y, grads = _run(case, arrays, "gpu")
    assert y.device == "gpu"
    np.testing.assert_allclose(y.numpy(), y_cpu.numpy(), rtol=1e-4, atol=1e-5)
    for got, want in zip(grads, g_cpu, strict=True):
        assert got.device == "gpu"
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
