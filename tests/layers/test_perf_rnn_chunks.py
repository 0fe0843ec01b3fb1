"""The recurrent layers' chunked, overlapped GEMMs against their one-chunk composite versions.

The input projection and the weight/input gradients run in time chunks on a worker thread
(engine.kernels.recurrent.Ahead / Behind). Here the same layer runs with many chunks and with a
single chunk (the plain full-sequence GEMMs); both must agree, repeat bit for bit, and match
central finite differences in float64 across chunk boundaries. The LSTM's fused gate pass
(one exp for its sigmoid and tanh gates) is checked against the composite activations.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from engine import activations
from engine.fused import parallel
from engine.kernels import chunk_tasks
from engine.kernels import recurrent as K
from engine.layers import registry
from engine.layers.base import CallContext

N, T, F, U = 3, 23, 4, 5  # T spans a short first chunk, one full chunk and a partial one

CONFIGS: list[dict[str, Any]] = [
    {"type": "SimpleRNN"},
    {"type": "LSTM"},
    {"type": "LSTM", "return_sequences": True, "go_backwards": True},
    {"type": "LSTM", "dropout": 0.3, "recurrent_dropout": 0.2},
    {"type": "LSTM", "use_bias": False, "recurrent_activation": "hard_sigmoid"},
    {"type": "GRU"},
    {"type": "GRU", "reset_after": False, "go_backwards": True, "dropout": 0.25},
    {"type": "GRU", "recurrent_dropout": 0.3, "return_sequences": True},
]


@pytest.mark.parametrize(
    ("steps", "forward", "backward"),
    [
        (0, [], []),
        (1, [(0, 1)], [(0, 1)]),
        (4, [(0, 4)], [(0, 4)]),
        (5, [(0, 4), (4, 5)], [(0, 1), (1, 5)]),
        (20, [(0, 4), (4, 20)], [(0, 16), (16, 20)]),
        (23, [(0, 4), (4, 20), (20, 23)], [(0, 3), (3, 19), (19, 23)]),
    ],
)
def test_chunk_bounds_cover_the_steps_in_order(
    steps: int, forward: list[tuple[int, int]], backward: list[tuple[int, int]]
) -> None:
    """The backward loop's chunks mirror the forward's: its short chunk is its first."""
    assert K.chunk_bounds(steps) == forward
    assert K.backward_chunk_bounds(steps) == backward


def test_ahead_runs_every_chunk_once_first_one_at_once() -> None:
    seen: list[tuple[int, int]] = []
    ahead = K.Ahead(lambda t0, t1: seen.append((t0, t1)), 23)
    assert seen[0] == (0, 4)
    for t in range(23):
        ahead(t)
        assert any(t0 <= t < t1 for t0, t1 in seen)
    assert sorted(seen) == K.chunk_bounds(23)


def test_behind_hands_over_each_finished_chunk_with_its_arrays() -> None:
    seen: list[tuple[int, int, Any]] = []
    marker = object()
    behind = K.Behind([lambda t0, t1, dxz, drz: seen.append((t0, t1, dxz))], 23)
    for t in range(22, -1, -1):
        behind(t, marker, marker)
    behind.finish()
    # each chunk once; the worker or the loop's thread may run it, in either order
    assert sorted((t0, t1) for t0, t1, _ in seen) == K.backward_chunk_bounds(23)
    assert all(arrays is marker for _, _, arrays in seen)


def test_the_loop_runs_the_chunks_a_busy_worker_has_not_started() -> None:
    release = threading.Event()
    blocker = parallel.HELPER.submit(release.wait, 10)
    try:
        where: list[int] = []
        ahead = K.Ahead(lambda t0, t1: where.append(threading.get_ident()), 23)
        for t in range(23):
            ahead(t)
        behind = K.Behind([lambda *args: where.append(threading.get_ident())], 23)
        for t in range(22, -1, -1):
            behind(t, None, None)
        behind.finish()
        assert where == [threading.get_ident()] * 6
    finally:
        release.set()
        blocker.result()


def test_the_loop_runs_later_tasks_while_the_worker_holds_the_one_it_needs() -> None:
    started, release = threading.Event(), threading.Event()
    where: dict[str, int] = {}

    def held() -> None:
        started.set()
        release.wait(10)
        where["held"] = threading.get_ident()

    def later() -> None:
        where["later"] = threading.get_ident()
        release.set()

    tasks = chunk_tasks.Tasks()
    tasks.add(held)
    assert started.wait(10)
    tasks.add(later, share=False)
    tasks.need(0)  # without taking `later` itself, this would wait until the 10 s timeout
    assert where["later"] == threading.get_ident() != where["held"]


def test_recurrent_loops_inside_the_shared_helpers_tasks_finish() -> None:
    """`parallel.run` and the chunked loops share one helper thread: a loop running on that
    thread queues its chunks behind itself, so it must run them all and never wait for them."""
    finished: list[tuple[int, list[tuple[int, int]]]] = []

    def loop() -> None:
        seen: list[tuple[int, int]] = []
        ahead = K.Ahead(lambda t0, t1: seen.append((t0, t1)), 23)
        for t in range(23):
            ahead(t)
        behind = K.Behind([lambda t0, t1, *arrays: seen.append((t0, t1))], 23)
        for t in range(22, -1, -1):
            behind(t, None, None)
        behind.finish()
        finished.append((threading.get_ident(), sorted(seen)))

    done = threading.Event()
    runner = threading.Thread(target=lambda: (parallel.run([loop, loop, loop]), done.set()))
    runner.start()
    assert done.wait(30)
    runner.join()
    both = sorted(K.chunk_bounds(23) + K.backward_chunk_bounds(23))
    assert [seen for _, seen in finished] == [both] * 3


def _fail(*args: Any) -> None:
    raise RuntimeError("chunk failed")


def test_a_failing_chunk_raises_in_the_loop() -> None:
    with pytest.raises(RuntimeError, match="chunk failed"):
        K.Ahead(_fail, 3)
    ahead = K.Ahead(lambda t0, t1: _fail() if t0 else None, 23)
    with pytest.raises(RuntimeError, match="chunk failed"):
        for t in range(23):
            ahead(t)
    behind = K.Behind([_fail], 23)
    behind(0, None, None)
    with pytest.raises(RuntimeError, match="chunk failed"):
        behind.finish()


def _run(
    config: dict[str, Any], dtype: Any, mask: np.ndarray | None = None
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(output, weight grads, input grad) of one training call with fixed seeds."""
    layer = registry.get(config["type"]).from_config({"units": U, **config})
    layer.build((None, T, F), rng=np.random.default_rng(1))
    rng = np.random.default_rng(2)
    params = [w.data.astype(dtype) for w in layer.weights]
    x = rng.standard_normal((N, T, F)).astype(dtype)
    ctx = CallContext(training=True, rng=np.random.default_rng(3), mask=mask)
    out, cache = layer.forward(params, x, ctx)
    gy = rng.standard_normal(out.shape).astype(dtype)
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, gy, grads, ctx)
    return out, grads, dx


def _one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(K, "FIRST_CHUNK", 10**6)
    monkeypatch.setattr(K, "CHUNK", 10**6)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_chunked_matches_one_chunk(
    config: dict[str, Any], masked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    mask = np.random.default_rng(7).random((N, T)) > 0.2 if masked else None
    chunked = _run(config, np.float64, mask)
    again = _run(config, np.float64, mask)
    _one_chunk(monkeypatch)
    whole = _run(config, np.float64, mask)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked[2], whole[2], rtol=1e-10, atol=1e-12)
    for got, ref in zip(chunked[1], whole[1], strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    mine, repeat = [chunked[0], chunked[2], *chunked[1]], [again[0], again[2], *again[1]]
    for got, ref in zip(mine, repeat, strict=True):
        np.testing.assert_array_equal(got, ref)


def _loss(layer: Any, params: list[np.ndarray], x: np.ndarray, gy: np.ndarray) -> float:
    out, _ = layer.forward(params, x, CallContext())
    return float(np.sum(out * gy))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_chunked_gradients_match_finite_differences(kind: str) -> None:
    layer = registry.get(kind).from_config({"units": U, "return_sequences": True})
    layer.build((None, T, F), rng=np.random.default_rng(4))
    rng = np.random.default_rng(5)
    params = [w.data.astype(np.float64) for w in layer.weights]
    params[-1] = rng.standard_normal(params[-1].shape) * 0.3
    x = rng.standard_normal((N, T, F))
    out, cache = layer.forward(params, x, CallContext())
    gy = rng.standard_normal(out.shape)
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, gy, grads, CallContext())
    eps = 1e-6
    # inputs at the chunk edges (forward 0-4, 4-20, 20-23; backward 0-3, 3-19, 19-23), and a
    # few entries of every weight
    probes = [(x, dx, [(t % N, t, t % F) for t in (0, 2, 3, 4, 18, 19, 20, 22)])]
    for p, g in zip(params, grads, strict=True):
        picks = rng.choice(p.size, size=min(6, p.size), replace=False)
        probes.append((p, g, [np.unravel_index(k, p.shape) for k in picks]))
    for array, grad, indices in probes:
        for idx in indices:
            keep = array[idx]
            array[idx] = keep + eps
            up = _loss(layer, params, x, gy)
            array[idx] = keep - eps
            down = _loss(layer, params, x, gy)
            array[idx] = keep
            assert grad[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_gates_by_one_exp_match_sigmoid_and_tanh(dtype: Any) -> None:
    z = np.random.default_rng(8).standard_normal((4, 3, 5)).astype(dtype) * 4
    z[:, 0, :2] = [-100.0, 100.0]  # exp overflows to inf on one side: limits must hold
    scaled = z * np.asarray(K._EXP_GATE_SCALE, dtype=dtype).reshape(4, 1, 1)
    c_prev = np.random.default_rng(9).standard_normal((3, 5)).astype(dtype)
    c, ig = np.empty_like(c_prev), np.empty_like(c_prev)
    with np.errstate(over="ignore"):
        K._cell_by_exp(scaled, c_prev, c, ig)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    gates = 1 / (1 + np.exp(-z[:3].astype(np.float64)))
    candidate = np.tanh(z[3].astype(np.float64))
    np.testing.assert_allclose(scaled[:3], gates, atol=tol)
    np.testing.assert_allclose(scaled[3], candidate, atol=2 * tol)
    np.testing.assert_allclose(c, gates[1] * c_prev + gates[0] * candidate, atol=4 * tol)
    assert scaled.dtype == c.dtype == dtype


def test_lstm_scales_its_gates_only_for_sigmoid_and_tanh() -> None:
    def gate(name: str) -> K.GateFn:
        return K.GateFn(activations.get(name))

    assert K.lstm_gate_scale(gate("tanh"), gate("sigmoid")) == K._EXP_GATE_SCALE
    assert K.lstm_gate_scale(gate("tanh"), gate("hard_sigmoid")) is None
    assert K.lstm_gate_scale(gate("relu"), gate("sigmoid")) is None
