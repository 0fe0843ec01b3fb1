"""The planned Dense path (reused buffers, in-place relu, split GEMM) against the composite one,
the loss-fused pre-activation gradient against loss.backward times the activation's Jacobian,
and which outputs the trainer fuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from engine import Input, Model, backend, layers, losses, native
from engine.fused import gemm
from engine.fused.workspace import PlannedContext
from engine.layers.base import CallContext
from engine.train.trainer import get_trainer

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")


@dataclass(frozen=True)
class DenseCase:
    id: str
    activation: Any
    use_bias: bool = True
    shape: tuple[int, ...] = (5, 3)
    need_input_grad: bool = True


DENSE_CASES = [
    DenseCase("relu", "relu"),
    DenseCase("linear", "linear"),
    DenseCase("sigmoid", "sigmoid"),
    DenseCase("softmax", "softmax"),
    DenseCase("tanh_no_bias", "tanh", use_bias=False),
    DenseCase("relu_rank3", "relu", shape=(2, 4, 3)),
    DenseCase("softmax_rank3_axis1", {"type": "softmax", "axis": 1}, shape=(2, 4, 3)),
    DenseCase("relu_first_layer", "relu", need_input_grad=False),
]


def _dense(case: DenseCase, units: int = 4) -> tuple[layers.Dense, list[np.ndarray]]:
    layer = layers.Dense(units, activation=case.activation, use_bias=case.use_bias, dtype="float64")
    layer.build((None, case.shape[-1]), np.random.default_rng(0))
    params = [w.data for w in layer.weights]
    if case.use_bias:
        params[1][...] = np.linspace(-0.5, 0.5, units)
    return layer, params


def _step(
    layer: layers.Dense, params: list[np.ndarray], ctx: CallContext, x: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], Any]:
    out, cache = layer.forward(params, x, ctx)
    out = out.copy()
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, g, grads, ctx)
    return out, grads, None if dx is None else dx.copy()


@pytest.mark.parametrize("case", DENSE_CASES, ids=lambda c: c.id)
def test_planned_dense_matches_the_composite_path_over_reused_buffers(case: DenseCase) -> None:
    layer, params = _dense(case)
    planned = PlannedContext(training=True, need_input_grad=case.need_input_grad)
    rng = np.random.default_rng(1)
    for _ in range(3):  # later steps overwrite the buffers of earlier ones
        x = rng.normal(size=case.shape)
        g = rng.normal(size=(*case.shape[:-1], 4))
        composite = CallContext(training=True, need_input_grad=case.need_input_grad)
        want_out, want_grads, want_dx = _step(layer, params, composite, x, g)
        out, grads, dx = _step(layer, params, planned, x, g)
        np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-14)
        for got, want in zip(grads, want_grads, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        if case.need_input_grad:
            np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-14)
        else:
            assert dx is None and want_dx is None
    assert planned.buffers, "the planned path keeps its arrays in the context"


@pytest.mark.parametrize("compiled_split", [True, False])
def test_planned_dense_gradients_are_the_whole_products_bit_for_bit(
    compiled_split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large enough to share out, the weight and input gradients run as a pair of whole
    products (compiled, or on two Python threads): the composite path's bits exactly."""
    if not compiled_split:
        monkeypatch.setattr(native._ext, "split_gemm", False)
    layer = layers.Dense(256, activation="linear", dtype="float32")
    layer.build((None, 512), np.random.default_rng(0))
    params = [w.data for w in layer.weights]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 512), dtype=np.float32)
    g = rng.standard_normal((128, 256), dtype=np.float32)
    planned = PlannedContext(training=True, need_input_grad=True)
    with gemm.planned_blas():
        want = _step(layer, params, CallContext(training=True, need_input_grad=True), x, g)
        for _ in range(2):
            got = _step(layer, params, planned, x, g)
            for a, b in zip(got[1], want[1], strict=True):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(got[2], want[2])


def test_planned_dense_reuses_its_buffers_between_steps() -> None:
    layer, params = _dense(DENSE_CASES[0])
    ctx = PlannedContext(training=True)
    x = np.ones((5, 3))
    first, _ = layer.forward(params, x, ctx)
    second, _ = layer.forward(params, 2 * x, ctx)
    assert np.shares_memory(first, second)
    assert len(ctx.buffers) == 1


@dataclass(frozen=True)
class FusedLossCase:
    id: str
    activation: str
    loss: Any
    labels: str


FUSED_LOSS_CASES = [
    FusedLossCase("softmax_sparse_cce", "softmax", "sparse_categorical_crossentropy", "ids"),
    FusedLossCase("softmax_cce", "softmax", "categorical_crossentropy", "onehot"),
    FusedLossCase("sigmoid_bce", "sigmoid", "binary_crossentropy", "binary"),
]


def _labels(kind: str, rng: np.random.Generator, n: int, units: int) -> np.ndarray:
    if kind == "ids":
        return rng.integers(0, units, n)
    if kind == "onehot":
        return np.eye(units)[rng.integers(0, units, n)]
    return rng.integers(0, 2, (n, units)).astype(np.float64)


@pytest.mark.parametrize("case", FUSED_LOSS_CASES, ids=lambda c: c.id)
def test_preactivation_gradient_equals_loss_gradient_through_the_activation(
    case: FusedLossCase,
) -> None:
    layer, params = _dense(DenseCase(case.id, case.activation))
    loss = losses.get(case.loss)
    assert loss.fusable_activation == case.activation
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 3))
    y = _labels(case.labels, rng, 6, 4)
    weights = rng.uniform(0.5, 2.0, 6)
    out, cache = layer.forward(params, x, CallContext(training=True))
    _, loss_cache = loss.forward(y, out, weights)
    want = [np.empty_like(p) for p in params]
    want_dx = layer.backward(params, cache, loss.backward(loss_cache), want, CallContext())
    fused = PlannedContext(training=True, preactivation_grad=True)
    out, cache = layer.forward(params, x, fused)
    _, loss_cache = loss.forward(y, out, weights)
    got = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, loss.logits_backward(loss_cache), got, fused)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-13)


GEMM_SHAPES = [
    ("forward", (128, 784), (784, 512), False),
    ("weight_grad", (784, 128), (128, 256), True),
    ("small_not_split", (32, 4), (4, 16), False),
]


def _operands(
    rng: np.random.Generator, a_shape: tuple[int, int], b_shape: tuple[int, int], transposed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a (a transposed view when `transposed`, as a weight gradient's x.T is), b and an output."""
    a = rng.standard_normal(a_shape[::-1] if transposed else a_shape, dtype=np.float32)
    a = a.T if transposed else a
    b = rng.standard_normal(b_shape, dtype=np.float32)
    return a, b, np.empty((a_shape[0], b_shape[1]), dtype=np.float32)


@pytest.mark.parametrize(("a_shape", "b_shape", "transposed"), [s[1:] for s in GEMM_SHAPES])
def test_split_gemm_matches_numpy_and_repeats_bit_for_bit(
    a_shape: tuple[int, int], b_shape: tuple[int, int], transposed: bool
) -> None:
    a, b, out = _operands(np.random.default_rng(3), a_shape, b_shape, transposed)
    with gemm.planned_blas():
        first = gemm.matmul(a, b, out).copy()
        second = gemm.matmul(a, b, out)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("compiled_split", [True, False])
@pytest.mark.parametrize(("a_shape", "b_shape", "transposed"), [s[1:] for s in GEMM_SHAPES])
def test_epilogue_sees_every_output_once_after_its_product(
    a_shape: tuple[int, int],
    b_shape: tuple[int, int],
    transposed: bool,
    compiled_split: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(4)
    a, b, out = _operands(rng, a_shape, b_shape, transposed)
    bias = rng.standard_normal(b_shape[1], dtype=np.float32)
    seen = np.zeros(out.shape, dtype=int)

    class Counted(gemm.BiasRelu):
        def __call__(self, out: np.ndarray, lo: int, hi: int, cols: slice = gemm.ALL) -> None:
            seen[lo:hi, cols] += 1
            super().__call__(out, lo, hi, cols)

    if not compiled_split:
        monkeypatch.setattr(native._ext, "split_gemm", False)
    with gemm.planned_blas():
        gemm.matmul(a, b, out, Counted(bias, True))
    if not compiled_split or not native.split_gemm_available():
        np.testing.assert_array_equal(seen, 1)
    expected = np.maximum(a.astype(np.float64) @ b + bias, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)


def _blas_threads() -> list[int]:
    return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_planned_blas_runs_one_thread_and_restores_the_setting() -> None:
    before = _blas_threads()
    with gemm.planned_blas():
        assert all(n == 1 for n in _blas_threads())
        with gemm.planned_blas():
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def _model(activation: str, also_consumed: bool = False, activity: bool = False) -> Model:
    x = Input(shape=(3,))
    h = layers.Dense(4, activation="tanh")(x)
    extra: dict[str, Any] = {"activity_regularizer": "l2"} if activity else {}
    out = layers.Dense(2, activation=activation, name="out", **extra)(h)
    outputs = [out, layers.Dense(1, name="aux")(out)] if also_consumed else [out]
    return Model(x, outputs)


@pytest.mark.parametrize(
    ("activation", "loss", "options", "expected"),
    [
        ("softmax", "sparse_categorical_crossentropy", {}, True),
        ("softmax", "categorical_crossentropy", {}, True),
        ("sigmoid", "binary_crossentropy", {}, True),
        ("softmax", {"type": "categorical_crossentropy", "from_logits": True}, {}, False),
        ("softmax", "binary_crossentropy", {}, False),
        ("sigmoid", "mse", {}, False),
        ("softmax", "categorical_crossentropy", {"also_consumed": True}, False),
        ("softmax", "categorical_crossentropy", {"activity": True}, False),
    ],
)
def test_trainer_fuses_only_a_dense_activation_the_loss_can_absorb(
    activation: str, loss: Any, options: dict[str, bool], expected: bool
) -> None:
    model = _model(activation, **options)
    n_out = len(model.outputs)
    model.compile(optimizer="sgd", loss=[loss, "mse"][:n_out] if n_out > 1 else loss)
    trainer = get_trainer(model)
    assert trainer.fused[0] is expected
    out_call = next(c for c in trainer.train_exec.calls if c.layer.name == "out")
    assert out_call.ctx.preactivation_grad is expected


def test_a_subclass_with_its_own_backward_gets_the_probabilities_gradient() -> None:
    """The planner asks the layer (`takes_logits_gradient`), not its class; a subclass that
    replaces `backward` may not honour `preactivation_grad`, so it does not inherit the promise."""

    class OwnBackward(layers.Dense):
        def backward(self, params: Any, cache: Any, grad: Any, grads: Any, ctx: Any) -> Any:
            return super().backward(params, cache, grad, grads, ctx)

    class SameBackward(layers.Dense):
        pass

    assert layers.Dense.takes_logits_gradient and SameBackward.takes_logits_gradient
    assert not OwnBackward.takes_logits_gradient
    inp = Input((3,))
    model = Model(inp, OwnBackward(2, activation="softmax", name="out")(inp))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert get_trainer(model).fused == [False]


def test_shuffled_batches_are_gathered_in_the_epoch_permutation() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.integers(0, 2, (50, 2)).astype(np.float32)
    shuffled, ordered = _model("sigmoid"), _model("sigmoid")
    ordered.set_weights(shuffled.get_weights())
    for m in (shuffled, ordered):
        m.seed = 7
        m.compile(optimizer="adam", loss="binary_crossentropy")
    shuffled.fit(x, y, batch_size=8, epochs=1, verbose=0)
    perm = np.random.default_rng([7, 0]).permutation(50)
    ordered.fit(x[perm], y[perm], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(shuffled.get_weights(), ordered.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _wide_fit(device: str) -> list[np.ndarray]:
    with backend.use(device):
        x = Input(shape=(300,))
        h = layers.Dense(200, activation="relu")(x)
        model = Model(x, layers.Dense(3, activation="softmax")(h))
        model.set_weights(
            [np.random.default_rng(i).normal(0, 0.1, w.shape) for i, w in enumerate(model.weights)]
        )
        model.seed = 5
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(6)
        data = rng.normal(size=(160, 300)).astype(np.float32)
        model.fit(data, rng.integers(0, 3, 160), batch_size=80, epochs=1, verbose=0)
        return [backend.backend_of(w.data).to_host(w.data) for w in model.weights]


def test_split_products_keep_the_fake_device_bit_identical_to_the_cpu() -> None:
    assert gemm.SPLIT_MIN_FLOPS <= 2 * 80 * 300 * 200  # the first layer's products are split
    for a, b in zip(_wide_fit("cpu"), _wide_fit("fake"), strict=True):
        np.testing.assert_array_equal(a, b)
