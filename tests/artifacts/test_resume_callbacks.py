"""A resumed run with stateful callbacks ends exactly like an uninterrupted one.

EarlyStopping (with restore_best_weights) and ReduceLROnPlateau carry counters, a best value,
best weights and a changed learning rate from epoch to epoch; the checkpoint must hold them as
they are after the epoch, whatever order the user lists the callbacks in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine import loading
from engine.build import from_spec
from engine.callbacks import CheckpointCallback, EarlyStopping, ReduceLROnPlateau
from tests.artifacts import train_script

EPOCHS = 30
CUT = 23  # after the first learning-rate cut, before the early stop at epoch 26


def _callbacks(run_dir: Path) -> list[Any]:
    # The checkpoint is listed first on purpose: it must still save the others' state.
    return [
        CheckpointCallback(run_dir),
        ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_delta=0.005),
        EarlyStopping(monitor="val_loss", patience=3, min_delta=0.005, restore_best_weights=True),
    ]


def _fit(run_dir: Path, epochs: int, resume: bool) -> Any:
    model = from_spec(train_script.SPEC)
    initial_epoch = loading.resume(model, run_dir) if resume else 0
    x, y = train_script.data()
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        initial_epoch=initial_epoch,
        callbacks=_callbacks(run_dir),
    )
    return model, history


def test_resume_with_stateful_callbacks_matches_uninterrupted(tmp_path: Path) -> None:
    full, full_history = _fit(tmp_path / "full", EPOCHS, resume=False)
    _fit(tmp_path / "cut", CUT, resume=False)
    resumed, resumed_history = _fit(tmp_path / "cut", EPOCHS, resume=True)
    rates = full_history.history["learning_rate"]
    assert rates[CUT - 1] < rates[0] and len(rates) < EPOCHS  # both callbacks acted
    assert resumed_history.history == full_history.history
    for a, b in zip(full.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.optimizer.learning_rate == full.optimizer.learning_rate
