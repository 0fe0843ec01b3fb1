"""The LSTM's compiled time loop (`native.lstm_forward_loop` / `lstm_backward_loop`) against the
Python loop it replaces, bit for bit, and against torch.nn.LSTM in float32.

The compiled loop serves float32 NumPy arrays with sigmoid gates, a tanh cell, no mask and no
recurrent dropout, for batches and units of at least 2; everything else runs the Python loop.
Each row runs one LSTM training call with the compiled loop allowed and once with it ruled out
(the per-step kernels and the NumPy composite then run), and requires the same bits and the
expected path. Gradients are checked against finite differences in float64 by
test_perf_rnn_chunks.py on the Python loop, whose float32 operations the compiled loop repeats.
The compiled input projection (product, bias and gate scale per block) repeats its NumPy
composite bit for bit too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import activations, native
from engine.kernels import recurrent as K
from engine.layers import registry
from engine.layers.base import CallContext
from tests.engine.test_native import _lstm_inputs

needs_loop = pytest.mark.skipif(
    native._ext.recurrent is None or not native.split_gemm_available(),
    reason="no compiled recurrent loop or no NumPy-bundled OpenBLAS",
)

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

F, U = 6, 8

# (config, batch, steps, whether the compiled loop serves it)
CASES: list[tuple[dict[str, Any], int, int, bool]] = [
    ({}, 5, 23, True),
    ({"return_sequences": True}, 4, 23, True),
    ({"go_backwards": True, "return_sequences": True}, 3, 9, True),
    ({"use_bias": False}, 2, 5, True),
    ({"dropout": 0.3}, 4, 7, True),
    ({"stateful": True}, 3, 6, True),
    ({}, 4, 1, True),
    ({"units": 64}, 64, 9, True),  # W4's shapes: the step products without sgemm where they serve
    ({"units": 32, "return_sequences": True}, 5, 7, True),  # halves of 2 and 3 rows
    ({}, 1, 7, False),  # one row: NumPy's matmul takes it to gemv
    ({}, 0, 7, False),
    ({"recurrent_dropout": 0.2}, 4, 7, False),
    ({"recurrent_activation": "hard_sigmoid"}, 4, 7, False),
    ({"activation": "relu"}, 4, 7, False),
]


class _Spy:
    """Counts the compiled loop's runs, forward and backward."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ran: list[str] = []
        for name in ("lstm_forward_loop", "lstm_backward_loop"):
            real = getattr(native, name)
            monkeypatch.setattr(native, name, self._wrap(name, real))

    def _wrap(self, name: str, real: Any) -> Any:
        def spy(*args: Any) -> bool:
            ran = bool(real(*args))
            if ran:
                self.ran.append(name)
            return ran

        return spy


def _run(
    config: dict[str, Any], n: int, steps: int, mask: np.ndarray | None = None
) -> list[np.ndarray]:
    """Output, final states, input gradient and weight gradients of one training call (two for
    a stateful layer, whose second call starts from the first's states)."""
    layer = registry.get("LSTM").from_config({"units": U, **config})
    layer.build((None, steps, F), rng=np.random.default_rng(1))
    rng = np.random.default_rng(2)
    params = [w.data.copy() for w in layer.weights]
    if config.get("use_bias", True):
        params[2] = rng.standard_normal(params[2].shape).astype(np.float32) * 0.5
    results = []
    for _ in range(2 if config.get("stateful") else 1):
        x = rng.standard_normal((n, steps, F)).astype(np.float32)
        ctx = CallContext(training=True, rng=np.random.default_rng(3), mask=mask)
        out, cache = layer.forward(params, x, ctx)
        gy = rng.standard_normal(out.shape).astype(np.float32)
        grads = [np.empty_like(p) for p in params]
        dx = layer.backward(params, cache, gy, grads, ctx)
        results += [out, dx, *grads, *layer.final_states(cache[2])]
    return results


@needs_loop
@pytest.mark.parametrize(("config", "n", "steps", "compiled"), CASES)
def test_the_compiled_loop_repeats_the_python_loop_bit_for_bit(
    config: dict[str, Any], n: int, steps: int, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    fast = _run(config, n, steps)
    expected = ["lstm_forward_loop", "lstm_backward_loop"] * (2 if config.get("stateful") else 1)
    assert spy.ran == (expected if compiled else [])
    monkeypatch.setattr(native._ext, "split_gemm", False)  # the per-step kernels
    steps_only = _run(config, n, steps)
    monkeypatch.setattr(native._ext, "recurrent", None)  # the NumPy composite
    composite = _run(config, n, steps)
    for got, per_step, ref in zip(fast, steps_only, composite, strict=True):
        np.testing.assert_array_equal(got.view(np.uint8), ref.view(np.uint8))
        np.testing.assert_array_equal(per_step.view(np.uint8), ref.view(np.uint8))


def _openblas_core() -> str | None:
    from threadpoolctl import threadpool_info

    cores = [i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"]
    return cores[0] if cores else None


# (m, n, k) of a step product, and whether the loops take it without sgemm where OpenBLAS runs
# its SkylakeX kernels, which sum an output as one multiply-add chain over k like the loops'
# own product; with k in blocks (larger k) or n not in 32s they call sgemm
OWN_PRODUCTS = [
    (32, 64, 64, True),  # W4 forward, a half of the rows and a gate
    (64, 64, 256, True),  # W4 backward
    (3, 32, 7, True),
    (64, 64, 1024, False),
    (8, 48, 48, False),
]


@needs_loop
@pytest.mark.skipif(
    _openblas_core() != "SkylakeX" or "avx512" not in native.isa_levels(),
    reason="no AVX-512 loops, or OpenBLAS without its SkylakeX kernels",
)
@pytest.mark.parametrize(("m", "n", "k", "own"), OWN_PRODUCTS)
def test_the_step_products_skip_sgemm_where_they_give_its_bits(
    m: int, n: int, k: int, own: bool
) -> None:
    module = native._ext.recurrent
    assert module is not None
    before = native.use_isa("avx512")
    try:
        assert module.own_product_serves(m, n, k) == own
        native.use_isa("avx2")  # the AVX2 level keeps sgemm
        assert not module.own_product_serves(m, n, k)
    finally:
        native.use_isa(before)


@needs_loop
def test_a_mask_takes_the_python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    mask = np.random.default_rng(7).random((4, 9)) > 0.3
    fast = _run({"return_sequences": True}, 4, 9, mask)
    assert spy.ran == []
    monkeypatch.setattr(native._ext, "recurrent", None)
    for got, ref in zip(fast, _run({"return_sequences": True}, 4, 9, mask), strict=True):
        np.testing.assert_array_equal(got, ref)


torch = pytest.importorskip("torch")


@needs_loop
@pytest.mark.parametrize("return_sequences", [False, True])
def test_the_compiled_loop_matches_torch(
    return_sequences: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras's gates i, f, c, o are torch's i, f, g, o: the same order."""
    n, steps = 16, 40
    spy = _Spy(monkeypatch)
    layer = registry.get("LSTM").from_config({"units": U, "return_sequences": return_sequences})
    layer.build((None, steps, F), rng=np.random.default_rng(4))
    rng = np.random.default_rng(5)
    params = [w.data.copy() for w in layer.weights]
    params[2] = rng.standard_normal(params[2].shape).astype(np.float32) * 0.5
    x = rng.standard_normal((n, steps, F)).astype(np.float32)
    out, cache = layer.forward(params, x, CallContext())
    gy = rng.standard_normal(out.shape).astype(np.float32)
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, gy, grads, CallContext())
    assert spy.ran == ["lstm_forward_loop", "lstm_backward_loop"]

    module = torch.nn.LSTM(F, U, batch_first=True)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(params[0].T)))
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(params[1].T)))
        module.bias_ih_l0.copy_(torch.from_numpy(params[2]))
        module.bias_hh_l0.zero_()
    xt = torch.from_numpy(x).requires_grad_(True)
    seq, _ = module(xt)
    ref = seq if return_sequences else seq[:, -1]
    ref.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=2e-5)
    np.testing.assert_allclose(grads[0], module.weight_ih_l0.grad.numpy().T, atol=5e-5)
    np.testing.assert_allclose(grads[1], module.weight_hh_l0.grad.numpy().T, atol=5e-5)
    np.testing.assert_allclose(grads[2], module.bias_ih_l0.grad.numpy(), atol=5e-5)


def _gates() -> tuple[K.GateFn, K.GateFn]:
    return K.GateFn(activations.get("tanh")), K.GateFn(activations.get("sigmoid"))


@needs_loop
def test_the_compiled_loops_call_their_hooks_at_chunk_starts() -> None:
    steps, n, u = 23, 3, 5
    a = _lstm_inputs(steps, n, u, seed=6)
    act, ract = _gates()
    ahead: list[int] = []
    cache = K.lstm_forward(a["xz"], a["rk"], a["h0"], a["c0"], act, ract, ready=ahead.append)
    assert ahead == [t0 for t0, _ in K.chunk_bounds(steps)]
    behind: list[tuple[int, np.ndarray]] = []
    dxz, _ = K.lstm_backward(
        cache,
        a["rk"],
        act,
        ract,
        None,
        a["dh_last"],
        lambda t, g, _: behind.append((t, g[t:].copy())),
    )
    assert [t for t, _ in behind] == [t0 for t0, _ in K.backward_chunk_bounds(steps)][::-1]
    for t, seen in behind:  # steps t.. were final when the hook ran
        np.testing.assert_array_equal(seen, dxz[t:])


@needs_loop
def test_an_error_in_a_hook_stops_the_compiled_loop() -> None:
    a = _lstm_inputs(23, 3, 5, seed=6)
    act, ract = _gates()

    def fail(t: int) -> None:
        if t > 0:
            raise RuntimeError(f"hook failed at {t}")

    with pytest.raises(RuntimeError, match="hook failed at 4"):
        K.lstm_forward(a["xz"], a["rk"], a["h0"], a["c0"], act, ract, ready=fail)


# (chunks, rows, features, units, bias, scaled, whether the compiled projection serves it)
PROJECTIONS = [
    (16, 64, 64, 64, True, True, True),
    (3, 5, 6, 7, True, False, True),
    (2, 3, 1, 2, False, True, True),
    (1, 4, 9, 3, False, False, True),
    (2, 1, 6, 8, True, True, False),  # one row: NumPy's matmul takes it to gemv
    (2, 4, 6, 1, True, True, False),
]


@needs_loop
@pytest.mark.parametrize(("chunks", "n", "f", "u", "bias", "scaled", "compiled"), PROJECTIONS)
def test_the_compiled_projection_repeats_the_composite_bit_for_bit(
    chunks: int, n: int, f: int, u: int, bias: bool, scaled: bool, compiled: bool
) -> None:
    rng = np.random.default_rng(8)
    xt = rng.standard_normal((chunks, n, f)).astype(np.float32)
    kernel = rng.standard_normal((4, f, u)).astype(np.float32)
    b = rng.standard_normal((4, 1, u)).astype(np.float32) if bias else None
    scale = K.gate_scale_array(np, np.float32) if scaled else None
    out = np.full((chunks, 4, n, u), np.nan, dtype=np.float32)
    assert native.lstm_project(xt, kernel, b, scale, out) == compiled
    expected = np.matmul(xt[:, None], kernel)
    if b is not None:
        expected += b
    if scale is not None:
        expected *= scale
    got = np.empty_like(out)
    K.lstm_project(xt, kernel, b, scaled, got)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    if compiled:
        np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))
