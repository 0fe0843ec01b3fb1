"""An output mask weighs the loss as Keras 3 does: padded timesteps count for nothing.

Keras's `apply_mask` (keras/src/losses/loss.py) turns the mask into weights of total / valid
on unmasked entries and 0 elsewhere, so a "sum_over_batch_size" loss is the mean over the
unmasked entries only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.build import from_spec

SPEC: dict[str, Any] = {
    "seed": 3,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [6], "dtype": "int32"},
            {"type": "Embedding", "input_dim": 9, "output_dim": 4, "mask_zero": True},
            {"type": "LSTM", "units": 5, "return_sequences": True},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    },
    "compile": {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy"},
}


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 9, (8, 6)).astype(np.int32)
    lengths = np.array([6, 5, 4, 3, 2, 6, 1, 4])
    for row, n in enumerate(lengths):
        x[row, n:] = 0  # right padding
    y = rng.integers(0, 3, (8, 6)).astype(np.int32)
    return x, y


def test_masked_loss_is_the_mean_over_unmasked_steps() -> None:
    model = from_spec(SPEC)
    x, y = _data()
    probs = model.predict(x).astype(np.float64)
    picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    per_step = -np.log(np.clip(picked, 1e-7, 1 - 1e-7))
    valid = x != 0
    expected = per_step[valid].mean()
    assert not np.isclose(expected, per_step.mean())  # the mask must make a difference
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), expected, rtol=1e-5)


def test_labels_under_the_mask_do_not_change_training() -> None:
    x, y = _data()
    other = y.copy()
    other[x == 0] = (other[x == 0] + 1) % 3
    runs = []
    for labels in (y, other):
        model = from_spec(SPEC)
        history = model.fit(x, labels, epochs=2, batch_size=4, shuffle=False, verbose=0)
        runs.append((history.history["loss"], model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_masked_loss_on_the_strict_fake_device_matches_the_cpu() -> None:
    from engine import backend

    x, y = _data()
    results = []
    for device in ("cpu", "fake"):
        with backend.use(device):
            model = from_spec(SPEC)
            history = model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
            results.append((history.history["loss"], [w.numpy() for w in model.weights]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_array_equal(a, b)
