"""The stacked product split over both cores (`engine.fused.batched_gemm`, `_batched.c`) against
NumPy's own stacked matmul, bit for bit, for the layouts attention passes it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from engine import native
from engine.fused import batched_gemm, gemm

Operands = tuple[np.ndarray, np.ndarray, np.ndarray]
B, T, H, D = 6, 24, 3, 8


def _heads(x: np.ndarray) -> np.ndarray:
    """The (B, H, T, D) view of a (B, T, H, D) buffer, as MultiHeadAttention splits heads."""
    return x.transpose(0, 2, 1, 3)


def _layouts() -> dict[str, Callable[[np.random.Generator], Operands]]:
    def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    def empty(*shape: int) -> np.ndarray:
        return np.full(shape, np.nan, dtype=np.float32)

    return {
        # scores: the head-split query times a contiguous transposed key
        "strided_a": lambda r: (
            _heads(normal(r, B, T, H, D)),
            normal(r, B, H, D, T),
            empty(B, H, T, T),
        ),
        # weights @ value, written into the (B, T, H, D) layout
        "strided_b_and_out": lambda r: (
            normal(r, B, H, T, T),
            _heads(normal(r, B, T, H, D)),
            _heads(empty(B, T, H, D)),
        ),
        # a value's gradient P^T g: a transposed stack on the left
        "transposed_a": lambda r: (
            np.swapaxes(normal(r, B, H, T, T), -1, -2),
            _heads(normal(r, B, T, H, D)),
            _heads(empty(B, T, H, D)),
        ),
        "transposed_b": lambda r: (
            normal(r, B, H, T, D),
            np.swapaxes(normal(r, B, H, T, D), -1, -2),
            empty(B, H, T, T),
        ),
        "one_stack_axis": lambda r: (normal(r, 7, 5, 9), normal(r, 7, 9, 4), empty(7, 5, 4)),
    }


LAYOUTS = _layouts()
# Built with the compiled split, the stack product must be there too (CI builds both).
needs_batched = pytest.mark.skipif(
    not native.split_gemm_available(), reason="no compiled split or no NumPy-bundled OpenBLAS"
)


def _numpy(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    expected = np.full(out.shape, np.nan, dtype=np.float32)
    np.matmul(a, b, out=expected)
    return expected


@needs_batched
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compiled_stack_product_gives_numpys_bits(layout: str) -> None:
    a, b, out = LAYOUTS[layout](np.random.default_rng(1))
    assert native.batched_matmul(a, b, out)
    np.testing.assert_array_equal(out, _numpy(a, b, out))


@needs_batched
@pytest.mark.parametrize(
    "change",
    [
        lambda a, b, out: (a.astype(np.float64), b.astype(np.float64), out.astype(np.float64)),
        lambda a, b, out: (a[:, :, :1], b, out[:, :, :1]),  # one-row matrices: NumPy's gemv
        lambda a, b, out: (a, b, a[..., : out.shape[-1]]),  # out overlaps an operand
        lambda a, b, out: (a[:1], b, out),  # a broadcast stack
        lambda a, b, out: (a[..., ::2], b[:, :, ::2], out),  # no unit stride: NumPy copies
        lambda a, b, out: (a, b, np.swapaxes(np.swapaxes(out, -1, -2).copy(), -1, -2)),
    ],
    ids=["float64", "gemv", "overlap", "broadcast", "strided", "column_major_out"],
)
def test_compiled_stack_product_steps_aside_where_numpy_makes_other_calls(
    change: Callable[[np.ndarray, np.ndarray, np.ndarray], Operands],
) -> None:
    a, b, out = change(*LAYOUTS["transposed_b"](np.random.default_rng(2)))
    assert not native.batched_matmul(a, b, out)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python_halves"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_split_stack_product_gives_numpys_bits_either_way(
    layout: str, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if compiled and not native.split_gemm_available():
        pytest.skip("no compiled split or no NumPy-bundled OpenBLAS")
    compiled_runs: list[bool] = []
    built = native.batched_matmul

    def spy(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
        compiled_runs.append(compiled and built(a, b, out))
        return compiled_runs[-1]

    monkeypatch.setattr(native, "batched_matmul", spy)
    monkeypatch.setattr(gemm, "SPLIT_MIN_FLOPS", 0)
    a, b, out = LAYOUTS[layout](np.random.default_rng(3))
    with gemm.planned_blas():
        batched_gemm.matmul(a, b, out)
    np.testing.assert_array_equal(out, _numpy(a, b, out))
    assert compiled_runs == [compiled], "the compiled stack product did not run"
