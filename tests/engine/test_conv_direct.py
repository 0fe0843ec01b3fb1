"""The compiled direct convolution against the NumPy path, a float64 reference and PyTorch.

It is the one compiled kernel that is not bit-identical to its fallback (it sums in another
order than im2col + sgemm), so it is held to float32 rounding instead, and to repeating its
own bits from run to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from engine import native
from engine.kernels import conv_direct
from engine.kernels.conv import conv_backward, conv_forward
from engine.layers.conv import in_place_activation

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

needs_kernel = pytest.mark.skipif(not native.available(), reason="built without a C compiler")

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Case:
    id: str
    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    filters: int
    strides: int | tuple[int, int] = 1
    padding: str = "same"
    bias: bool = True


CASES = [
    # 16 filters: one 16-lane vector, 12-pixel blocks, the last one partly past the row
    Case("w7_stage_1_like", (4, 10, 9, 16), (3, 3), 16),
    # one input channel, 32 filters (two vectors, 6-pixel blocks), no padding: W3's first layer
    Case("one_channel_valid", (3, 12, 11, 1), (3, 3), 32, padding="valid"),
    Case("three_channels_strided", (2, 9, 9, 3), (3, 3), 48, strides=2),
    Case("wide_input_stride_1", (2, 8, 8, 8), (3, 3), 64, bias=False),
    Case("uneven_kernel", (2, 7, 6, 5), (2, 3), 16),
    Case("projection", (2, 9, 8, 4), (1, 1), 32, strides=2),
    # dX of strided convolutions phase by phase: front padding 1 on the rows, 0 on the columns
    Case("strided_16_channels", (2, 9, 10, 16), (3, 3), 32, strides=2),
    Case("strided_valid_uneven", (3, 11, 8, 32), (3, 2), 16, strides=(2, 3), padding="valid"),
    # a kernel smaller than the stride: half the phases get no gradient
    Case("strided_projection", (2, 8, 9, 16), (1, 1), 32, strides=2),
]


def _strides(case: Case) -> tuple[int, int]:
    return (case.strides,) * 2 if isinstance(case.strides, int) else case.strides


def _front_pads(case: Case) -> tuple[int, int]:
    """Keras's `same` padding before each spatial axis (the odd element goes after)."""
    if case.padding != "same":
        return 0, 0
    (ph, pw) = (
        max((-(-n // s) - 1) * s + k - n, 0) // 2
        for n, k, s in zip(case.x_shape[1:3], case.kernel, _strides(case), strict=True)
    )
    return ph, pw


def _inputs(case: Case, dtype: Any = np.float32) -> Arrays:
    rng = np.random.default_rng(sum(case.x_shape) + case.filters)
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal((*case.kernel, case.x_shape[-1], case.filters)) * 0.3
    b = rng.standard_normal(case.filters)
    return {"x": x.astype(dtype), "w": w.astype(dtype), "b": b.astype(dtype)}


def _run(case: Case, a: Arrays) -> Arrays:
    relu = in_place_activation(_relu())
    b = a["b"] if case.bias else None
    y, cache = conv_forward(a["x"], a["w"], b, case.strides, case.padding, epilogue=relu)
    dy = np.cos(np.arange(y.size, dtype=y.dtype)).reshape(y.shape)
    dx, dw, db = conv_backward(cache, dy * (y > 0))
    assert dx is not None
    out = {"y": y, "dx": np.ascontiguousarray(dx), "dw": dw}
    if db is not None:
        out["db"] = db
    return out


def _relu() -> Any:
    from engine import activations

    return activations.get("relu")


def _without_direct(case: Case, a: Arrays, monkeypatch: pytest.MonkeyPatch) -> Arrays:
    with monkeypatch.context() as patch:
        patch.setattr(native._ext, "conv_direct", None)
        return _run(case, a)


def _close(got: np.ndarray, want: np.ndarray, rel: float) -> None:
    """Within `rel` of the largest magnitude: float32 sums of a few hundred terms."""
    scale = float(np.abs(want).max()) or 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * scale)


class _Spy:
    """The compiled module, counting its calls."""

    def __init__(self, module: Any) -> None:
        self.module, self.calls = module, []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append(name)
            return getattr(self.module, name)(*args)

        return call


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_direct_kernel_takes_these_shapes(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(native._ext.conv_direct)
    monkeypatch.setattr(native._ext, "conv_direct", spy)
    _run(case, _inputs(case))
    # forward, and dX as the forward of dy when the input channels come in 16s: at stride 1
    # one call, strided one per phase of the input that some kernel tap reaches
    strides = _strides(case)
    front = _front_pads(case)
    reached = sum(
        any((a - py - front[0]) % strides[0] == 0 for a in range(case.kernel[0]))
        and any((b - px - front[1]) % strides[1] == 0 for b in range(case.kernel[1]))
        for py in range(strides[0])
        for px in range(strides[1])
    )
    forwards = 1 + (reached if case.x_shape[-1] % 16 == 0 else 0)
    assert spy.calls.count("forward") == forwards
    assert spy.calls.count("weight_grad") == 1


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_direct_kernel_agrees_with_the_numpy_path_and_float64(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _inputs(case)
    direct = _run(case, a)
    composite = _without_direct(case, a, monkeypatch)
    reference = _run(case, _inputs(case, np.float64))
    assert direct.keys() == composite.keys() == reference.keys()
    for name in direct:
        _close(direct[name], composite[name], 2e-6)
        _close(direct[name], reference[name].astype(np.float32), 2e-6)


@needs_kernel
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_direct_kernel_repeats_its_bits(case: Case) -> None:
    first, again = _run(case, _inputs(case)), _run(case, _inputs(case))
    for name in first:
        np.testing.assert_array_equal(first[name].view(np.uint8), again[name].view(np.uint8))


@needs_kernel
def test_a_large_batch_split_over_two_threads_matches_the_numpy_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = Case("w7_batch", (32, 32, 32, 16), (3, 3), 16)
    a = _inputs(case)
    direct = _run(case, a)
    for name, want in _without_direct(case, a, monkeypatch).items():
        _close(direct[name], want, 2e-6)


@needs_kernel
@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: c.id)
def test_direct_forward_matches_torch(case: Case) -> None:
    torch = pytest.importorskip("torch")
    a = _inputs(case)
    y = _run(case, a)["y"]
    x = torch.from_numpy(a["x"]).permute(0, 3, 1, 2)
    w = torch.from_numpy(a["w"]).permute(3, 2, 0, 1)
    if case.padding == "same":
        # Keras's `same`: the odd element of the padding goes after
        kh, kw = case.kernel
        h, wd = case.x_shape[1:3]
        s = case.strides
        ph = max((-(-h // s) - 1) * s + kh - h, 0)
        pw = max((-(-wd // s) - 1) * s + kw - wd, 0)
        x = torch.nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    b = torch.from_numpy(a["b"]) if case.bias else None
    want = torch.relu(torch.nn.functional.conv2d(x, w, b, stride=case.strides))
    _close(y, want.permute(0, 2, 3, 1).numpy(), 2e-6)


def test_the_kernel_declines_what_it_cannot_do() -> None:
    from engine.kernels.conv_chunks import Geometry

    def geometry(kernel: tuple[int, ...], dilation: int = 1) -> Geometry:
        nd = len(kernel)
        return Geometry(kernel, (1,) * nd, (dilation,) * nd, ((1, 1),) * nd, (8,) * nd, (8,) * nd)

    assert conv_direct.forward_wins(geometry((3, 3)), 16, 16)
    assert not conv_direct.forward_wins(geometry((3, 3)), 16, 24)  # filters not in 16s
    assert not conv_direct.forward_wins(geometry((3, 3), dilation=2), 16, 16)
    assert not conv_direct.forward_wins(geometry((3,)), 16, 16)  # 1-d
    assert not conv_direct.forward_wins(geometry((3, 3, 3)), 16, 16)  # 3-d
    assert conv_direct.forward_wins(geometry((3, 3)), 64, 64)
    # not measured against sgemm at its full speed: wider layers
    assert not conv_direct.forward_wins(geometry((3, 3)), 128, 64)
    assert not conv_direct.forward_wins(geometry((3, 3)), 64, 128)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cin", [1, 16])
@pytest.mark.parametrize("strides", [1, 2])
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(
    dtype: Any, cin: int, strides: int
) -> None:
    # one input channel and 16 filters: the direct kernel's shape, taken for float32 and left
    # to im2col for float64; an empty batch must not reach a zero chunk size in either
    case = Case("empty", (0, 9, 7, cin), (3, 3), 16, strides=strides)
    out = _run(case, _inputs(case, dtype))
    assert out["y"].shape == (0, 9 if strides == 1 else 5, 7 if strides == 1 else 4, 16)
    assert out["dx"].shape == case.x_shape
    np.testing.assert_array_equal(out["dw"], np.zeros((3, 3, cin, 16), dtype=dtype))
    np.testing.assert_array_equal(out["db"], np.zeros(16, dtype=dtype))


@needs_kernel
@pytest.mark.parametrize(
    ("layout", "fits"),
    [
        ((0, 64 * 16, 2 * 8 * 16, 2 * 16), True),  # phase (0, 0) of a stride-2 dX
        ((8 * 16 + 16, 64 * 16, 2 * 8 * 16, 2 * 16), True),  # phase (1, 1)
        ((8 * 16 + 17, 64 * 16, 2 * 8 * 16, 2 * 16), False),  # the last pixel past y's end
        ((-1 - 16, 64 * 16, 2 * 8 * 16, 2 * 16), False),  # before y's start
        ((0, 64 * 16, 2 * 8 * 16, 8), False),  # pixels overlapping
        ((0, 64 * 16, 16, 2 * 16), False),  # rows overlapping
        ((0, 16, 2 * 8 * 16, 2 * 16), False),  # images overlapping
    ],
)
def test_a_placed_output_must_stay_inside_y_and_apart(
    layout: tuple[int, int, int, int], fits: bool
) -> None:
    """The forward's output layout (one phase of a strided dX) is checked before any write."""
    module = native._ext.conv_direct
    x = np.ones((2, 4, 4, 16), dtype=np.float32)
    w = np.ones((1, 1, 16, 16), dtype=np.float32)
    y = np.zeros((2, 8, 8, 16), dtype=np.float32)
    args = (x, w, np.empty(0, np.float32), y, x.shape, (1, 1), (1, 1), (0, 0), (4, 4), 16)
    if not fits:
        with pytest.raises(ValueError, match="geometry"):
            module.forward(*args, layout)
        return
    module.forward(*args, layout)
    (y0, _, yh, yw) = layout
    py, px = divmod(y0 // 16, 8)
    placed = np.zeros_like(y)
    placed[:, py :: yh // 128, px :: yw // 16] = 16.0
    np.testing.assert_array_equal(y, placed)
