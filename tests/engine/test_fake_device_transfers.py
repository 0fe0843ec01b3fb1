"""A training step on the strict fake device copies no array between host and device.

fit uploads x and y once; after that a step must run on the device alone. The fake device
counts what a GPU would copy (`engine.fake_device.TRANSFERS`): arrays uploaded with
`xp.asarray`, arrays downloaded with `xp.asnumpy`, and single values read into Python
(`float`, `int`, `bool`), each a small copy and a sync on CuPy. Arrays: none per step. Values:
exactly the ones named below, so a new sync in the step fails here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from engine import backend, fake_device
from engine.build import from_spec

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
# Values read per step: the loss, for the NaN check and the running logs; with an Embedding,
# its id range check (min and max) and its gradient's scatter on the NumPy path (the number
# of levels, whether a tail is left).
LOSS_ONLY = {"to_host:float": 1}
WITH_EMBEDDING = {"to_host:float": 1, "to_host:int": 3, "to_host:bool": 1}


def _model(layers: list[dict[str, Any]]) -> Any:
    out = {"type": "Dense", "units": 1, "activation": "sigmoid"}
    return from_spec(
        {
            "model": {"type": "sequential", "layers": [*layers, out]},
            "compile": {"optimizer": "adam", "loss": "binary_crossentropy"},
        }
    )


def _transfers(model: Any, steps: int) -> Counter[str]:
    (t,) = model.inputs
    rng = np.random.default_rng(0)
    shape = (steps * BATCH, *t.shape[1:])
    x = rng.integers(0, 20, shape) if "int" in t.dtype else rng.random(shape, np.float32)
    y = rng.integers(0, 2, (len(x), 1)).astype(np.float32)
    fake_device.TRANSFERS.clear()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return Counter(fake_device.TRANSFERS)


@pytest.mark.parametrize(
    ("layers", "per_step"),
    [(DENSE, LOSS_ONLY), (LSTM, WITH_EMBEDDING), (CONV, LOSS_ONLY)],
    ids=["dense", "lstm", "conv"],
)
def test_a_training_step_copies_no_array(
    layers: list[dict[str, Any]], per_step: dict[str, int]
) -> None:
    with backend.use("fake"):
        model = _model(layers)
        _transfers(model, 1)  # warm-up: the planned step, buffers and optimizer slots
        two, five = _transfers(model, 2), _transfers(model, 5)
    per_three_steps = Counter({k: five[k] - two[k] for k in five | two})
    assert two["to_device"] == 2  # x and y, once per fit
    assert per_three_steps["to_device"] == 0
    assert per_three_steps["to_host:asnumpy"] == 0
    reads = {k: v / 3 for k, v in per_three_steps.items() if v and k != "to_host"}
    assert reads == per_step


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
