"""GradientTape semantics as in TensorFlow: watching, None for unconnected sources, nested
source structures, persistence, un-broadcasting, stop_recording, and no work without a tape.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine as en
from engine import autodiff
from engine.autodiff import unbroadcast


@pytest.mark.parametrize(
    ("grad_shape", "shape", "expected"),
    [
        ((3, 4), (4,), [3.0] * 4),
        ((3, 4), (3, 1), [[4.0]] * 3),
        ((2, 3, 4), (1, 4), [[6.0] * 4]),
        ((3, 4), (), 12.0),
        ((3, 4), (3, 4), np.ones((3, 4)).tolist()),
    ],
)
def test_unbroadcast(grad_shape: tuple[int, ...], shape: tuple[int, ...], expected: object) -> None:
    out = unbroadcast(np.ones(grad_shape), shape)
    assert out.shape == shape
    assert np.asarray(out).tolist() == expected


def test_trainable_variables_are_watched_and_constants_are_not() -> None:
    w = en.Variable([1.0, 2.0])
    frozen = en.Variable([1.0, 2.0], trainable=False)
    c = en.constant([3.0, 4.0])
    with en.GradientTape() as tape:
        y = en.reduce_sum(w * c + frozen * c)
    dw, dfrozen, dc = tape.gradient(y, [w, frozen, c])
    assert dw.numpy().tolist() == [3.0, 4.0]
    assert dfrozen is None and dc is None


def test_watch_and_unconnected_gradients() -> None:
    x = en.constant(3.0)
    other = en.constant(1.0)
    with en.GradientTape(persistent=True) as tape:
        tape.watch([x, other])
        y = x * x
    assert tape.gradient(y, x).numpy() == 6.0
    assert tape.gradient(y, other) is None
    assert tape.gradient(y, other, unconnected_gradients="zero").numpy() == 0.0


def test_nested_sources_keep_their_structure() -> None:
    a, b, c = en.Variable(1.0), en.Variable(2.0), en.Variable(3.0)
    with en.GradientTape() as tape:
        y = a * b * c
    grads = tape.gradient(y, {"first": [a, (b,)], "second": c})
    assert grads["first"][0].numpy() == 6.0
    assert isinstance(grads["first"][1], tuple) and grads["first"][1][0].numpy() == 3.0
    assert grads["second"].numpy() == 2.0


def test_non_persistent_tape_answers_once() -> None:
    w = en.Variable(2.0)
    with en.GradientTape() as tape:
        y = w * w
    tape.gradient(y, w)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, w)


def test_persistent_tape_answers_repeatedly_and_accumulates_reuse() -> None:
    w = en.Variable([1.0, 2.0])
    with en.GradientTape(persistent=True) as tape:
        y = en.reduce_sum(w * w + w)
        z = en.reduce_sum(en.exp(w))
    assert tape.gradient(y, w).numpy().tolist() == [3.0, 5.0]
    np.testing.assert_allclose(tape.gradient(z, w).numpy(), np.exp([1.0, 2.0]), rtol=1e-6)
    assert tape.gradient([y, z], w).shape == (2,)


def test_output_gradients_seed_the_backward_pass() -> None:
    w = en.Variable([1.0, 2.0])
    with en.GradientTape() as tape:
        y = w * 3.0
    assert tape.gradient(y, w, output_gradients=en.constant([2.0, -1.0])).numpy().tolist() == [
        6.0,
        -3.0,
    ]


def test_integer_paths_and_stop_recording_give_none() -> None:
    w = en.Variable([1.0, 2.0])
    with en.GradientTape() as tape:
        index = en.argmax(w)
        with tape.stop_recording():
            paused = w * 2.0
        y = en.reduce_sum(paused) + en.cast(index, en.float32)
    assert tape.gradient(y, w) is None


def test_stop_gradient_and_watch_accessed_variables() -> None:
    w = en.Variable(2.0)
    with en.GradientTape(watch_accessed_variables=False) as tape:
        y = w * w
    assert tape.gradient(y, w) is None
    with en.GradientTape() as tape:
        y = en.stop_gradient(w) * w
    assert tape.gradient(y, w).numpy() == 2.0


def test_no_tape_no_recording() -> None:
    w = en.Variable([1.0])
    with en.GradientTape() as tape:
        pass
    assert not autodiff.is_recording()
    en.reduce_sum(w * 2.0)
    assert tape._nodes == []


def test_gradient_dtype_and_device_follow_the_source() -> None:
    with en.device("fake"):
        w = en.Variable(np.ones(3))
        with en.GradientTape() as tape:
            y = en.reduce_mean(en.nn.sigmoid(w))
        g = tape.gradient(y, w)
    assert g.dtype == en.float64
    assert g.device == "fake"


@pytest.mark.parametrize(("target", "expected"), [(en.float64, [2.0, 2.0]), (en.int32, None)])
def test_cast_passes_gradient_between_floats_only(target: en.DType, expected: object) -> None:
    w = en.Variable([1.5, 2.5])
    with en.GradientTape() as tape:
        y = en.reduce_sum(en.cast(w, target) * 2)
    g = tape.gradient(y, w)
    assert (g if g is None else g.numpy().tolist()) == expected
    if g is not None:
        assert g.dtype == en.float32
