"""The planned step's layer fusions (engine/train/fusion.py): BatchNormalization or Add with
the plain ReLU after it run as one call. Fused, unfused and without the compiled kernels, a
small ResNet block trains, evaluates and predicts to the same bits; the pairs the graph does
not allow (a second reader, a model output, a mask, a shared layer, a ReLU with arguments) stay
two calls; and the fused backward matches central differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import engine as en
from engine import Input, Model, layers, native
from engine.layers.base import CallContext, Layer
from engine.train import fusion
from engine.train.trainer import get_trainer
from tests.layers.harness import numeric_grad

# each test once per instruction-set variant of the compiled loops this CPU runs
pytestmark = pytest.mark.usefixtures("each_isa")

needs_native = pytest.mark.skipif(not native.available(), reason="built without a C compiler")


def _relu_activation(name: str) -> Layer:
    return layers.Activation("relu", name=name)


def _relu_layer(name: str) -> Layer:
    return layers.ReLU(name=name)


def _resnet_block(relu: Callable[[str], Layer] = _relu_activation) -> Model:
    """Conv + BN + ReLU, Conv + BN added to a projected shortcut, ReLU; channels wide enough
    for the compiled passes (and the two-core split of the first BN). `relu` makes the ReLUs:
    `Activation("relu")` or the `ReLU()` layer, which fuse alike."""
    x = Input((16, 16, 3))
    stem = relu("stem")(
        layers.BatchNormalization(name="stem_bn")(layers.Conv2D(8, 3, padding="same")(x))
    )
    h = layers.Conv2D(8, 3, padding="same")(stem)
    h = relu("relu1")(layers.BatchNormalization(name="bn1")(h))
    h = layers.BatchNormalization(name="bn2")(layers.Conv2D(8, 3, padding="same")(h))
    out = relu("out")(layers.Add(name="add")([stem, h]))
    pooled = layers.GlobalAveragePooling2D()(out)
    model = Model(x, layers.Dense(4, activation="softmax")(pooled))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _absorbed(model: Model) -> set[str]:
    """Names of the layers whose call runs inside the call before it."""
    return {c.layer.name for c in get_trainer(model).train_exec.calls if c.absorbed}


def _run(build: Callable[[], Model], xs: Any, y: np.ndarray) -> dict[str, Any]:
    en.random.set_seed(5)
    model = build()
    history = model.fit(xs, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    return {
        "absorbed": _absorbed(model),
        "history": history.history,
        "weights": [w.data.copy() for w in model.weights],
        "evaluate": model.evaluate(xs, y, verbose=0),
        "predict": model.predict(xs, verbose=0),
    }


def _assert_same_bits(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["history"] == b["history"]
    assert a["evaluate"] == b["evaluate"]
    for u, v in zip([*a["weights"], a["predict"]], [*b["weights"], b["predict"]], strict=True):
        np.testing.assert_array_equal(u.view(np.uint8), v.view(np.uint8))


def _images(n: int = 70) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 16, 16, 3), dtype=np.float32), rng.integers(0, 4, n)


@pytest.mark.parametrize("relu", [_relu_activation, _relu_layer], ids=["activation", "relu_layer"])
def test_a_resnet_block_fuses_its_bn_relu_and_add_relu_pairs_to_the_same_bits(
    relu: Callable[[str], Layer], monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = _images()
    fused = _run(lambda: _resnet_block(relu), x, y)
    assert fused["absorbed"] == {"stem", "relu1", "out"}
    monkeypatch.setattr(fusion, "PATTERNS", {})
    unfused = _run(lambda: _resnet_block(relu), x, y)
    assert unfused["absorbed"] == set()
    _assert_same_bits(fused, unfused)


@needs_native
def test_fused_pairs_give_the_numpy_composites_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _images()
    compiled = _run(_resnet_block, x, y)
    monkeypatch.setenv(native.SWITCH, "0")
    monkeypatch.setattr(native, "_ext", native._Extensions())
    composite = _run(_resnet_block, x, y)
    assert composite["absorbed"] == compiled["absorbed"]
    _assert_same_bits(compiled, composite)


def _second_reader() -> Model:
    x = Input((6, 6, 4))
    bn = layers.BatchNormalization(name="bn")(x)
    both = layers.Add()([layers.Activation("relu", name="relu")(bn), bn])
    return _pooled(x, both)


def _bn_is_an_output() -> Model:
    x = Input((6, 6, 4))
    bn = layers.BatchNormalization(name="bn")(x)
    relu = layers.Activation("relu", name="relu")(bn)
    model = Model(x, [layers.GlobalAveragePooling2D()(relu), layers.GlobalAveragePooling2D()(bn)])
    model.compile(optimizer="adam", loss=["mse", "mse"])
    return model


def _shared_bn() -> Model:
    x = Input((6, 6, 4))
    bn = layers.BatchNormalization(name="bn")
    a = layers.Activation("relu", name="relu")(bn(x))
    b = layers.Activation("relu", name="relu_b")(bn(layers.Conv2D(4, 1)(x)))
    return _pooled(x, layers.Add()([a, b]))


def _masked() -> Model:
    x = Input((5, 4))
    masked = layers.Masking(mask_value=0.0)(x)
    relu = layers.Activation("relu", name="relu")(layers.BatchNormalization(name="bn")(masked))
    model = Model(x, layers.Dense(1)(layers.GlobalAveragePooling1D()(relu)))
    model.compile(optimizer="adam", loss="mse")
    return model


def _relu_with_arguments() -> Model:
    x = Input((6, 6, 4))
    capped = layers.Activation({"type": "relu", "max_value": 1.0}, name="relu")
    return _pooled(x, capped(layers.BatchNormalization(name="bn")(x)))


def _relu_layer_with_arguments() -> Model:
    x = Input((6, 6, 4))
    capped = layers.ReLU(max_value=6.0, name="relu")
    return _pooled(x, capped(layers.BatchNormalization(name="bn")(x)))


def _pooled(x: Any, h: Any) -> Model:
    model = Model(x, layers.Dense(1)(layers.GlobalAveragePooling2D()(h)))
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize(
    "build",
    [
        _second_reader,
        _bn_is_an_output,
        _shared_bn,
        _masked,
        _relu_with_arguments,
        _relu_layer_with_arguments,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_pairs_the_graph_needs_apart_are_not_fused(
    build: Callable[[], Model], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, *model.inputs[0].shape[1:]), dtype=np.float32)
    x[:, 2:] = 0.0  # masked steps for the Masking model
    y = [rng.standard_normal((12, *o.shape[1:]), dtype=np.float32) for o in model.outputs]
    got = _run(lambda: model, x, y if len(y) > 1 else y[0])
    assert got["absorbed"] == set()


def _fd_check(layer: Layer, params: list[np.ndarray], xs: list[np.ndarray], training: bool) -> None:
    """forward_relu then backward against central differences of sum(w * output)."""
    rng = np.random.default_rng(2)
    multi = len(xs) > 1
    arg = xs if multi else xs[0]
    moving = [p.copy() for p in params[2:]]  # changed in place by each training forward

    def loss() -> float:
        for p, f in zip(params[2:], moving, strict=True):
            p[...] = f
        out, _ = layer.forward_relu(params, arg, CallContext(training=training))  # type: ignore[attr-defined]
        return float((w * out).sum())

    out, cache = layer.forward_relu(params, arg, CallContext(training=training))  # type: ignore[attr-defined]
    w = rng.standard_normal(out.shape)
    grads = [np.empty_like(p) if i < 2 else None for i, p in enumerate(params)]
    gin = layer.backward(params, cache, w, grads, CallContext(training=training))
    for x, g in zip(xs, gin if multi else [gin], strict=True):
        np.testing.assert_allclose(g, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for p, g in zip(params[: len(grads)], grads, strict=False):
        if g is not None:
            np.testing.assert_allclose(g, numeric_grad(loss, p), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("training", [True, False])
def test_fused_bn_relu_gradients_match_central_differences(training: bool) -> None:
    layer = layers.BatchNormalization(dtype="float64")
    layer.build((None, 3, 4), np.random.default_rng(0))
    rng = np.random.default_rng(3)
    params = [w.data for w in layer.weights]
    params[0][...] = rng.uniform(0.5, 1.5, 4)
    params[1][...] = rng.standard_normal(4)
    params[3][...] = rng.uniform(0.5, 2.0, 4)
    _fd_check(layer, params, [rng.standard_normal((5, 3, 4))], training)


def test_fused_add_relu_gradients_match_central_differences() -> None:
    layer = layers.Add(dtype="float64")
    rng = np.random.default_rng(4)
    _fd_check(layer, [], [rng.standard_normal((4, 6)), rng.standard_normal((4, 6))], True)
