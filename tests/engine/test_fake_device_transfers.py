"""A training step on the strict fake device copies nothing between host and device.

fit uploads x and y once; after that a step must run on the device alone. The fake device
counts what a GPU would copy (`engine.fake_device.TRANSFERS`): arrays uploaded with
`xp.asarray`, arrays downloaded with `xp.asnumpy`, and single values read into Python
(`float`, `int`, `bool`), each a small copy and a sync on CuPy. Per step: none at all. The
loss stays on the device (a running sum), and the NaN check and the range checks of labels
and Embedding ids are read only at the epoch's end or when a callback reads the logs; the
errors they raise still name the epoch and step.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from engine import backend, fake_device
from engine.build import from_spec
from engine.callbacks import TerminateOnNaN
from engine.layers.embedding import Embedding
from engine.train.errors import TrainingError

BATCH = 8
DENSE = [{"type": "Input", "shape": [6]}, {"type": "Dense", "units": 5, "activation": "relu"}]
LSTM = [
    {"type": "Input", "shape": [7], "dtype": "int32"},
    {"type": "Embedding", "input_dim": 20, "output_dim": 4},
    {"type": "LSTM", "units": 5},
]
CONV = [
    {"type": "Input", "shape": [8, 8, 2]},
    {"type": "Conv2D", "filters": 3, "kernel_size": 3, "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "BatchNormalization"},
    {"type": "Flatten"},
]
CLASSES = 3


def _model(layers: list[dict[str, Any]]) -> Any:
    out = {"type": "Dense", "units": CLASSES, "activation": "softmax"}
    return from_spec(
        {
            "model": {"type": "sequential", "layers": [*layers, out]},
            "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
        }
    )


def _data(model: Any, steps: int) -> tuple[np.ndarray, np.ndarray]:
    (t,) = model.inputs
    rng = np.random.default_rng(0)
    shape = (steps * BATCH, *t.shape[1:])
    x = rng.integers(0, 20, shape) if "int" in t.dtype else rng.random(shape, np.float32)
    return x, rng.integers(0, CLASSES, (len(x), 1))


def _transfers(model: Any, steps: int) -> Counter[str]:
    x, y = _data(model, steps)
    fake_device.TRANSFERS.clear()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return Counter(fake_device.TRANSFERS)


@pytest.mark.parametrize("layers", [DENSE, LSTM, CONV], ids=["dense", "lstm", "conv"])
def test_a_training_step_copies_and_reads_nothing(layers: list[dict[str, Any]]) -> None:
    with backend.use("fake"):
        model = _model(layers)
        _transfers(model, 1)  # warm-up: the planned step, buffers and optimizer slots
        two, five = _transfers(model, 2), _transfers(model, 5)
    per_three_steps = Counter({k: five[k] - two[k] for k in five | two})
    assert two["to_device"] == 2  # x and y, once per fit
    assert two["to_host"] > 0  # the epoch's end reads the logs and the checks
    assert {k: v for k, v in per_three_steps.items() if v} == {}


def test_a_nan_loss_on_the_device_names_its_epoch_and_step() -> None:
    with backend.use("fake"), np.errstate(all="ignore"):
        model = _model(DENSE)
        x, y = _data(model, 6)
        x[4 * BATCH + 1, 0] = np.nan
        with pytest.raises(TrainingError, match=r"loss became NaN at epoch 1, step 5$"):
            model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False)


def test_terminate_on_nan_stops_a_device_run_quietly() -> None:
    with backend.use("fake"), np.errstate(all="ignore"):
        model = _model(DENSE)
        x, y = _data(model, 6)
        x[2 * BATCH, 0] = np.inf
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=3,
            verbose=0,
            shuffle=False,
            callbacks=[TerminateOnNaN()],
        )
    assert model._state.epoch == 1
    assert not np.isfinite(history.history["loss"][-1])


@pytest.mark.parametrize(
    ("layers", "bad", "message"),
    [
        (
            DENSE,
            "y",
            r"class ids must be in \[0, 3\); got values from 0 to 7 \(in epoch 1, step 3\)",
        ),
        (LSTM, "x", r"Embedding 'embedding.*' got id 25; .* \(in epoch 1, step 2\)"),
    ],
    ids=["label", "embedding id"],
)
def test_a_bad_value_on_the_device_gives_the_clear_error(
    layers: list[dict[str, Any]], bad: str, message: str
) -> None:
    with backend.use("fake"):
        model = _model(layers)
        x, y = _data(model, 4)
        if bad == "y":
            y[2 * BATCH + 3] = 7
        else:
            x[BATCH + 2, 1] = 25
        with pytest.raises(ValueError, match=message):
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)


def test_the_counter_sees_uploads_downloads_and_reads() -> None:
    fake_device.TRANSFERS.clear()
    on_device = fake_device.xp.asarray(np.arange(3.0))
    fake_device.xp.asarray(on_device)  # already there: no copy
    fake_device.asnumpy(on_device)
    float(on_device.sum())
    assert (
        Counter({"to_device": 1, "to_host": 2, "to_host:asnumpy": 1, "to_host:float": 1})
        == fake_device.TRANSFERS
    )


def test_the_counter_sees_results_sized_by_the_data() -> None:
    xp = fake_device.xp
    x, picks = xp.asarray(np.arange(6.0)), xp.asarray(np.array([0, 2]))
    fake_device.TRANSFERS.clear()
    x[x > 2.0]
    xp.flatnonzero(x)
    x.nonzero()
    xp.argwhere(x)
    x[1:3], x[picks], x[(picks,)]  # sizes known without looking at the values
    assert Counter({"to_host": 4, "to_host:size": 4}) == fake_device.TRANSFERS


def test_the_device_sum_by_id_reads_nothing_back() -> None:
    """The Embedding gradient's sum of rows by id: the CPU's method (boolean masks,
    flatnonzero) would count as size reads above; the device's is one scatter-add."""
    xp = fake_device.xp
    ids = xp.asarray(np.array([1, 1, 3]))
    rows, out = xp.asarray(np.ones((3, 2))), xp.asarray(np.full((4, 2), np.nan))
    fake_device.TRANSFERS.clear()
    fake_device.BACKEND.sum_rows(ids, rows, out)
    assert not fake_device.TRANSFERS
    np.testing.assert_array_equal(xp.asnumpy(out)[:, 0], [0, 2, 0, 1])


def test_a_bad_label_in_validation_data_names_the_evaluation() -> None:
    with backend.use("fake"):
        model = _model(DENSE)
        x, y = _data(model, 4)
        bad = y.copy()
        bad[5] = -1
        with pytest.raises(ValueError, match=r"got values from -1 to 2 \(in evaluation\)"):
            model.fit(x, y, validation_data=(x, bad), batch_size=BATCH, epochs=1, verbose=0)


def test_an_eager_embedding_call_on_the_device_raises_at_once() -> None:
    with backend.use("fake"):
        layer = Embedding(5, 2)
        ids = fake_device.xp.asarray(np.array([[1, 5]]))
        model = _model(LSTM)
        model.fit(*_data(model, 1), batch_size=BATCH, verbose=0)  # no step named afterwards
        with pytest.raises(ValueError, match=r"got id 5; ids must be in \[0, input_dim=5\)$"):
            layer(ids)
