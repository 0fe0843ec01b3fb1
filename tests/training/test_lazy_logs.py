"""A step's logs (every metric's result) are computed only when a callback reads them.

The progress printers redraw a few times a second; computing the logs on every step for them
cost each step a float of every metric (on a GPU, a device sync each). Callbacks that read
every step must still see Keras's running logs, the same dict for all of them.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from engine import Input, Model, layers
from engine.callbacks import Callback, ProgressPrinter
from engine.layers.base import clear_session
from engine.train import tracker as tracker_module

STEPS = 6


class _Reader(Callback):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen.append(logs)


def _fit(monkeypatch: pytest.MonkeyPatch, callbacks: list[Callback], verbose: int) -> int:
    """Fit two epochs; returns how many times the tracker's logs were computed."""
    clear_session()
    calls = []
    real = tracker_module.Tracker.logs

    def counted(self: tracker_module.Tracker) -> dict[str, float]:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(tracker_module.Tracker, "logs", counted)
    x_in = Input((3,))
    model = Model(x_in, layers.Dense(2, activation="softmax")(x_in))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((4 * STEPS, 3), dtype=np.float32)
    y = rng.integers(0, 2, 4 * STEPS)
    model.fit(x, y, batch_size=4, epochs=2, verbose=verbose, callbacks=callbacks)
    return len(calls)


def test_a_quiet_progress_bar_computes_logs_once_per_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ProgressPrinter, "stream", property(lambda self: io.StringIO()))
    monkeypatch.setattr(ProgressPrinter, "__init__", _slow_printer_init)
    assert _fit(monkeypatch, [], verbose=1) == 2


def _slow_printer_init(self: ProgressPrinter, verbose: int = 1, **_: Any) -> None:
    self.verbose, self._stream, self.interval = verbose, None, 1e9
    self._start = self._last = 0.0


def test_callbacks_reading_every_step_see_the_running_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = _Reader(), _Reader()
    assert _fit(monkeypatch, [first, second], verbose=0) == 2 * STEPS + 2
    assert len(first.seen) == 2 * STEPS
    assert all(a is b for a, b in zip(first.seen, second.seen, strict=True))
    assert set(first.seen[0]) == {"loss", "accuracy"}
    assert all(0.0 <= logs["accuracy"] <= 1.0 for logs in first.seen)
