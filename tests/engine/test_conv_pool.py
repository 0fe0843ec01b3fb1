"""The fused convolution + ReLU + max pooling (`engine/kernels/conv_pool.py`) against the two
layers' own passes and PyTorch in float64, and the planned step's fusion of the two layers.

Forward is the unfused passes' bits (the same operations, a chunk at a time). Backward sums
only the pooling's winners, in another order than the dense kernels, so its gradients are held
to float32 rounding of the unfused ones and of PyTorch's float64 gradients, and to repeating
their own bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import engine as en
from engine import Input, Model, layers, native
from engine.kernels import conv, conv_pool, pool
from engine.kernels.conv_pool import Pooling
from engine.layers.conv import in_place_activation
from engine.train import fusion
from engine.train.trainer import get_trainer

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

needs_kernel = pytest.mark.skipif(not native.available(), reason="built without a C compiler")

Arrays = dict[str, np.ndarray]
# gradients within this many float32 ulps of their magnitude (sums of up to ~10^4 terms)
RTOL = 2e-5


@dataclass(frozen=True)
class Case:
    id: str
    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    filters: int
    strides: int | tuple[int, int] = 1
    padding: str = "valid"
    window: tuple[int, int] = (2, 2)
    pool_strides: tuple[int, int] | None = None
    bias: bool = True


CASES = [
    # W3's layers: one input channel (rows of 3 floats), then 32 channels (rows of 96)
    Case("w3_first", (4, 28, 28, 1), (3, 3), 32),
    # the one-channel forward: an odd size, windows of 3, a strided convolution, no bias
    Case("one_channel_pool_3", (2, 17, 16, 1), (3, 3), 16, window=(3, 3)),
    Case("one_channel_strided", (3, 15, 16, 1), (3, 3), 48, strides=2, bias=False),
    Case("w3_second", (4, 13, 13, 32), (3, 3), 64),
    # odd output (11 -> 5: the last row and column pool nothing), 16 channels (rows of 48)
    Case("sixteen_channels_odd", (3, 13, 13, 16), (3, 3), 16, bias=False),
    # padding: windows at the border reach outside the image
    Case("same_padding", (2, 9, 10, 8), (3, 3), 16, padding="same"),
    Case("strided_same", (2, 11, 9, 3), (3, 3), 16, strides=2, padding="same"),
    # the pooled forward's blocks with 32 filters and a remainder (7 outputs: 3 + 3 + 1), a
    # stride in height only, padding with 48 filters (three vectors of 16)
    Case("two_vectors_remainder", (2, 16, 17, 8), (3, 3), 32, bias=False),
    Case("strided_rows", (2, 15, 12, 4), (3, 2), 32, strides=(2, 1)),
    Case("same_padding_48", (3, 10, 12, 6), (3, 3), 48, padding="same"),
    # a window of 3 x 3, gaps between windows, an uneven kernel
    Case("pool_3", (2, 12, 12, 4), (2, 3), 16, window=(3, 3)),
    Case("pool_gaps", (2, 12, 11, 5), (3, 3), 16, window=(2, 2), pool_strides=(3, 3)),
]


def _inputs(case: Case, dtype: Any = np.float32) -> Arrays:
    rng = np.random.default_rng(sum(case.x_shape) + case.filters)
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal((*case.kernel, case.x_shape[-1], case.filters)) * 0.3
    b = rng.standard_normal(case.filters) * 0.3
    pooled = _fused_shape(case)
    gy = rng.standard_normal(pooled)
    return {k: v.astype(dtype) for k, v in {"x": x, "w": w, "b": b, "gy": gy}.items()}


def _relu() -> Any:
    from engine import activations

    return in_place_activation(activations.get("relu"))


def _pooling(case: Case) -> Pooling:
    return Pooling(case.window, case.pool_strides or case.window)


def _geometry(case: Case, a: Arrays) -> Any:
    return conv.conv_geometry(a["x"].shape, a["w"].shape, case.strides, case.padding, 1)


def _fused_shape(case: Case) -> tuple[int, ...]:
    a = {"x": np.empty(case.x_shape), "w": np.empty((*case.kernel, case.x_shape[-1], 1))}
    out = _pooling(case).out(_geometry(case, a).out)
    return (case.x_shape[0], *out, case.filters)


def _unfused(case: Case, a: Arrays) -> Arrays:
    b = a["b"] if case.bias else None
    z, ccache = conv.conv_forward(a["x"], a["w"], b, case.strides, case.padding, epilogue=_relu())
    p = _pooling(case)
    y, pcache = pool.pool_forward(z, p.window, p.strides, "valid", "max")
    dz = pool.pool_backward(pcache, a["gy"])
    dx, dw, db = conv.conv_backward(ccache, dz * (z > 0), True)
    return {"y": y, "dx": dx, "dw": dw, "db": db}


def _fused(case: Case, a: Arrays) -> Arrays:
    b = a["b"] if case.bias else None
    g = _geometry(case, a)
    assert conv_pool.applies(a["x"], a["w"], b, g, _pooling(case))
    y, cache = conv_pool.forward(a["x"], a["w"], b, g, _pooling(case), _relu())
    dx, dw, db = conv_pool.backward(cache, a["gy"], True)
    return {"y": y, "dx": dx, "dw": dw, "db": db}


def _torch(case: Case, a: Arrays) -> Arrays:
    """The float64 reference: PyTorch's conv2d, relu and max_pool2d, and their autograd."""
    x = torch.tensor(a["x"], dtype=torch.float64).permute(0, 3, 1, 2).requires_grad_()
    w = torch.tensor(a["w"], dtype=torch.float64).permute(3, 2, 0, 1).requires_grad_()
    b = torch.tensor(a["b"], dtype=torch.float64).requires_grad_()
    g = _geometry(case, a)
    (top, bottom), (left, right) = g.pads
    xp = torch.nn.functional.pad(x, (left, right, top, bottom))
    z = torch.nn.functional.conv2d(xp, w, b if case.bias else None, case.strides)
    p = _pooling(case)
    y = torch.nn.functional.max_pool2d(torch.relu(z), p.window, p.strides)
    gy = torch.tensor(a["gy"], dtype=torch.float64).permute(0, 3, 1, 2)
    (y * gy).sum().backward()
    assert x.grad is not None and w.grad is not None
    grads = {
        "y": y.detach().permute(0, 2, 3, 1).numpy(),
        "dx": x.grad.permute(0, 2, 3, 1).numpy(),
        "dw": w.grad.permute(2, 3, 1, 0).numpy(),
    }
    return grads if b.grad is None else {**grads, "db": b.grad.numpy()}


def _close(got: np.ndarray, want: np.ndarray) -> None:
    scale = max(float(np.abs(want).max()), 1e-30)
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL * scale)


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_is_the_unfused_bits_and_gradients_agree(case: Case) -> None:
    a = _inputs(case)
    fused, unfused = _fused(case, a), _unfused(case, a)
    np.testing.assert_array_equal(fused["y"], unfused["y"])
    for name in ("dx", "dw") + (("db",) if case.bias else ()):
        _close(fused[name], unfused[name])


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_against_pytorch_in_float64(case: Case) -> None:
    a = _inputs(case)
    fused, reference = _fused(case, a), _torch(case, a)
    for name in ("y", "dx", "dw") + (("db",) if case.bias else ()):
        _close(fused[name], reference[name])


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_avx2_and_avx512_loops_give_the_same_bits(case: Case) -> None:
    """Forward takes the 16-lane pooled blocks at the AVX-512 level and the chunked direct
    kernel (8-lane blocks) and `_pool.c` at the AVX2 level; every sum is the same chain of fused
    multiply-adds at either width, so the results agree bit for bit."""
    if "avx512" not in native.isa_levels():
        pytest.skip("the CPU runs no AVX-512 variant")
    a = _inputs(case)
    before = native.use_isa("avx2")
    try:
        narrow = _fused(case, a)
        native.use_isa("avx512")
        wide = _fused(case, a)
    finally:
        native.use_isa(before)
    for name, value in narrow.items():
        if value is not None:  # no bias, no db
            np.testing.assert_array_equal(value.view(np.uint32), wide[name].view(np.uint32))


@needs_kernel
def test_repeats_its_bits() -> None:
    case = CASES[1]
    a = _inputs(case)
    first, second = _fused(case, a), _fused(case, a)
    for name, value in first.items():
        np.testing.assert_array_equal(value, second[name])


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_without_the_input_gradient(case: Case) -> None:
    """A first layer's backward: one input channel takes its own loop then."""
    a = _inputs(case)
    b = a["b"] if case.bias else None
    _, cache = conv_pool.forward(a["x"], a["w"], b, _geometry(case, a), _pooling(case), _relu())
    dx, dw, db = conv_pool.backward(cache, a["gy"], False)
    unfused = _unfused(case, a)
    assert dx is None and (db is None) == (not case.bias)
    _close(dw, unfused["dw"])
    if db is not None:
        _close(db, unfused["db"])


@needs_kernel
@pytest.mark.parametrize(
    "case", [*CASES, Case("pool_1", (2, 9, 10, 8), (3, 3), 16, window=(1, 1))], ids=lambda c: c.id
)
def test_windows_at_or_below_zero_route_signed_zeros_as_relu_then_pool(case: Case) -> None:
    """Every convolution output <= 0: the ReLU zeroes each window, the unfused passes send
    gy * 0 (-0.0 for a negative gy, +0.0 for the losers) to the convolution, and its sums of
    signed zeros give the gradients' zeros; the fused backward skips those terms and must leave
    the same zeros, sign bit included (1 x 1 windows have no losers' +0.0)."""
    a = _inputs(case)
    a["b"] = np.full_like(a["b"], -100.0)
    a["x"], a["w"] = -np.abs(a["x"]), np.abs(a["w"])  # without the bias: sums of x w <= 0
    a["gy"].reshape(-1)[:4] = [-0.0, 0.0, -1.0, 2.0]
    fused, unfused = _fused(case, a), _unfused(case, a)
    for name in ("y", "dx", "dw") + (("db",) if case.bias else ()):
        assert not fused[name].any()
        np.testing.assert_array_equal(fused[name].view(np.uint32), unfused[name].view(np.uint32))


def test_declines_what_the_kernels_do_not_take() -> None:
    case = CASES[0]
    a = _inputs(case, np.float64)
    assert not conv_pool.applies(a["x"], a["w"], a["b"], _geometry(case, a), _pooling(case))


def _cnn() -> Model:
    """W3's layers, small: two Conv2D + ReLU + MaxPooling2D pairs (the second odd: 7 -> 3)."""
    x = Input((14, 14, 1))
    h = layers.MaxPooling2D(2, name="pool1")(layers.Conv2D(16, 3, activation="relu")(x))
    h = layers.MaxPooling2D(2, name="pool2")(layers.Conv2D(16, 3, activation="relu")(h))
    model = Model(x, layers.Dense(4, activation="softmax")(layers.Flatten()(h)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _train(build: Any) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.random((48, 14, 14, 1), dtype=np.float32)
    y = rng.integers(0, 4, 48)
    en.random.set_seed(3)
    model = build()
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    calls = get_trainer(model).train_exec.calls
    return {
        "absorbed": {c.layer.name for c in calls if c.absorbed},
        "loss": history.history["loss"],
        "weights": [w.data.copy() for w in model.weights],
        "predict": model.predict(x, verbose=0),
    }


@needs_kernel
def test_the_planned_step_fuses_each_conv_with_its_pooling(monkeypatch: pytest.MonkeyPatch) -> None:
    fused = _train(_cnn)
    assert fused["absorbed"] == {"pool1", "pool2"}
    # the same training without the fused kernel: the two layers' passes inside one call
    monkeypatch.setattr(native._ext, "conv_pool", None)
    composite = _train(_cnn)
    assert composite["absorbed"] == {"pool1", "pool2"}
    patterns = {k: v for k, v in fusion.PATTERNS.items() if k != ("Conv2D", "MaxPooling2D")}
    monkeypatch.setattr(fusion, "PATTERNS", patterns)
    unfused = _train(_cnn)
    assert unfused["absorbed"] == set()
    for u, v in zip(composite["weights"], unfused["weights"], strict=True):
        np.testing.assert_array_equal(u.view(np.uint8), v.view(np.uint8))
    np.testing.assert_array_equal(composite["predict"], unfused["predict"])
    np.testing.assert_allclose(fused["loss"], unfused["loss"], rtol=1e-5)
    for u, v in zip(fused["weights"], unfused["weights"], strict=True):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-5)


def test_without_the_kernel_the_pair_runs_each_layers_own_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fused call the compiled kernel does not take is the two layers' own passes, the
    pooling's backward included (for the first convolution too, whose input needs none)."""
    monkeypatch.setattr(native._ext, "conv_pool", None)
    pooled: list[str] = []
    own_backward = layers.MaxPooling2D.backward

    def backward(self: Any, *args: Any) -> Any:
        pooled.append(self.name)
        return own_backward(self, *args)

    monkeypatch.setattr(layers.MaxPooling2D, "backward", backward)
    assert _train(_cnn)["absorbed"] == {"pool1", "pool2"}
    assert sorted(set(pooled)) == ["pool1", "pool2"]
