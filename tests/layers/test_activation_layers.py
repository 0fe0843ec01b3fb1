"""Keras's activation layers against independent oracles: torch's functions (values and
gradients, float64), the examples in Keras 3's docstrings, Keras's masked softmax, and
Keras's argument checks. The shape/parameter/finite-difference rows are in
tests/layers/cases/activation_layers.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import Input, Model, layers
from engine.layers.base import CallContext, Layer

X = np.array([-10.0, -5.0, 0.0, 5.0, 10.0], dtype=np.float32)


def test_keras_docstring_examples() -> None:
    relu = layers.ReLU(max_value=10, negative_slope=0.5, threshold=0)
    np.testing.assert_array_equal(relu(X).numpy(), [-5.0, -2.5, 0.0, 5.0, 10.0])
    np.testing.assert_array_equal(layers.LeakyReLU()(X).numpy(), [-3.0, -1.5, 0.0, 5.0, 10.0])
    soft = layers.Softmax()(np.array([1.0, 2.0, 1.0], dtype=np.float32)).numpy()
    np.testing.assert_allclose(soft, [0.21194157, 0.5761169, 0.21194157], rtol=1e-6)


def test_relu_threshold_is_strict_as_in_keras() -> None:
    """Keras's relu keeps x only above the threshold: at x == threshold it gives 0 (and
    negative_slope * (x - threshold) = 0), as torch's threshold does; gradient 0 there."""
    x = np.array([0.4, 0.5, 0.6], dtype=np.float32)
    np.testing.assert_array_equal(layers.ReLU(threshold=0.5)(x).numpy(), [0.0, 0.0, x[2]])
    leaky = layers.ReLU(threshold=0.5, negative_slope=0.5)(x).numpy()
    np.testing.assert_allclose(leaky, [-0.05, 0.0, 0.6], rtol=1e-6)
    _, dx, _ = _run(layers.ReLU(threshold=0.5), x[None], np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 1.0]])


def _run(layer: Layer, x: np.ndarray, dy: np.ndarray, mask: Any = None) -> tuple[Any, ...]:
    layer.build((None, *x.shape[1:]), rng=np.random.default_rng(0))
    params = [w.data for w in layer.weights]
    ctx = CallContext(training=True, mask=mask)
    y, cache = layer.forward(params, x, ctx)
    grads = [np.empty_like(p) for p in params]
    dx = layer.backward(params, cache, dy, grads, ctx)
    return y, dx, grads


def _torch_cases(torch: Any) -> list[tuple[dict[str, Any], Any]]:
    f = torch.nn.functional
    return [
        ({"type": "ReLU"}, f.relu),
        ({"type": "ReLU", "max_value": 6.0}, f.relu6),
        ({"type": "ReLU", "negative_slope": 0.1}, lambda x: f.leaky_relu(x, 0.1)),
        (
            {"type": "ReLU", "threshold": 0.5},
            lambda x: f.threshold(x, 0.5, 0.0),
        ),
        ({"type": "LeakyReLU"}, lambda x: f.leaky_relu(x, 0.3)),
        ({"type": "LeakyReLU", "negative_slope": 0.2}, lambda x: f.leaky_relu(x, 0.2)),
        ({"type": "ELU"}, f.elu),
        ({"type": "ELU", "alpha": 0.5}, lambda x: f.elu(x, 0.5)),
        ({"type": "Softmax"}, lambda x: f.softmax(x, -1)),
        ({"type": "Softmax", "axis": 1}, lambda x: f.softmax(x, 1)),
        (
            {"type": "Softmax", "axis": [1, 2]},
            lambda x: torch.exp(x - torch.logsumexp(x, dim=(1, 2), keepdim=True)),
        ),
    ]


def test_values_and_gradients_match_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.uniform(-8.0, 8.0, (3, 4, 5))
    x[np.abs(x) < 0.05] += 0.1  # central values off the kinks at 0 (and 0.5 below)
    x[np.abs(x - 0.5) < 0.05] += 0.1
    dy = rng.standard_normal(x.shape)
    for config, reference in _torch_cases(torch):
        ours = layers.LAYERS[config["type"]].from_config({**config, "dtype": "float64"})
        y, dx, _ = _run(ours, x, dy)
        xt = torch.from_numpy(x).requires_grad_(True)
        expected = reference(xt)
        expected.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12, err_msg=str(config))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=str(config))


@pytest.mark.parametrize("shared_axes", [None, [1], [1, 2]])
def test_prelu_matches_torch(shared_axes: list[int] | None) -> None:
    """torch's PReLU with channels first and one slope per channel is ours with channels last
    shared over the other axes; with no sharing, its weight broadcasts like ours."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    dy = rng.standard_normal(x.shape)
    init = {"type": "random_uniform", "minval": 0.1, "maxval": 0.6}
    ours = layers.PReLU(alpha_initializer=init, shared_axes=shared_axes, dtype="float64")
    y, dx, grads = _run(ours, x, dy)
    alpha = torch.from_numpy(ours.weights[0].data.copy()).requires_grad_(True)
    xt = torch.from_numpy(x).requires_grad_(True)
    # torch's prelu takes a per-channel weight; the general formula covers every layout
    expected = torch.where(xt > 0, xt, alpha * xt)
    expected.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(grads[0], alpha.grad.numpy(), rtol=1e-10)
    if shared_axes == [1, 2]:
        channels_first = torch.from_numpy(x).permute(0, 3, 1, 2)
        weight = torch.from_numpy(ours.weights[0].data.reshape(-1).copy())
        by_torch = torch.nn.functional.prelu(channels_first, weight).permute(0, 2, 3, 1)
        np.testing.assert_allclose(y, by_torch.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("shared_axes", "shape", "count"),
    [(None, (None, 10, 8), 80), ([1], (None, 10, 8), 8), ([1, 2], (None, 6, 6, 3), 3)],
)
def test_prelu_parameter_counts_follow_keras(
    shared_axes: list[int] | None, shape: tuple[int | None, ...], count: int
) -> None:
    """Keras's PReLU.build: alpha is input_shape[1:] with 1 along each shared axis."""
    layer = layers.PReLU(shared_axes=shared_axes)
    layer.build(shape)
    assert layer.count_params() == count
    assert layer.get_weights()[0].shape == tuple(
        1 if i in (shared_axes or ()) else d for i, d in enumerate(shape) if i
    )
    assert not layer.get_weights()[0].any()  # Keras's default initializer: zeros


def test_prelu_needs_known_sizes_unless_shared() -> None:
    with pytest.raises(ValueError, match=r"axes \[1\] unknown") as info:
        layers.PReLU().weight_specs((None, None, 4))
    assert info.value.hint == "share those axes: shared_axes: [1]"  # type: ignore[attr-defined]
    assert layers.PReLU(shared_axes=1).weight_specs((None, None, 4))[0].shape == (1, 4)


def test_masked_softmax_is_keras_formula() -> None:
    """Keras 3: masked logits become -1e9 before the softmax; their gradient is zero."""
    x = np.array([[1.0, 2.0, 1.0], [0.5, -1.0, 3.0]], dtype=np.float32)
    keep = np.array([[True, False, True], [1.0, 1.0, 0.0]])
    y = layers.Softmax()(x, mask=keep).numpy()
    np.testing.assert_allclose(y[0], [0.5, 0.0, 0.5])
    e = np.exp([0.5, -1.0])
    np.testing.assert_allclose(y[1], [*(e / e.sum()), 0.0], rtol=1e-6)
    dy = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    _, dx, _ = _run(layers.Softmax(), x, dy, mask=keep)
    assert dx[0, 1] == 0.0 and dx[1, 2] == 0.0


def test_a_timestep_mask_covers_each_steps_values() -> None:
    """An Embedding's (N, T) mask reaching a Softmax over (N, T, F) masks whole steps of a
    softmax along the time axis, so padded steps get no weight."""
    ids = Input((4,), dtype="int32")
    scores = layers.Embedding(6, 2, mask_zero=True)(ids)
    model = Model(ids, layers.Softmax(axis=1)(scores))
    y = model.predict(np.array([[1, 2, 0, 0], [3, 4, 5, 0]]), verbose=0)
    np.testing.assert_array_equal(y[0, 2:], 0.0)
    np.testing.assert_array_equal(y[1, 3:], 0.0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"type": "ReLU", "max_value": -1.0}, "max_value"),
        ({"type": "ReLU", "negative_slope": -0.1}, "negative_slope"),
        ({"type": "ReLU", "threshold": -1.0}, "threshold"),
        ({"type": "LeakyReLU", "negative_slope": -0.3}, "negative_slope"),
        ({"type": "Softmax", "axis": [1, 1]}, "distinct"),
        ({"type": "PReLU", "shared_axes": [0]}, "shared_axes"),
    ],
)
def test_keras_refuses_these_arguments_and_so_do_we(config: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        layers.LAYERS[config["type"]].from_config(config)


def test_softmax_axis_must_be_a_feature_axis() -> None:
    with pytest.raises(ValueError, match="axis 0"):
        layers.Softmax(axis=0).compute_output_shape((None, 4))
    with pytest.raises(ValueError, match="axis 3"):
        layers.Softmax(axis=3).compute_output_shape((None, 4, 5))


def test_default_relu_layer_is_the_plain_relu_only() -> None:
    assert layers.ReLU().is_plain_relu
    assert not layers.ReLU(max_value=6.0).is_plain_relu
    assert not layers.ReLU(negative_slope=0.1).is_plain_relu
    assert not layers.LeakyReLU().is_plain_relu
