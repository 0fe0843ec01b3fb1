"""predict's two executors side by side: the same bits as one executor running every batch
whole, whichever thread takes a batch, and only for layers that allow it."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Input, Model, backend, layers
from engine.fused import gemm
from engine.train import loops
from engine.train.executor import Executor
from tests.training.busy_helper import helper_busy


def _wide_model(outputs: int = 1) -> Model:
    x = Input(shape=(300,))
    h = layers.Dense(200, activation="relu")(x)
    heads = [layers.Dense(3, activation="softmax", name=f"head{i}")(h) for i in range(outputs)]
    model = Model(x, heads if outputs > 1 else heads[0])
    model.set_weights(
        [np.random.default_rng(i).normal(0, 0.1, w.shape) for i, w in enumerate(model.weights)]
    )
    return model


def _data(rows: int = 1000) -> np.ndarray:
    return np.random.default_rng(6).normal(size=(rows, 300)).astype(np.float32)


def _one_executor_whole(model: Model, x: np.ndarray, size: int) -> list[np.ndarray]:
    ex = Executor(model, None, False)
    parts: list[list[np.ndarray]] = []
    with gemm.planned_blas(), gemm.whole_products():
        for start in range(0, len(x), size):
            outs, _ = ex.forward([x[start : start + size]])
            parts.append([o.copy() for o in outs])
    return [np.concatenate(p) for p in zip(*parts, strict=True)]


def test_predict_matches_one_executor_running_every_batch_whole() -> None:
    model, x = _wide_model(), _data()
    assert gemm.SPLIT_MIN_FLOPS <= 2 * 256 * 300 * 200  # else whole and split would agree
    assert len(loops._predict_executors(model, side_by_side=True)) == 2
    expected = _one_executor_whole(model, x, 256)[0]
    np.testing.assert_array_equal(model.predict(x, batch_size=256), expected)
    np.testing.assert_array_equal(model.predict(x, batch_size=256), expected)


def test_predict_is_the_same_when_the_caller_runs_every_batch() -> None:
    model, x = _wide_model(), _data()
    expected = model.predict(x, batch_size=256)
    with helper_busy():
        np.testing.assert_array_equal(model.predict(x, batch_size=256), expected)


def test_multi_output_predict_fills_every_output() -> None:
    model, x = _wide_model(outputs=2), _data(700)
    got = model.predict(x, batch_size=128)
    for a, b in zip(got, _one_executor_whole(model, x, 128), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_fake_device_predicts_the_same_bits_as_the_cpu() -> None:
    x = _data(600)
    outs = []
    for device in ("cpu", "fake"):
        with backend.use(device):
            model = _wide_model()
            outs.append(np.asarray(model.predict(x, batch_size=200)))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize(
    ("make", "batches", "expected"),
    [
        (lambda: _wide_model(), 2, 2),
        (lambda: _wide_model(), 1, 1),
        (
            lambda: Model((i := Input(shape=(5, 3))), layers.Dense(1)(layers.LSTM(4)(i))),
            3,
            1,
        ),
    ],
    ids=["dense", "one_batch", "recurrent"],
)
def test_side_by_side_only_with_several_batches_and_layers_that_allow_it(
    make, batches: int, expected: int
) -> None:
    assert len(loops._predict_executors(make(), side_by_side=batches > 1)) == expected


def test_predict_keeps_its_executors_until_a_weight_array_is_replaced() -> None:
    model, x = _wide_model(), _data(300)
    model.predict(x, batch_size=100)
    kept = model._state.inference
    model.predict(x, batch_size=100)
    assert model._state.inference is kept
    model.set_weights([w * 2 for w in model.get_weights()])
    doubled = model.predict(x, batch_size=100)
    np.testing.assert_array_equal(doubled, _one_executor_whole(model, x, 100)[0])
    kernel = model.layers[-1].weights[0]
    kernel._data = kernel._data * 3  # as FlatParams does when fit rebinds the weights
    tripled = model.predict(x, batch_size=100)
    assert model._state.inference is not kept
    np.testing.assert_array_equal(tripled, _one_executor_whole(model, x, 100)[0])


def test_after_fit_predict_runs_on_the_trainers_executors() -> None:
    model, x = _wide_model(), _data(300)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, np.zeros(300, dtype=np.int64), batch_size=100, epochs=1, verbose=0)
    got = model.predict(x, batch_size=100)
    trainer = model._state.trainer
    assert trainer is not None
    assert loops._predict_executors(model, True) == [trainer.test_exec, trainer.side_exec]
    np.testing.assert_array_equal(got, _one_executor_whole(model, x, 100)[0])
