"""The conv and pool kernels against torch.nn.functional and central finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.conv_geometry import conv_output_length
from engine.kernels.conv import conv_backward, conv_forward
from engine.kernels.pool import pool_backward, pool_forward
from tests.layers.harness import numeric_grad

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

# (spatial, cin, kernel, cout, strides, padding, dilation, groups)
CONV_ROWS = [
    ((9,), 3, (3,), 4, (1,), "valid", (1,), 1),
    ((10,), 4, (3,), 6, (2,), "same", (1,), 2),
    ((11,), 2, (3,), 3, (1,), "causal", (2,), 1),
    ((8,), 3, (4,), 2, (3,), "same", (1,), 1),
    ((7, 6), 3, (3, 3), 5, (1, 1), "valid", (1, 1), 1),
    ((8, 7), 2, (3, 2), 4, (2, 3), "same", (1, 1), 1),
    ((9, 9), 4, (3, 3), 4, (1, 1), "same", (2, 2), 4),
    ((6, 5), 6, (1, 1), 3, (1, 1), "valid", (1, 1), 3),
    ((28, 28), 1, (3, 3), 8, (1, 1), "valid", (1, 1), 1),
    ((5, 6, 4), 2, (2, 3, 2), 3, (1, 2, 1), "same", (1, 1, 1), 1),
    ((6, 5, 5), 4, (3, 2, 2), 2, (1, 1, 1), "valid", (1, 2, 1), 2),
]

# (spatial, channels, pool, strides, padding)
POOL_ROWS = [
    ((8,), 3, (2,), (2,), "valid"),
    ((9,), 2, (3,), (2,), "same"),
    ((7,), 2, (2,), (1,), "valid"),
    ((24, 24), 4, (2, 2), (2, 2), "valid"),
    ((7, 5), 3, (3, 2), (2, 2), "same"),
    ((6, 6), 2, (3, 3), (1, 1), "same"),
    ((5, 7), 2, (2, 3), (3, 1), "valid"),
    ((4, 5, 6), 2, (2, 2, 2), (2, 2, 2), "same"),
    ((5, 4, 4), 1, (3, 2, 2), (1, 1, 2), "valid"),
    ((5, 4), 2, (1, 1), (2, 1), "valid"),
    ((9, 9), 2, (3, 3), (3, 3), "valid"),
]


def _conv_id(row: tuple) -> str:
    sp, cin, k, cout, s, pad, d, g = row
    return f"{len(sp)}d-k{k}-s{s}-{pad}-d{d}-g{g}"


def _same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _torch_pads(spatial, kernel, strides, padding, dilation):
    """F.pad's argument (last axis first) for Keras's padding modes."""
    pads = []
    for n, k, s, d in zip(spatial, kernel, strides, dilation, strict=True):
        if padding == "same":
            pads.append(_same_pads(n, k, s, d))
        elif padding == "causal":
            pads.append(((k - 1) * d, 0))
        else:
            pads.append((0, 0))
    return [p for pair in reversed(pads) for p in pair]


def _to_torch(x: np.ndarray):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True, dtype=torch.float64)


def _from_torch(t) -> np.ndarray:
    return np.moveaxis(t.detach().numpy(), 1, -1)


@pytest.mark.parametrize("row", CONV_ROWS, ids=[_conv_id(r) for r in CONV_ROWS])
def test_conv_matches_torch(row: tuple) -> None:
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    sp, cin, kernel, cout, strides, padding, dilation, groups = row
    nd = len(sp)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *sp, cin)).astype(np.float32)
    w = rng.standard_normal((*kernel, cin // groups, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    y, cache = conv_forward(x, w, b, strides, padding, dilation, groups)
    assert y.dtype == np.float32
    expected_out = [
        conv_output_length(n, k, s, padding, d)
        for n, k, s, d in zip(sp, kernel, strides, dilation, strict=True)
    ]
    assert list(y.shape) == [2, *expected_out, cout]

    tx = _to_torch(x.astype(np.float64))
    tw = torch.tensor(
        np.transpose(w, (nd + 1, nd, *range(nd))).astype(np.float64), requires_grad=True
    )
    tb = torch.tensor(b.astype(np.float64), requires_grad=True)
    conv = getattr(fn, f"conv{nd}d")
    xpad = fn.pad(tx, _torch_pads(sp, kernel, strides, padding, dilation))
    ty = conv(xpad, tw, tb, stride=strides, dilation=dilation, groups=groups)
    np.testing.assert_allclose(y, _from_torch(ty), rtol=1e-4, atol=1e-4)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = conv_backward(cache, dy)
    ty.backward(torch.tensor(np.moveaxis(dy, -1, 1).astype(np.float64)))
    assert dx is not None and db is not None
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    np.testing.assert_allclose(dx, _from_torch(tx.grad), rtol=1e-4, atol=1e-4)
    tdw = np.transpose(tw.grad.numpy(), (*range(2, nd + 2), 1, 0))
    np.testing.assert_allclose(dw, tdw, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("row", CONV_ROWS, ids=[_conv_id(r) for r in CONV_ROWS])
def test_numpy_conv_matches_torch_in_float64(row: tuple) -> None:
    """The NumPy path (float64 never takes a compiled kernel) to float64 rounding: the chunked
    columns padded once, and one input channel by the window view's transposed columns."""
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    sp, cin, kernel, cout, strides, padding, dilation, groups = row
    nd = len(sp)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, *sp, cin))
    w = rng.standard_normal((*kernel, cin // groups, cout))
    b = rng.standard_normal(cout)
    y, cache = conv_forward(x, w, b, strides, padding, dilation, groups)
    tx = _to_torch(x)
    tw = torch.tensor(np.transpose(w, (nd + 1, nd, *range(nd))), requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    xpad = fn.pad(tx, _torch_pads(sp, kernel, strides, padding, dilation))
    ty = getattr(fn, f"conv{nd}d")(xpad, tw, tb, stride=strides, dilation=dilation, groups=groups)
    np.testing.assert_allclose(y, _from_torch(ty), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv_backward(cache, dy)
    ty.backward(torch.tensor(np.moveaxis(dy, -1, 1)))
    assert dx is not None and db is not None
    np.testing.assert_allclose(dx, _from_torch(tx.grad), rtol=1e-12, atol=1e-12)
    tdw = np.transpose(tw.grad.numpy(), (*range(2, nd + 2), 1, 0))
    np.testing.assert_allclose(dw, tdw, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("row", [CONV_ROWS[2], CONV_ROWS[6], CONV_ROWS[10]], ids=_conv_id)
def test_conv_backward_matches_finite_differences(row: tuple) -> None:
    sp, cin, kernel, cout, strides, padding, dilation, groups = row
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, *sp, cin))
    w = rng.standard_normal((*kernel, cin // groups, cout))
    b = rng.standard_normal(cout)
    y, cache = conv_forward(x, w, b, strides, padding, dilation, groups)
    proj = rng.standard_normal(y.shape)

    def loss() -> float:
        return float((conv_forward(x, w, b, strides, padding, dilation, groups)[0] * proj).sum())

    dx, dw, db = conv_backward(cache, proj)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)


def test_conv_backward_skips_dx_and_bias() -> None:
    x = np.ones((1, 5, 2), np.float32)
    w = np.ones((3, 2, 4), np.float32)
    y, cache = conv_forward(x, w, None)
    dx, dw, db = conv_backward(cache, np.ones_like(y), need_dx=False)
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, np.full((3, 2, 4), 3.0, np.float32))


@pytest.mark.parametrize(
    ("length", "kernel", "stride", "padding", "dilation", "expected"),
    [
        (None, 3, 1, "valid", 1, None),
        (28, 3, 1, "valid", 1, 26),
        (28, 3, 2, "valid", 1, 13),
        (10, 3, 1, "valid", 3, 4),
        (10, 4, 3, "same", 1, 4),
        (10, 5, 1, "causal", 2, 10),
        (3, 5, 1, "valid", 1, -1),
    ],
)
def test_conv_output_length(length, kernel, stride, padding, dilation, expected) -> None:
    assert conv_output_length(length, kernel, stride, padding, dilation) == expected


def test_conv_rejects_bad_groups_and_padding() -> None:
    x = np.ones((1, 5, 4), np.float32)
    with pytest.raises(ValueError, match="groups"):
        conv_forward(x, np.ones((3, 4, 6), np.float32), None, groups=3)
    with pytest.raises(ValueError, match="padding"):
        conv_forward(x, np.ones((3, 4, 6), np.float32), None, padding="full")


def _torch_pool(tx, mode, sp, pool, strides, padding):
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    nd = len(sp)
    pads = _torch_pads(sp, pool, strides, padding, (1,) * nd)
    if mode == "max":
        return getattr(fn, f"max_pool{nd}d")(fn.pad(tx, pads, value=-math.inf), pool, strides)
    avg = getattr(fn, f"avg_pool{nd}d")
    ones = torch.ones_like(tx)
    return avg(fn.pad(tx, pads), pool, strides) / avg(fn.pad(ones, pads), pool, strides)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(
    "row", POOL_ROWS, ids=[f"{len(r[0])}d-{r[2]}-{r[3]}-{r[4]}" for r in POOL_ROWS]
)
def test_pool_matches_torch(row: tuple, mode: str) -> None:
    torch = pytest.importorskip("torch")
    sp, channels, pool, strides, padding = row
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *sp, channels)).astype(np.float32)
    y, cache = pool_forward(x, pool, strides, padding, mode)
    assert y.dtype == np.float32
    tx = _to_torch(x.astype(np.float64))
    ty = _torch_pool(tx, mode, sp, pool, strides, padding)
    np.testing.assert_allclose(y, _from_torch(ty), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = pool_backward(cache, dy)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    ty.backward(torch.tensor(np.moveaxis(dy, -1, 1).astype(np.float64)))
    np.testing.assert_allclose(dx, _from_torch(tx.grad), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("row", [POOL_ROWS[1], POOL_ROWS[5], POOL_ROWS[7]])
def test_pool_backward_matches_finite_differences(row: tuple, mode: str) -> None:
    sp, channels, pool, strides, padding = row
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, *sp, channels))
    y, cache = pool_forward(x, pool, strides, padding, mode)
    proj = rng.standard_normal(y.shape)

    def loss() -> float:
        return float((pool_forward(x, pool, strides, padding, mode)[0] * proj).sum())

    np.testing.assert_allclose(
        pool_backward(cache, proj), numeric_grad(loss, x), rtol=1e-6, atol=1e-7
    )


def test_pool_defaults_strides_to_pool_size() -> None:
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    y, _ = pool_forward(x, 2, None, "valid", "max")
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 7], [13, 15]])


# ----- the layer rules built on these kernels (shape errors, masks, dropout, merges) ---------
# They live here because the layer table (tests/layers) checks only shapes, counts and grads.


@pytest.mark.parametrize(
    ("config", "shape", "fragment"),
    [
        (
            {"type": "Conv1D", "filters": 2, "kernel_size": 5},
            (None, 3, 1),
            "kernel_size 5 is larger than the input length 3 with padding valid",
        ),
        (
            {"type": "Conv2D", "filters": 2, "kernel_size": 3, "dilation_rate": 2},
            (None, 4, 9, 1),
            "dilated to 5",
        ),
        ({"type": "Conv2D", "filters": 2, "kernel_size": 3}, (None, 28, 28), "rank-4 input"),
        (
            {"type": "Conv2D", "filters": 4, "kernel_size": 1, "groups": 2},
            (None, 5, 5, 3),
            "divisible by groups",
        ),
        ({"type": "MaxPooling2D", "pool_size": 3}, (None, 2, 5, 1), "pool_size 3 is larger"),
        ({"type": "GlobalAveragePooling1D"}, (None, 4), "rank-3 input"),
        ({"type": "Reshape", "target_shape": [5, -1]}, (None, 12), "12 values"),
        ({"type": "Reshape", "target_shape": [5, 3]}, (None, 12), "(5, 3)"),
        ({"type": "Permute", "dims": [2, 1]}, (None, 3, 4, 5), "has 3 besides the batch"),
        ({"type": "RepeatVector", "n": 2}, (None, 3, 4), "add a Flatten"),
        ({"type": "Dropout", "rate": 0.5, "noise_shape": [None, 1]}, (None, 3, 4), "3 entries"),
        ({"type": "Add"}, (None, 3), "at least 2 inputs; got one input"),
        ({"type": "Subtract"}, [(None, 3)] * 3, "exactly 2 inputs"),
        ({"type": "Add"}, [(None, 3), (None, 4)], "axis 1 has sizes [3, 4]"),
        ({"type": "Concatenate"}, [(None, 2, 3), (None, 4, 3)], "other axes to match"),
        ({"type": "Concatenate", "axis": 3}, [(None, 2, 3), (None, 4, 3)], "non-batch axis"),
        ({"type": "Dot", "axes": 1}, [(None, 3), (None, 4)], "sizes must match"),
    ],
)
def test_layer_shape_errors(config: dict, shape: object, fragment: str) -> None:
    from engine.layers import registry
    from engine.layers.base import ShapeError

    layer = registry.get(config["type"]).from_config(config)
    with pytest.raises(ShapeError) as info:
        layer.compute_output_shape(shape)
    assert fragment in f"{info.value.message} {info.value.hint}"


def test_shape_error_names_field_and_hint() -> None:
    from engine.layers.base import ShapeError
    from engine.layers.conv import Conv1D, Conv2D

    with pytest.raises(ShapeError) as info:
        Conv1D(2, 5).compute_output_shape((None, 3, 1))
    assert info.value.field == "kernel_size" and "padding: same" in (info.value.hint or "")
    with pytest.raises(ShapeError) as info:
        Conv2D(2, 3).compute_output_shape((None, 28, 28))
    assert "Reshape to (28, 28, 1)" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("type_name", "config", "fragment"),
    [
        ("Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, "dilation"),
        ("Conv2D", {"filters": 5, "kernel_size": 3, "groups": 2}, "divisible by groups"),
        ("Conv2D", {"filters": 4, "kernel_size": [3, 3, 3]}, "kernel_size needs 2 values"),
        ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "causal"}, "padding"),
        ("MaxPooling1D", {"pool_size": [2, 2]}, "pool_size needs 1 values"),
        ("Dropout", {"rate": 1.0}, "rate"),
        ("Reshape", {"target_shape": [-1, -1]}, "at most one -1"),
        ("Permute", {"dims": [1, 3]}, "permutation"),
        ("Dot", {"axes": 0}, "batch"),
    ],
)
def test_config_errors(type_name: str, config: dict, fragment: str) -> None:
    import pydantic

    from engine.layers import registry

    with pytest.raises(pydantic.ValidationError, match=fragment):
        registry.get(type_name)(**config)


def test_python_api_positional_arguments_and_flops() -> None:
    from engine.layers.conv import Conv1D, Conv2D
    from engine.layers.core import Dropout, Reshape
    from engine.layers.pooling import MaxPooling2D

    conv = Conv2D(32, 3, activation="relu")
    assert conv.config.filters == 32 and conv.config.kernel_size == 3
    assert conv.compute_output_shape((None, 28, 28, 1)) == (None, 26, 26, 32)
    assert conv.flops((None, 28, 28, 1)) == 26 * 26 * 32 * (2 * 9 + 1)
    assert Conv1D(4, 2, 1, "causal").config.padding == "causal"
    assert MaxPooling2D(3, 1, "same").compute_output_shape((None, 5, 5, 2)) == (None, 5, 5, 2)
    assert Dropout(0.25).config.rate == 0.25
    assert Reshape((7, -1)).compute_output_shape((None, 28, 28)) == (None, 7, 112)
    from engine.layers.core import Flatten

    assert Flatten().compute_output_shape((None, None, 3)) == (None, None)


def _ctx(training: bool = False, seed: int = 0, mask: object = None) -> object:
    from engine.layers.base import CallContext

    return CallContext(training=training, rng=np.random.default_rng(seed), mask=mask)


def test_dropout_training_inference_and_determinism() -> None:
    from engine.layers.core import Dropout

    layer = Dropout(0.25)
    x = np.ones((200, 50), np.float32)
    y, _ = layer.forward([], x, _ctx(training=True))
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    again, _ = layer.forward([], x, _ctx(training=True))
    np.testing.assert_array_equal(y, again)
    same, cache = layer.forward([], x, _ctx(training=False))
    assert same is x and cache is None
    shared, _ = Dropout(0.5, noise_shape=(None, 1)).forward([], x, _ctx(training=True))
    assert (shared == shared[:, :1]).all()
    a, _ = Dropout(0.5, seed=7).forward([], x, _ctx(training=True, seed=1))
    b, _ = Dropout(0.5, seed=7).forward([], x, _ctx(training=True, seed=2))
    np.testing.assert_array_equal(a, b)


def test_global_average_pooling_1d_averages_unmasked_steps() -> None:
    from engine.layers.pooling import GlobalAveragePooling1D, GlobalMaxPooling1D

    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[True, True, False], [True, False, False]])
    layer = GlobalAveragePooling1D()
    y, cache = layer.forward([], x, _ctx(mask=mask))
    np.testing.assert_allclose(y, [[1.0, 2.0], [6.0, 7.0]])
    dx = layer.backward([], cache, np.ones_like(y), [], _ctx(mask=mask))
    np.testing.assert_allclose(dx[:, :, 0], [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert layer.output_mask(x, mask) is None
    assert GlobalMaxPooling1D().output_mask(x, mask) is None


def test_merge_masks() -> None:
    from engine.layers.core import Dropout, Flatten
    from engine.layers.merging import Add, Concatenate, Dot

    a = np.array([[True, False, True]])
    b = np.array([[True, True, False]])
    x = np.zeros((1, 3, 2), np.float32)
    np.testing.assert_array_equal(Add().output_mask([x, x], [a, b]), [[True, False, False]])
    np.testing.assert_array_equal(Add().output_mask([x, x], [a, None]), a)
    assert Add().output_mask([x, x], None) is None
    np.testing.assert_array_equal(Concatenate().output_mask([x, x], [a, b]), a & b)
    joined = Concatenate(axis=1).output_mask([x, x], [a, None])
    np.testing.assert_array_equal(joined, [[True, False, True, True, True, True]])
    assert Dot(axes=2).output_mask([x, x], [a, b]) is None
    assert Flatten().output_mask(x, a) is None
    assert Dropout(0.5).output_mask(x, a) is a


def _my_cases() -> list:
    from tests.layers.cases import conv, core, lambda_layer, merging, pooling, rescaling

    mods = (conv, core, lambda_layer, merging, pooling, rescaling)
    return [c for m in mods for c in m.CASES]


@pytest.mark.parametrize("case", _my_cases(), ids=lambda c: c.id)
def test_layers_run_on_the_strict_fake_device(
    case: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forward and backward on device arrays give the host results: no host array leaks in.

    The host runs without the direct convolution kernel, the one compiled kernel whose sums
    differ from the NumPy path's (tests/engine/test_conv_direct.py compares those two)."""
    from engine import native
    from engine.backend import get_backend

    monkeypatch.setattr(native._ext, "conv_direct", None)
    from engine.layers import registry
    from engine.layers.base import CallContext
    from tests.layers.harness import make_inputs

    fake = get_backend("fake")
    layer = registry.get(case.config["type"]).from_config(case.config)
    layer.build(case.input_shape, rng=np.random.default_rng(1))
    host_x = make_inputs(case, np.random.default_rng(0), np.float32)
    host_p = [w.data for w in layer.weights]

    def run(to: object) -> tuple:
        x = [to(a) for a in host_x] if isinstance(host_x, list) else to(host_x)
        params = [to(p) for p in host_p]
        ctx = CallContext(training=case.training, rng=np.random.default_rng(3))
        out, cache = layer.forward(params, x, ctx)
        grads = [to(np.empty_like(p)) for p in host_p]
        gin = layer.backward(params, cache, out * 0.5 + 1.0, grads, ctx)
        return out, gin, grads

    out, gin, grads = run(lambda a: a)
    f_out, f_gin, f_grads = run(fake.asarray)
    assert fake.xp.owns(f_out)
    np.testing.assert_allclose(fake.to_host(f_out), out, rtol=1e-6, atol=1e-6)
    pairs = zip(f_gin, gin, strict=True) if isinstance(gin, list) else [(f_gin, gin)]
    for f, h in [*pairs, *zip(f_grads, grads, strict=True)]:
        if h is None:
            assert f is None
            continue
        np.testing.assert_allclose(fake.to_host(f), h, rtol=1e-6, atol=1e-6)
