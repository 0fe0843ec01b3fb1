"""The strict fake device: it refuses host arrays where CuPy would, and a whole training step
(a fused Dense layer, a loss from en ops, the tape, an SGD update) runs on it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import engine as en
from engine.backend import backend_of, get_backend, to_backend
from engine.fake_device import FakeArray, xp
from engine.layers import Dense

DEVICE = xp.asarray(np.arange(4.0, dtype=np.float32))
HOST = np.ones(4, dtype=np.float32)


@pytest.mark.parametrize(
    "mix",
    [
        lambda: DEVICE + HOST,
        lambda: HOST * DEVICE,
        lambda: DEVICE @ HOST,
        lambda: xp.concatenate([DEVICE, HOST]),
        lambda: xp.where(DEVICE > 1, DEVICE, HOST),
        lambda: xp.add(DEVICE, HOST, out=DEVICE.copy()),
        lambda: DEVICE.copy().__setitem__(slice(None), HOST),
    ],
    ids=["add", "rmul", "matmul", "concatenate", "where", "out", "setitem"],
)
def test_fake_arrays_refuse_host_arrays(mix: Callable[[], Any]) -> None:
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        mix()


@pytest.mark.parametrize(
    "ok",
    [
        lambda: DEVICE + 1.0,
        lambda: DEVICE * np.float32(2),
        lambda: xp.exp(DEVICE),
        lambda: DEVICE.sum(),
        lambda: xp.zeros(3),
        lambda: xp.lib.stride_tricks.as_strided(DEVICE, (2, 2), (4, 4)),
    ],
    ids=["python_scalar", "numpy_scalar", "ufunc", "reduce", "creation", "as_strided"],
)
def test_fake_results_stay_on_the_device(ok: Callable[[], Any]) -> None:
    assert isinstance(ok(), FakeArray)


def test_host_transfers_are_explicit() -> None:
    fake = get_backend("fake")
    moved = to_backend(HOST, fake)
    assert isinstance(moved, FakeArray)
    back = fake.to_host(moved)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, HOST)


def test_tensors_on_two_devices_do_not_mix() -> None:
    a = en.constant([1.0, 2.0])
    with en.device("fake"):
        b = en.constant([1.0, 2.0])
    with pytest.raises(TypeError, match="different devices"):
        a + b
    v = en.Variable([1.0, 2.0])
    with pytest.raises(TypeError, match="is on cpu"):
        v.assign_sub(b)


def _train_step(device: str) -> tuple[list[Any], float]:
    rng = np.random.default_rng(0)
    x_host = rng.normal(size=(8, 5)).astype(np.float32)
    y_host = rng.normal(size=(8, 3)).astype(np.float32)
    with en.device(device):
        layer = Dense(3, activation="relu")
        layer.build((None, 5))
        layer.set_weights([rng.normal(size=(5, 3)).astype(np.float32), np.full(3, 0.1, np.float32)])
        x, target = en.constant(x_host), en.constant(y_host)
        with en.GradientTape() as tape:
            pred = layer(x)
            loss = en.reduce_mean(en.square(pred - target)) + 0.01 * en.reduce_sum(
                en.square(layer.weights[0])
            )
        grads = tape.gradient(loss, layer.trainable_weights)
        for w, g in zip(layer.trainable_weights, grads, strict=True):
            w.assign_sub(0.1 * g)
    return layer.weights, float(loss.numpy())


def test_training_step_on_the_fake_device_matches_cpu() -> None:
    cpu_weights, cpu_loss = _train_step("cpu")
    fake_weights, fake_loss = _train_step("fake")
    assert fake_loss == cpu_loss
    for w_fake, w_cpu in zip(fake_weights, cpu_weights, strict=True):
        assert isinstance(w_fake.data, FakeArray)
        assert w_fake.device == "fake"
        np.testing.assert_array_equal(w_fake.numpy(), w_cpu.numpy())


@pytest.mark.parametrize("device", ["cpu", "fake"])
@pytest.mark.parametrize("value", [[1.0, 2.0], np.array([1.0, 2.0]), 3.0])
def test_to_backend_always_gives_an_array_of_the_backend(device: str, value: object) -> None:
    backend = get_backend(device)
    moved = to_backend(value, backend)
    assert backend_of(moved) is backend
    np.testing.assert_array_equal(backend.to_host(moved), np.asarray(value))
