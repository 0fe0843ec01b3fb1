"""The compiled kernels against their NumPy composites, bit for bit, and where they step aside.

Each row of KERNEL_CASES runs one kernel's caller twice on the same inputs, once with the
compiled kernels and once without, and requires identical float32 bits. CI also requires that
the kernels were built (`.ci/run` checks `native.available()`); elsewhere these tests skip
when no C compiler was there at install time.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from engine import activations, losses, native, optimizers
from engine.backend import get_backend
from engine.fused import gemm
from engine.kernels import recurrent as K
from engine.kernels import scatter
from engine.kernels.conv import conv_backward, conv_forward
from engine.kernels.pool import pool_backward, pool_forward
from engine.kernels.softmax import masked_softmax, softmax_backward
from engine.layers import registry
from engine.layers.base import CallContext
from engine.layers.normalization import BatchNormalization
from engine.optimizers.adam import adam_update

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

needs_native = pytest.mark.skipif(not native.available(), reason="built without a C compiler")

Arrays = dict[str, np.ndarray]


def _adam_inputs(size: int, scale: float, seed: int) -> Arrays:
    rng = np.random.default_rng(seed)
    return {
        "param": rng.standard_normal(size, dtype=np.float32),
        "grad": (rng.standard_normal(size) * scale).astype(np.float32),
        "m": (rng.standard_normal(size) * scale * 0.1).astype(np.float32),
        "v": (np.abs(rng.standard_normal(size)) * scale * scale).astype(np.float32),
    }


def _adam_underflow_inputs() -> Arrays:
    """Moments at and around float32's smallest normal number, zero gradients among them (a dead
    unit's), signed zeros and NaN: what the flush of denormal moments must treat alike."""
    tiny = np.finfo(np.float32).tiny
    m = np.array([tiny, -tiny, 2 * tiny, 9 * tiny, tiny / 4, -0.0, 0.0, np.nan, 1e-3], np.float32)
    v = np.array([tiny, 3 * tiny, tiny / 2, 11 * tiny, 0.0, 0.0, 1e-30, 1.0, np.nan], np.float32)
    grad = np.zeros_like(m)
    grad[-2:] = [1e-20, 0.5]
    return {"param": np.ones_like(m), "grad": grad, "m": m, "v": v}


def _adam(a: Arrays, step: int = 7) -> None:
    adam_update(
        a["param"],
        a["grad"],
        a["m"],
        a["v"],
        None,
        np.empty_like(a["param"]),
        lr=3e-3,
        step=step,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
    )


def _adam_optimizer(a: Arrays) -> None:
    """Three steps of the Adam optimizer on one flat buffer, as the trainer runs it."""
    opt = optimizers.get({"type": "adam", "learning_rate": 3e-3})
    opt.build([a["param"]])
    for _ in range(3):
        opt.apply([a["param"]], [a["grad"]])
    a.update(m=opt._slots["m"][0], v=opt._slots["v"][0])


def _dense_rows(rows: int, cols: int, seed: int, specials: bool = False) -> Arrays:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, cols), dtype=np.float32)
    if specials:
        z.reshape(-1)[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -1e-45]
    return {"z": z, "bias": rng.standard_normal(cols, dtype=np.float32)}


def _epilogue(bias: bool, relu: bool) -> Callable[[Arrays], None]:
    def run(a: Arrays) -> None:
        gemm.BiasRelu(a["bias"] if bias else None, relu)(a["z"], 0, len(a["z"]))

    return run


def _product_inputs(m: int, k: int, n: int, layout: str, seed: int) -> Arrays:
    """Operands as the Dense layer passes them: `a.T` / `b.T` views for "ta" / "tb", and for
    "wide_out" an output that is a column block of a wider buffer."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if layout == "ta" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if layout == "tb" else (k, n), dtype=np.float32)
    a.reshape(-1)[:4] = [np.nan, np.inf, -0.0, 1e-40]
    out = np.zeros((m, n + 3 if layout == "wide_out" else n), dtype=np.float32)
    return {"a": a, "b": b, "out": out, "bias": rng.standard_normal(n, dtype=np.float32)}


def _product(layout: str, bias: bool, relu: bool) -> Callable[[Arrays], None]:
    def run(p: Arrays) -> None:
        a = p["a"].T if layout == "ta" else p["a"]
        b = p["b"].T if layout == "tb" else p["b"]
        out = p["out"][:, : b.shape[1]]
        epilogue = gemm.BiasRelu(p["bias"] if bias else None, relu) if bias or relu else None
        with gemm.planned_blas():
            gemm.matmul(a, b, out, epilogue)

    return run


def _grad_pair_inputs(rows: int, inputs: int, units: int, seed: int) -> Arrays:
    """A Dense layer's backward operands: its input x, the gradient dz and the kernel."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x": rng.standard_normal((rows, inputs), dtype=np.float32),
        "dz": rng.standard_normal((rows, units), dtype=np.float32),
        "kernel": rng.standard_normal((inputs, units), dtype=np.float32),
        "dkernel": np.zeros((inputs, units), dtype=np.float32),
        "dx": np.zeros((rows, inputs), dtype=np.float32),
    }
    specials = np.array([np.nan, np.inf, -0.0, 1e-40], dtype=np.float32)
    count = min(specials.size, arrays["dz"].size)
    arrays["dz"].reshape(-1)[:count] = specials[:count]
    return arrays


def _grad_pair(p: Arrays) -> None:
    with gemm.planned_blas():
        gemm.matmuls([(p["x"].T, p["dz"], p["dkernel"]), (p["dz"], p["kernel"].T, p["dx"])])


def _scatter_inputs(n: int, vocab: int, seed: int, dtype: type = np.int64) -> Arrays:
    """Ids with padding-like repeats (id 0 taking the first n // 3 slots) and -0.0 rows."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, n).astype(dtype)
    ids[: n // 3] = 0
    rows = rng.standard_normal((n, 5), dtype=np.float32)
    rows[ids == min(1, vocab - 1)] = -0.0
    return {"ids": ids, "rows": rows, "out": np.full((vocab, 5), np.nan, dtype=np.float32)}


def _scatter(a: Arrays) -> None:
    scatter.host_sum_rows(a["ids"], a["rows"], a["out"])


def _lstm_inputs(steps: int, n: int, u: int, seed: int) -> Arrays:
    rng = np.random.default_rng(seed)
    scale = np.asarray(K._EXP_GATE_SCALE, dtype=np.float32).reshape(1, 4, 1, 1)
    return {
        "xz": rng.standard_normal((steps, 4, n, u), dtype=np.float32) * scale,
        "rk": rng.standard_normal((4, u, u), dtype=np.float32) * np.float32(0.3),
        "h0": rng.standard_normal((n, u), dtype=np.float32),
        "c0": rng.standard_normal((n, u), dtype=np.float32),
        "dys": rng.standard_normal((steps, n, u), dtype=np.float32),
        "dh_last": rng.standard_normal((n, u), dtype=np.float32),
    }


def _saturated(a: Arrays) -> Arrays:
    a["xz"] *= np.float32(40.0)  # exp overflows to inf for some gates: limits 0 and 1
    return a


def _lstm(sequences: bool) -> Callable[[Arrays], None]:
    """lstm_forward then lstm_backward; every array they produce is added to the dict."""

    def run(a: Arrays) -> None:
        act, ract = K.GateFn(activations.get("tanh")), K.GateFn(activations.get("sigmoid"))
        with np.errstate(over="ignore"):
            cache = K.lstm_forward(a["xz"], a["rk"], a["h0"], a["c0"], act, ract)
        dys = a["dys"] if sequences else None
        dxz, dh0 = K.lstm_backward(cache, a["rk"], act, ract, dys, a["dh_last"])
        a.update(hs=cache.hs, cs=cache.extra["cs"], tcs=cache.extra["tcs"], dxz=dxz, dh0=dh0)

    return run


def _softmax_inputs(
    shape: tuple[int, ...], seed: int, mask: str = "", scale: float = 3.0
) -> Arrays:
    """Scores and an upstream gradient; mask "causal" (1, 1, T, S), "padding" (B, 1, 1, S) with
    one row masked out entirely, or "specials" for inf, -inf and NaN among the scores."""
    rng = np.random.default_rng(seed)
    a = {
        "scores": rng.standard_normal(shape, dtype=np.float32) * np.float32(scale),
        "grad": rng.standard_normal(shape, dtype=np.float32),
    }
    t, s = shape[-2:]
    if mask == "causal":
        a["mask"] = np.tril(np.ones((t, s), dtype=bool)).reshape(1, 1, t, s)
    elif mask == "padding":
        a["mask"] = rng.random((shape[0], 1, 1, s)) > 0.3
        a["mask"][0] = False
    elif mask == "specials":
        a["scores"].reshape(-1, s)[:4, :3] = [
            [np.inf, 0, 1],
            [-np.inf, 2, 3],
            [np.nan, 1, 1],
            [-0.0, -0.0, 90],
        ]
    return a


def _softmax(a: Arrays) -> None:
    """Forward then backward; the probabilities and the scores' gradient join the dict."""
    with np.errstate(invalid="ignore"):
        a["probs"] = masked_softmax(a["scores"].copy(), a.get("mask"))
        a["dscores"] = a["grad"].copy()
        softmax_backward(a["dscores"], a["probs"])


def _layer_norm_inputs(shape: tuple[int, ...], seed: int, specials: bool = False) -> Arrays:
    rng = np.random.default_rng(seed)
    a = {
        "x": rng.standard_normal(shape, dtype=np.float32) * np.float32(4.0) + np.float32(1.5),
        "g": rng.standard_normal(shape, dtype=np.float32),
    }
    if specials:
        a["x"].reshape(-1, shape[-1])[0] = 7.0  # a constant row: variance 0
        a["x"].reshape(-1)[-3:] = [np.nan, np.inf, -0.0]
        a["g"][..., 0] = -0.0  # beta's gradient sums a column of -0.0
    return a


def _layer_norm(center: bool, scale: bool) -> Callable[[Arrays], None]:
    def run(a: Arrays) -> None:
        n = a["x"].shape[-1]
        config = {"type": "LayerNormalization", "epsilon": 1e-6, "center": center, "scale": scale}
        layer = registry.get("LayerNormalization").from_config(config)
        rng = np.random.default_rng(n)
        params = [rng.standard_normal(n, dtype=np.float32) for _ in range(center + scale)]
        grads: list[np.ndarray | None] = [np.empty(n, dtype=np.float32) for _ in params]
        with np.errstate(invalid="ignore"):
            a["y"], cache = layer.forward(params, a["x"], CallContext(training=True))
            a["dx"] = layer.backward(params, cache, a["g"], grads, CallContext(training=True))
        a.update({f"grad{i}": g for i, g in enumerate(grads) if g is not None})

    return run


def _batch_norm_inputs(shape: tuple[int, ...], seed: int, specials: bool = False) -> Arrays:
    """Activations off zero mean and unit scale, as a convolution hands them over."""
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(np.float32)
    if specials:
        x[..., 0] = -0.0  # a channel of negative zeros: its sums start from the first row
        x.reshape(-1)[1] = 1e-40
    return {
        "x": x,
        "gamma": rng.uniform(0.5, 1.5, c).astype(np.float32),
        "beta": rng.standard_normal(c, dtype=np.float32),
        "moving_mean": rng.standard_normal(c, dtype=np.float32),
        "moving_variance": rng.uniform(0.5, 2, c).astype(np.float32),
        "dy": rng.standard_normal(shape, dtype=np.float32),
    }


def _batch_norm(
    need_input_grad: bool = True, relu: bool = False, training: bool = True
) -> Callable[[Arrays], None]:
    """A forward and backward of BatchNormalization (with the ReLU the planned step fuses into
    it when `relu`, from the moving statistics unless `training`); outputs added to the dict."""

    def run(a: Arrays) -> None:
        layer = BatchNormalization(epsilon=1e-3)
        params = [a["gamma"], a["beta"], a["moving_mean"], a["moving_variance"]]
        ctx = CallContext(training=training, need_input_grad=need_input_grad)
        forward = layer.forward_relu if relu else layer.forward
        with np.errstate(invalid="ignore"):
            y, cache = forward(params, a["x"], ctx)
        a["y"] = y
        if not (training or need_input_grad):  # the planned inference step: no backward
            return
        grads = [np.full_like(a["gamma"], np.nan), np.full_like(a["beta"], np.nan), None, None]
        with np.errstate(invalid="ignore"):
            dx = layer.backward(params, cache, a["dy"], grads, ctx)
        a.update(dgamma=grads[0], dbeta=grads[1])
        if dx is not None:
            a["dx"] = dx

    return run


def _add_relu_inputs(shape: tuple[int, ...], seed: int) -> Arrays:
    """Two inputs whose sums include -0.0, NaN and both infinities, and an upstream gradient
    with NaN and infinities where the ReLU's mask is 0."""
    rng = np.random.default_rng(seed)
    a, b, dy = (rng.standard_normal(shape, dtype=np.float32) for _ in range(3))
    a.reshape(-1)[:5] = [-0.0, np.inf, np.nan, np.inf, 1.0]
    b.reshape(-1)[:5] = [-0.0, -np.inf, 1.0, 1.0, -1.0]
    dy.reshape(-1)[:5] = [np.nan, 1.0, -np.inf, 2.0, -3.0]
    return {"a": a, "b": b, "dy": dy}


def _add_relu(a: Arrays) -> None:
    """Add with the ReLU the planned step fuses into it: forward and the inputs' gradients."""
    layer = registry.get("Add")()
    ctx = CallContext(training=True)
    with np.errstate(invalid="ignore"):
        y, cache = layer.forward_relu([], [a["a"], a["b"]], ctx)
        da, db = layer.backward([], cache, a["dy"], [], ctx)
    a.update(y=y, da=da, db=db)


def _conv_inputs(x_shape: tuple[int, ...], kernel: tuple[int, ...], filters: int) -> Arrays:
    rng = np.random.default_rng(len(x_shape) + filters)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal((*kernel, x_shape[-1], filters), dtype=np.float32)
    return {"x": x, "w": w, "b": rng.standard_normal(filters, dtype=np.float32)}


def _conv(**geometry: Any) -> Callable[[Arrays], None]:
    """A convolution's forward and backward (im2col compiled or not); outputs into the dict."""

    def run(a: Arrays) -> None:
        y, cache = conv_forward(a["x"], a["w"], a["b"], **geometry)
        dy = np.cos(y)  # any upstream gradient that depends on y
        dx, dw, db = conv_backward(cache, dy)
        assert dx is not None and db is not None
        a.update(y=y, dx=np.ascontiguousarray(dx), dw=dw, db=db)

    return run


def _pool_inputs(shape: tuple[int, ...], seed: int, specials: bool = False) -> Arrays:
    """Small integers, so that windows hold ties; with `specials`, NaN, infinities and zeros of
    both signs in x, and infinities, NaN and negative values in the upstream gradient."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(np.float32)
    if specials:
        flat = x.reshape(-1)
        picks = rng.choice(flat.size, (5, flat.size // 6), replace=False)
        for values, value in zip(picks, (np.nan, np.inf, -np.inf, -0.0, 0.0), strict=True):
            flat[values] = value
    return {"x": x, "seed": np.array([seed], dtype=np.float32)}


_SPECIAL_DY = np.array([np.inf, -np.inf, np.nan, -1.0, -0.0, 0.0, 1.0], dtype=np.float32)


def _pool(pool: Any, strides: Any = None, padding: str = "valid") -> Callable[[Arrays], None]:
    """Max pooling forward and backward; outputs into the dict."""

    def run(a: Arrays) -> None:
        y, cache = pool_forward(a["x"], pool, strides, padding, "max")
        rng = np.random.default_rng(int(a["seed"][0]))
        dy = rng.standard_normal(y.shape).astype(np.float32)
        flat = dy.reshape(-1)
        flat[: len(_SPECIAL_DY)] = _SPECIAL_DY  # losers must still get +0, winners these
        with np.errstate(invalid="ignore"):  # NumPy's routing multiplies inf by 0
            dx = pool_backward(cache, dy)
        a.update(y=y, dx=np.ascontiguousarray(dx))

    return run


def _relu_grad_inputs(shape: tuple[int, ...], seed: int) -> Arrays:
    """A ReLU output (zeros where the input was negative) and an upstream gradient with NaN,
    infinities and negative values where the mask is 0."""
    rng = np.random.default_rng(seed)
    y = np.maximum(rng.standard_normal(shape, dtype=np.float32), 0)
    dy = rng.standard_normal(shape, dtype=np.float32)
    y.reshape(-1)[:4] = [0.0, np.nan, 0.0, 1.0]
    dy.reshape(-1)[:4] = [np.inf, 1.0, np.nan, -np.inf]
    return {"y": y, "dy": dy}


def _relu_grad(a: Arrays) -> None:
    with np.errstate(invalid="ignore"):  # inf * 0 in the composite
        a["dx"] = activations.get("relu").grad(a["y"], a["y"], a["dy"])


def _relu_bias_grad(a: Arrays) -> None:
    """A relu Dense layer's pre-activation and bias gradients, as its planned backward makes
    them (the compiled pass does both at once)."""
    with np.errstate(invalid="ignore"):
        a["dz"] = np.empty_like(a["dy"])
        a["dbias"] = np.empty(a["dy"].shape[1], dtype=np.float32)
        if not native.relu_grad_sum(a["y"], a["dy"], a["dz"], a["dbias"]):
            np.multiply(a["dy"], a["y"] > 0, out=a["dz"])
            a["dz"].sum(axis=0, out=a["dbias"])


def _sparse_xent_inputs(
    rows: int, classes: int, seed: int, specials: bool = False, dtype: type = np.int32
) -> Arrays:
    """Softmax rows and class ids (shaped (N, 1) for odd seeds); with `specials`, rows whose
    label probability falls on and beyond both clip bounds, a NaN row, a zero row and a row
    that sums to more than 1."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, classes)).astype(np.float32) * 4
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    if specials:
        p[0] = 0.0
        p[1] = np.nan
        p[2] = 1e-9
        p[2, labels[2]] = 1.0
        p[3] = 1e-8
        p[3, labels[3]] = 1e-7
        p[4] = 0.7
    ids = labels.astype(dtype)
    return {"p": p, "labels": ids.reshape(-1, 1) if seed % 2 else ids}


def _sparse_xent(a: Arrays) -> None:
    """SparseCategoricalCrossentropy's value and logits gradient, as the training step asks."""
    loss = losses.get("sparse_categorical_crossentropy")
    value, grad = loss.forward_logits_backward(a["labels"], a["p"])
    a.update(value=np.asarray(value).reshape(1), grad=grad)


@dataclass(frozen=True)
class KernelCase:
    id: str
    inputs: Callable[[], Arrays]
    run: Callable[[Arrays], None]


KERNEL_CASES = [
    KernelCase("max_pool_w3", lambda: _pool_inputs((64, 26, 26, 32), 1), _pool(2)),
    KernelCase("max_pool_specials", lambda: _pool_inputs((4, 26, 26, 8), 2, True), _pool(2)),
    KernelCase("max_pool_remainder", lambda: _pool_inputs((3, 7, 9, 5), 3, True), _pool(2)),
    KernelCase("max_pool_same", lambda: _pool_inputs((2, 8, 7, 3), 4, True), _pool(3, 3, "same")),
    KernelCase(
        "max_pool_gaps", lambda: _pool_inputs((2, 11, 13, 4), 5, True), _pool((2, 3), (3, 4))
    ),
    KernelCase("max_pool_overlap", lambda: _pool_inputs((2, 9, 9, 4), 6, True), _pool(3, 2)),
    KernelCase("max_pool_4x4", lambda: _pool_inputs((2, 9, 8, 5), 7, True), _pool(4)),
    KernelCase("adam_w2_sized", lambda: _adam_inputs(536_074, 1e-2, 0), _adam),
    KernelCase("adam_odd_length", lambda: _adam_inputs(1_001, 1.0, 1), _adam),
    KernelCase("adam_one_element", lambda: _adam_inputs(1, 1.0, 2), _adam),
    KernelCase("adam_empty", lambda: _adam_inputs(0, 1.0, 3), _adam),
    KernelCase("adam_tiny_values", lambda: _adam_inputs(4_099, 1e-20, 4), _adam),
    KernelCase("adam_huge_values", lambda: _adam_inputs(4_099, 1e15, 5), _adam),
    KernelCase("adam_moments_underflow", _adam_underflow_inputs, _adam),
    KernelCase("adam_first_step", lambda: _adam_inputs(777, 1.0, 6), lambda a: _adam(a, step=1)),
    KernelCase(
        "adam_optimizer_both_cores", lambda: _adam_inputs(300_001, 1e-2, 7), _adam_optimizer
    ),
    KernelCase("bias_relu", lambda: _dense_rows(128, 512, 0), _epilogue(True, True)),
    KernelCase("bias_relu_specials", lambda: _dense_rows(3, 7, 1, True), _epilogue(True, True)),
    KernelCase("relu_only_specials", lambda: _dense_rows(5, 3, 2, True), _epilogue(False, True)),
    KernelCase("bias_only", lambda: _dense_rows(64, 10, 3, True), _epilogue(True, False)),
    KernelCase(
        "split_w2_forward",
        lambda: _product_inputs(128, 784, 512, "plain", 0),
        _product("plain", True, True),
    ),
    KernelCase(
        "split_weight_grad", lambda: _product_inputs(784, 128, 512, "ta", 1), _product("ta", 0, 0)
    ),
    KernelCase(
        "split_input_grad", lambda: _product_inputs(128, 256, 512, "tb", 2), _product("tb", 0, 0)
    ),
    KernelCase("pair_w2_layer2", lambda: _grad_pair_inputs(128, 512, 256, 4), _grad_pair),
    KernelCase("pair_odd_sizes", lambda: _grad_pair_inputs(129, 301, 97, 5), _grad_pair),
    KernelCase(
        "split_odd_rows_relu",
        lambda: _product_inputs(129, 300, 200, "plain", 3),
        _product("plain", 0, 1),
    ),
    KernelCase(
        "split_strided_out_bias",
        lambda: _product_inputs(100, 400, 300, "wide_out", 4),
        _product("wide_out", True, False),
    ),
    KernelCase(
        "split_columns_odd_strided_bias_relu",
        lambda: _product_inputs(100, 300, 257, "wide_out", 5),
        _product("wide_out", True, True),
    ),
    # chain_sgemm's tails: rows short of a tile, columns short of a panel, K in three blocks
    KernelCase(
        "split_chain_tails",
        lambda: _product_inputs(37, 1000, 100, "ta", 6),
        _product("ta", True, True),
    ),
    KernelCase(
        "split_chain_two_k_blocks_strided_out",
        lambda: _product_inputs(130, 449, 70, "wide_out", 7),
        _product("wide_out", True, False),
    ),
    KernelCase("scatter_w4_sized", lambda: _scatter_inputs(6400, 10_000, 0), _scatter),
    KernelCase("scatter_long_runs", lambda: _scatter_inputs(3000, 40, 1), _scatter),
    KernelCase("scatter_int32_ids", lambda: _scatter_inputs(50, 7, 2, np.int32), _scatter),
    KernelCase("scatter_one_row", lambda: _scatter_inputs(1, 3, 3), _scatter),
    KernelCase("scatter_no_rows", lambda: _scatter_inputs(0, 3, 4), _scatter),
    KernelCase(
        "batch_norm_w7_sized", lambda: _batch_norm_inputs((128, 32, 32, 16), 0), _batch_norm()
    ),
    KernelCase("batch_norm_odd_rows", lambda: _batch_norm_inputs((7, 5, 3, 33), 1), _batch_norm()),
    KernelCase("batch_norm_dense", lambda: _batch_norm_inputs((1000, 3), 2), _batch_norm()),
    KernelCase("batch_norm_one_channel", lambda: _batch_norm_inputs((40, 9, 1), 6), _batch_norm()),
    KernelCase("batch_norm_one_row", lambda: _batch_norm_inputs((1, 4), 3), _batch_norm()),
    KernelCase(
        "batch_norm_one_row_zeros", lambda: _batch_norm_inputs((1, 4), 3, True), _batch_norm()
    ),
    KernelCase(
        "batch_norm_specials", lambda: _batch_norm_inputs((9, 4, 6), 4, True), _batch_norm()
    ),
    KernelCase(
        "batch_norm_no_input_grad",
        lambda: _batch_norm_inputs((6, 6, 8), 5),
        _batch_norm(need_input_grad=False),
    ),
    KernelCase(
        "batch_norm_relu_w7_sized",
        lambda: _batch_norm_inputs((128, 32, 32, 16), 7),
        _batch_norm(relu=True),
    ),
    KernelCase(
        "batch_norm_relu_specials",
        lambda: _batch_norm_inputs((9, 4, 6), 8, True),
        _batch_norm(relu=True),
    ),
    KernelCase(
        "batch_norm_relu_no_input_grad",
        lambda: _batch_norm_inputs((6, 6, 8), 9),
        _batch_norm(need_input_grad=False, relu=True),
    ),
    KernelCase(
        "batch_norm_inference_w7_sized",
        lambda: _batch_norm_inputs((128, 16, 16, 32), 10),
        _batch_norm(training=False),
    ),
    KernelCase(
        "batch_norm_relu_inference_one_channel",
        lambda: _batch_norm_inputs((5, 7, 1), 11, True),
        _batch_norm(relu=True, training=False),
    ),
    KernelCase(
        "batch_norm_relu_inference_planned",
        lambda: _batch_norm_inputs((9, 4, 6), 12, True),
        _batch_norm(need_input_grad=False, relu=True, training=False),
    ),
    KernelCase("add_relu_w7_sized", lambda: _add_relu_inputs((128, 32, 32, 16), 0), _add_relu),
    KernelCase("add_relu_odd", lambda: _add_relu_inputs((3, 5, 7), 1), _add_relu),
    KernelCase(
        "conv_w7_stage_1",
        lambda: _conv_inputs((128, 32, 32, 16), (3, 3), 16),
        _conv(padding="same"),
    ),
    KernelCase(
        "conv_strided_projection",
        lambda: _conv_inputs((6, 9, 8, 5), (1, 1), 4),
        _conv(strides=2, padding="same"),
    ),
    KernelCase(
        "conv_strided_same_odd",
        lambda: _conv_inputs((3, 7, 6, 3), (3, 2), 4),
        _conv(strides=(2, 1), padding="same"),
    ),
    KernelCase(
        "conv_dilated_valid", lambda: _conv_inputs((2, 9, 8, 2), (3, 3), 3), _conv(dilation=2)
    ),
    KernelCase(
        "conv1d_causal",
        lambda: _conv_inputs((4, 9, 3), (2,), 4),
        _conv(padding="causal", dilation=2),
    ),
    KernelCase("relu_grad_w3_sized", lambda: _relu_grad_inputs((64, 26, 26, 32), 0), _relu_grad),
    KernelCase("relu_grad_odd", lambda: _relu_grad_inputs((3, 5, 7), 1), _relu_grad),
    KernelCase("relu_bias_grad_w2", lambda: _relu_grad_inputs((128, 512), 2), _relu_bias_grad),
    KernelCase("relu_bias_grad_odd", lambda: _relu_grad_inputs((7, 3), 3), _relu_bias_grad),
    KernelCase("relu_bias_grad_one_row", lambda: _relu_grad_inputs((1, 9), 4), _relu_bias_grad),
    KernelCase("sparse_xent_w2_sized", lambda: _sparse_xent_inputs(128, 10, 0), _sparse_xent),
    KernelCase("sparse_xent_specials", lambda: _sparse_xent_inputs(9, 6, 1, True), _sparse_xent),
    KernelCase(
        "sparse_xent_int64_long_rows",
        lambda: _sparse_xent_inputs(5, 300, 2, dtype=np.int64),
        _sparse_xent,
    ),
    KernelCase("sparse_xent_one_class", lambda: _sparse_xent_inputs(4, 1, 3), _sparse_xent),
    KernelCase("lstm_last_state", lambda: _lstm_inputs(12, 64, 64, 0), _lstm(False)),
    KernelCase("lstm_sequences_odd_sizes", lambda: _lstm_inputs(5, 3, 7, 1), _lstm(True)),
    KernelCase("lstm_saturated_gates", lambda: _saturated(_lstm_inputs(4, 8, 32, 2)), _lstm(False)),
    KernelCase("softmax_w6_sized", lambda: _softmax_inputs((8, 4, 128, 128), 0), _softmax),
    KernelCase("softmax_odd_rows", lambda: _softmax_inputs((2, 3, 5, 7), 1), _softmax),
    KernelCase("softmax_long_rows", lambda: _softmax_inputs((1, 1, 3, 300), 2, scale=60), _softmax),
    KernelCase("softmax_causal", lambda: _softmax_inputs((2, 2, 9, 9), 3, "causal"), _softmax),
    KernelCase("softmax_padding", lambda: _softmax_inputs((3, 2, 6, 20), 4, "padding"), _softmax),
    KernelCase("softmax_specials", lambda: _softmax_inputs((1, 1, 4, 11), 5, "specials"), _softmax),
    KernelCase(
        "layer_norm_w6_sized", lambda: _layer_norm_inputs((8, 128, 128), 0), _layer_norm(True, True)
    ),
    KernelCase(
        "layer_norm_odd_rows", lambda: _layer_norm_inputs((3, 5, 7), 1), _layer_norm(True, False)
    ),
    KernelCase(
        "layer_norm_long_rows", lambda: _layer_norm_inputs((4, 300), 2), _layer_norm(False, True)
    ),
    KernelCase(
        "layer_norm_plain", lambda: _layer_norm_inputs((6, 129), 3), _layer_norm(False, False)
    ),
    KernelCase(
        "layer_norm_two_features", lambda: _layer_norm_inputs((50, 2), 5), _layer_norm(True, True)
    ),
    KernelCase(
        "layer_norm_one_feature", lambda: _layer_norm_inputs((5, 4, 1), 6), _layer_norm(True, True)
    ),
    KernelCase(
        "layer_norm_specials",
        lambda: _layer_norm_inputs((2, 3, 16), 4, True),
        _layer_norm(True, True),
    ),
]


def _run_case(case: KernelCase, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> Arrays:
    arrays = case.inputs()
    with monkeypatch.context() as patch:
        # the direct convolution sums in another order than im2col + sgemm: it is held to
        # float32 tolerance in test_conv_direct.py, and left out here so that the conv rows
        # compare the compiled im2col with NumPy's bit for bit
        patch.setattr(native._ext, "conv_direct", None)
        if not compiled:
            patch.setattr(native._ext, "kernels", None)
            patch.setattr(native._ext, "recurrent", None)
            patch.setattr(native._ext, "split_gemm", False)
            patch.setattr(native._ext, "split", None)
            patch.setattr(native._ext, "batch_norm", None)
            patch.setattr(native._ext, "im2col", None)
            patch.setattr(native._ext, "pool", None)
        case.run(arrays)
    return arrays


@needs_native
@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c.id)
def test_kernel_matches_the_numpy_composite_bit_for_bit(
    case: KernelCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = _run_case(case, True, monkeypatch)
    composite = _run_case(case, False, monkeypatch)
    for name in compiled:
        np.testing.assert_array_equal(compiled[name].view(np.uint8), composite[name].view(np.uint8))


@needs_native
def test_adam_kernel_runs_for_plain_float32_and_changes_the_arrays() -> None:
    a = _adam_inputs(64, 1.0, 7)
    before = {k: v.copy() for k, v in a.items()}
    ran = native.adam(a["param"], a["grad"], a["m"], a["v"], 0.1, 0.001, 1e-7, 1e-3)
    assert ran
    for name in ("param", "m", "v"):
        assert not np.array_equal(a[name], before[name])
    np.testing.assert_array_equal(a["grad"], before["grad"])


@needs_native  # so that the im2col rows above compare the compiled copy, not NumPy twice
def test_im2col_kernel_takes_plain_float32_and_declines_the_rest() -> None:
    x = np.zeros((2, 5, 5, 3), dtype=np.float32)
    cols = np.empty((50, 27), dtype=np.float32)
    assert native.im2col(x, cols) is not None
    assert native.im2col(x.astype(np.float64), cols) is None
    assert native.im2col(x[:, ::2], cols) is None
    fake = get_backend("fake")
    assert native.im2col(fake.asarray(x), fake.asarray(cols)) is None


def _float64(a: Arrays) -> Arrays:
    return {k: v.astype(np.float64) for k, v in a.items()}


def _strided(a: Arrays) -> Arrays:
    return {k: np.repeat(v, 2)[::2] for k, v in a.items()}


def _fake_device(a: Arrays) -> Arrays:
    fake = get_backend("fake")
    return {k: fake.asarray(v) for k, v in a.items()}


@needs_native  # without the kernels it declines everything, so this could not fail
@pytest.mark.parametrize("convert", [_float64, _strided, _fake_device], ids=lambda f: f.__name__)
def test_adam_kernel_steps_aside_for_arrays_it_does_not_handle(
    convert: Callable[[Arrays], Arrays],
) -> None:
    a = convert(_adam_inputs(16, 1.0, 8))
    assert not native.adam(a["param"], a["grad"], a["m"], a["v"], 0.1, 0.001, 1e-7, 1e-3)


needs_split = pytest.mark.skipif(
    not native.split_gemm_available(), reason="no compiled split or no NumPy-bundled OpenBLAS"
)


@needs_split
@pytest.mark.parametrize("layout", ["plain", "ta", "tb", "wide_out"])
@pytest.mark.parametrize(("m", "n"), [(64, 16), (16, 64)], ids=["by_rows", "by_columns"])
def test_split_product_runs_for_the_layouts_dense_passes(layout: str, m: int, n: int) -> None:
    """The compiled split's pieces are NumPy's on `gemm.halves`: rows, or columns when wider."""
    p = _product_inputs(m, 32, n, layout, 9)
    a = p["a"].T if layout == "ta" else p["a"]
    b = p["b"].T if layout == "tb" else p["b"]
    out = p["out"][:, : b.shape[1]]
    assert native.split_matmul(a, b, out, p["bias"], True)
    expected = np.empty_like(out)
    halves = gemm.halves(m, n)
    assert halves[0][int(m < n)] == slice(0, max(m, n) // 2)  # the longer side is split
    for rows, cols in halves:
        np.matmul(a[rows], b[:, cols], out=expected[rows, cols])
    np.testing.assert_array_equal(out, np.maximum(expected + p["bias"], 0))


@needs_split
def test_split_product_steps_aside_for_a_strided_bias() -> None:
    p = _product_inputs(64, 32, 16, "plain", 12)
    strided_bias = np.repeat(p["bias"], 2)[::2]
    assert not native.split_matmul(p["a"], p["b"], p["out"], strided_bias, True)


def _declined(p: Arrays) -> bool:
    return not native.split_matmul(p["a"], p["b"], p["out"], None, False)


@needs_split
@pytest.mark.parametrize(
    "inputs",
    [
        lambda p: _float64(p),
        lambda p: _fake_device(p),
        # pieces NumPy would hand to gemv: one row, or one column
        lambda p: {**p, "a": p["a"][:3], "b": p["b"][:, :2], "out": p["out"][:3, :2]},
        lambda p: {**p, "a": p["a"][:2], "b": p["b"][:, :3], "out": p["out"][:2, :3]},
        lambda p: {**p, "out": p["a"][:, :16]},  # out overlaps an operand
        lambda p: {**p, "a": p["a"][:, ::2], "b": p["b"][:16]},  # no unit stride: NumPy copies
    ],
    ids=["float64", "fake_device", "three_rows", "three_columns", "overlap", "strided"],
)
def test_split_product_steps_aside_where_numpy_would_not_call_one_sgemm_per_half(
    inputs: Callable[[Arrays], Arrays],
) -> None:
    p = _product_inputs(64, 32, 16, "plain", 10)
    del p["bias"]
    assert _declined(inputs(p))


@needs_native
def test_adam_on_both_cores_runs_for_a_large_flat_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = native.adam_both_cores

    def counted(*args: object) -> bool:
        ran = real(*args)  # type: ignore[arg-type]
        calls.append(ran)
        return ran

    monkeypatch.setattr(native, "adam_both_cores", counted)
    _adam_optimizer(_adam_inputs(300_001, 1e-2, 8))
    assert calls == [True] * 3


@needs_native
def test_scatter_kernel_runs_and_rejects_an_id_out_of_range() -> None:
    a = _scatter_inputs(20, 4, 5)
    assert native.scatter_rows(a["ids"], a["rows"], a["out"], scatter.MAX_LEVELS)
    a["ids"][3] = 4
    with pytest.raises(IndexError, match="outside"):
        native.scatter_rows(a["ids"], a["rows"], a["out"], scatter.MAX_LEVELS)


@needs_split
@pytest.mark.parametrize(
    ("rows", "inputs", "units"), [(128, 512, 256), (2, 3, 2), (2, 1000, 1), (7, 2, 9)]
)
def test_product_pair_is_numpys_whole_products_or_steps_aside(
    rows: int, inputs: int, units: int
) -> None:
    """Each product of a pair is the one sgemm NumPy makes for it; where NumPy makes another
    call (gemv for one row or column, a K of one) the pair declines and writes nothing."""
    p = _grad_pair_inputs(rows, inputs, units, 6)
    first = (p["x"].T, p["dz"], p["dkernel"])
    second = (p["dz"], p["kernel"].T, p["dx"])
    # one BLAS thread per product, as the trainer runs them; NumPy's own loop for the products
    # BLAS does not take warns about the NaN and infinity among the inputs
    with gemm.planned_blas(), np.errstate(invalid="ignore"):
        ran = native.pair_matmul(first, second)
        want = np.matmul(*first[:2]), np.matmul(*second[:2])
    assert ran == (min(rows, inputs, units) >= 2)
    if not ran:
        assert not p["dkernel"].any() and not p["dx"].any()
        return
    np.testing.assert_array_equal(p["dkernel"], want[0])
    np.testing.assert_array_equal(p["dx"], want[1])


@needs_split
@pytest.mark.parametrize(
    "change",
    [
        lambda p: {**p, "dx": p["dx"].astype(np.float64)},
        lambda p: {k: get_backend("fake").asarray(v) for k, v in p.items()},
        lambda p: {**p, "dx": p["x"]},  # the second output is the first product's operand
        lambda p: {**p, "dkernel": p["kernel"]},  # the first output is the second's operand
        lambda p: {**p, "x": p["x"][:, ::2], "dkernel": p["dkernel"][::2]},  # NumPy copies x
    ],
    ids=["float64", "fake_device", "output_is_operand", "output_is_other_operand", "strided"],
)
def test_product_pair_steps_aside_for_operands_it_does_not_handle(
    change: Callable[[Arrays], Arrays],
) -> None:
    p = change(_grad_pair_inputs(16, 12, 10, 7))
    assert not native.pair_matmul(
        (p["x"].T, p["dz"], p["dkernel"]), (p["dz"], p["kernel"].T, p["dx"])
    )


def test_a_pair_of_products_repeats_bit_for_bit_on_both_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled pair and the two Python threads give NumPy's whole products (one BLAS
    thread each), run after run."""
    results = []
    for compiled in (True, True, False, False):
        p = _grad_pair_inputs(128, 512, 256, 8)
        with monkeypatch.context() as patch:
            if not compiled:
                patch.setattr(native._ext, "split_gemm", False)
            _grad_pair(p)
        results.append((p["dkernel"], p["dx"]))
    with gemm.planned_blas():  # NumPy's products on one BLAS thread, as the pair's are
        want = (np.matmul(p["x"].T, p["dz"]), np.matmul(p["dz"], p["kernel"].T))
    for got in results:
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


needs_chain = pytest.mark.skipif(
    not (native.split_gemm_available() and native.chain_gemm()),
    reason="chain_sgemm needs AVX-512 and NumPy's OpenBLAS on its SkylakeX kernel",
)


@needs_chain
@pytest.mark.parametrize(
    ("m", "k", "n", "layout"),
    [(128, 784, 512, "plain"), (784, 128, 512, "ta"), (13, 1400, 96, "ta"), (9, 897, 300, "plain")],
)
def test_chain_sgemm_gives_numpys_whole_product_bit_for_bit(
    m: int, k: int, n: int, layout: str
) -> None:
    """Cut into column chunks both threads claim, each summed as OpenBLAS sums the whole product
    (NumPy's own pieces may not be: below a million multiply-adds it takes other kernels)."""
    p = _product_inputs(m, k, n, layout, 13)
    a = p["a"].T if layout == "ta" else p["a"]
    out = np.zeros((m, n), dtype=np.float32)
    with gemm.planned_blas():
        want = np.matmul(a, p["b"])
        assert native.split_matmul(a, p["b"], out, None, False)
    np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))


@needs_chain
def test_whole_product_by_chain_sgemm_is_numpys_or_steps_aside() -> None:
    """On one thread with its bias and relu (a `predict` batch's product): NumPy's bits; it
    declines a B read transposed and fewer columns than a panel, writing nothing."""
    p = _product_inputs(1024, 784, 512, "plain", 14)
    with gemm.planned_blas():
        want = np.maximum(np.matmul(p["a"], p["b"]) + p["bias"], 0)
        assert native.whole_matmul(p["a"], p["b"], p["out"], p["bias"], True)
        np.testing.assert_array_equal(p["out"].view(np.uint32), want.view(np.uint32))
        narrow = np.zeros((1024, 16), dtype=np.float32)
        assert not native.whole_matmul(p["a"], p["b"][:, :16], narrow, None, False)
        transposed = np.ascontiguousarray(p["b"][:, :64].T).T
        wide = np.zeros((1024, 64), dtype=np.float32)
        assert not native.whole_matmul(p["a"], transposed, wide, None, False)
        assert not narrow.any() and not wide.any()


@needs_chain
def test_chain_sgemm_switches_off_and_on() -> None:
    try:
        assert not native.chain_gemm(False)
        assert not native.chain_gemm()
    finally:
        assert native.chain_gemm(True)


def _split_in_child(queue: Any) -> None:
    p = _product_inputs(64, 32, 16, "plain", 11)
    queue.put(native.split_matmul(p["a"], p["b"], p["out"], None, False) and p["out"])


@needs_split
def test_a_forked_child_runs_split_products() -> None:
    p = _product_inputs(64, 32, 16, "plain", 11)
    assert native.split_matmul(p["a"], p["b"], p["out"], None, False)  # the worker is running
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_in_child, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, p["out"])


@needs_native
def test_relu_bias_grad_kernel_steps_aside_where_numpy_sums_otherwise() -> None:
    """A column of one value is summed pairwise by NumPy; other dtypes and layouts run the
    composite."""
    a = _relu_grad_inputs((6, 4), 5)
    dz, total = np.empty_like(a["dy"]), np.empty(4, dtype=np.float32)
    assert native.relu_grad_sum(a["y"], a["dy"], dz, total)
    assert not native.relu_grad_sum(a["y"][:, :1], a["dy"][:, :1], dz[:, :1], total[:1])
    assert not native.relu_grad_sum(a["y"], a["dy"], dz, total.astype(np.float64))
    assert not native.relu_grad_sum(a["y"][::2], a["dy"][::2], dz[::2], total)
    assert not native.relu_grad_sum(a["y"].reshape(-1), a["dy"].reshape(-1), dz.reshape(-1), total)


@needs_native
def test_row_kernels_run_for_plain_float32_and_step_aside_otherwise() -> None:
    scores = np.random.default_rng(0).standard_normal((3, 4, 5), dtype=np.float32)
    mask = np.ones(scores.shape, dtype=bool)
    assert native.softmax_rows(scores, mask)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, rtol=1e-6)
    assert native.softmax_grad_rows(scores.copy(), scores)
    assert not native.softmax_rows(scores.astype(np.float64), None)
    assert not native.softmax_rows(scores, mask[:, :1])
    x, out = scores.copy(), np.empty_like(scores)
    inv = np.empty((3, 4, 1), dtype=np.float32)
    gamma = np.ones(5, dtype=np.float32)
    assert native.layer_norm_rows(x, gamma, None, 1e-3, out, np.empty_like(x), inv)
    dgamma = np.full(5, np.nan, dtype=np.float32)
    assert native.layer_norm_grad_rows(x, out, inv, gamma, np.empty_like(x), dgamma, None)
    np.testing.assert_allclose(dgamma, (x * out).sum(axis=(0, 1)), rtol=1e-5)
    one = np.ascontiguousarray(x[..., :1])  # NumPy sums a column of one value pairwise
    assert not native.layer_norm_grad_rows(one, one, inv, None, one.copy(), None, None)
    assert not native.layer_norm_rows(x, gamma[:4], None, 1e-3, out, np.empty_like(x), inv)
    assert not native.layer_norm_rows(x[..., ::2], None, None, 1e-3, out, out, inv)


@needs_native
def test_sparse_xent_kernel_runs_for_plain_rows_and_steps_aside_otherwise() -> None:
    a = _sparse_xent_inputs(6, 4, 0)
    p, labels = a["p"], a["labels"]
    ran = native.sparse_xent_rows(p, labels, 1e-7, 1 - 1e-7, 1 / 6)
    assert ran is not None
    qc, grad = ran
    np.testing.assert_allclose(qc, p[np.arange(6), labels], rtol=1e-6)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)
    assert native.sparse_xent_rows(p, labels.astype(np.int64), 1e-7, 1.0, 1.0) is not None
    assert native.sparse_xent_rows(p.astype(np.float64), labels, 1e-7, 1.0, 1.0) is None
    assert native.sparse_xent_rows(p, labels.astype(np.float32), 1e-7, 1.0, 1.0) is None
    assert native.sparse_xent_rows(p, labels[:5], 1e-7, 1.0, 1.0) is None
    assert native.sparse_xent_rows(p[:, ::2], labels % 2, 1e-7, 1.0, 1.0) is None
    for bad in (-1, 4):
        out_of_range = labels.copy()
        out_of_range[3] = bad
        assert native.sparse_xent_rows(p, out_of_range, 1e-7, 1.0, 1.0) is None
        with pytest.raises(ValueError, match="class ids must be in"):
            losses.get("sparse_categorical_crossentropy").forward_logits_backward(out_of_range, p)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_sparse_xent_of_zero_probabilities_is_keras_value_without_a_warning(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A label probability of 0 gives the clip's finite loss, -log(1e-7); a row summing to 0
    gives NaN (Keras's 0 / 0, then the clip keeps it) and no gradient. Neither path warns (the
    tests turn a RuntimeWarning into an error): the NumPy one did on the 0 / 0."""
    if not compiled:
        monkeypatch.setattr(native._ext, "kernels", None)
    loss = losses.get("sparse_categorical_crossentropy")
    p = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    labels = np.array([2, 0], dtype=np.int32)
    value, grad = loss.forward_logits_backward(labels[:1], p[:1])
    np.testing.assert_allclose(value, -np.log(np.float32(1e-7)), rtol=1e-6)
    value, grad = loss.forward_logits_backward(labels, p)
    assert np.isnan(value) and not grad.any()
    value, cache = loss.forward(labels[1:], p[1:])  # the path without the softmax's fusion
    assert np.isnan(value) and np.isnan(loss.backward(cache)).all()


def test_adam_flushes_moments_below_the_normal_range_to_positive_zero() -> None:
    """The composite (the definition) turns a moment that would be denormal into +0, keeps
    NaN, and leaves normal moments as Keras's formula gives them."""
    a = _adam_underflow_inputs()
    m0, v0, g = a["m"].copy(), a["v"].copy(), a["grad"]
    with np.errstate(invalid="ignore"):
        _adam(a)
    tiny = np.finfo(np.float32).tiny
    keras_m = m0 + (g - m0) * np.float32(0.1)
    keras_v = v0 + (g * g - v0) * np.float32(0.001)
    for got, formula in ((a["m"], keras_m), (a["v"], keras_v)):
        small = np.abs(formula) < tiny
        assert small.any() and (~small & np.isfinite(formula)).any()
        assert np.all(got[small] == 0) and not np.signbit(got[small]).any()
        np.testing.assert_array_equal(got[~small], formula[~small])
    assert np.isnan(a["m"][7]) and np.isnan(a["v"][8])


@needs_native  # so that the max_pool rows above compare the compiled pooling, not NumPy twice
def test_max_pool_kernel_takes_disjoint_2d_windows_and_declines_the_rest() -> None:
    x = np.zeros((2, 8, 8, 3), dtype=np.float32)

    def compiled(data: np.ndarray, pool: Any, strides: Any = None) -> bool:
        _, cache = pool_forward(data, pool, strides, "valid", "max")
        return not isinstance(cache.passes[0], list)

    assert compiled(x, 2) and compiled(x, 3) and compiled(x, (2, 3), (3, 4)) and compiled(x, 4)
    assert not compiled(x, 3, 2)  # overlapping windows
    # a window of 17 x 16 has more offsets than the kernel's winner byte holds
    assert not compiled(np.zeros((1, 17, 16, 2), dtype=np.float32), (17, 16))
    assert not compiled(x.astype(np.float64), 2)
    assert not compiled(np.zeros((2, 8, 8, 8, 3), dtype=np.float32), 2)  # 3-d pooling
    assert not compiled(get_backend("fake").asarray(x), 2)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_of_an_empty_batch_runs_the_composite(training: bool) -> None:
    """The compiled passes take at least one row; an empty batch (an eager call, a predict of
    no rows) gets the NumPy composite's empty output instead of the kernel's ValueError."""
    layer = BatchNormalization()
    layer.build((None, 3, 4), rng=np.random.default_rng(0))
    params = [w.data for w in layer.weights]
    x = np.zeros((0, 3, 4), dtype=np.float32)
    for forward in (layer.forward, layer.forward_relu):
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y, _ = forward([p.copy() for p in params], x, CallContext(training=training))
        assert y.shape == (0, 3, 4) and y.dtype == np.float32
