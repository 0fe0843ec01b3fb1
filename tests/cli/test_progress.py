"""The training progress display: a rich bar on a terminal, one line per epoch elsewhere."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from engine.callbacks import Callback
from modelspec.progress import (
    EpochLines,
    RichProgress,
    format_logs,
    metrics_table,
    progress_callback,
)


def drive(progress: Callback, epochs: int, steps: int) -> None:
    progress.set_params({"epochs": epochs, "steps": steps})
    progress.on_train_begin()
    for epoch in range(epochs):
        progress.on_epoch_begin(epoch)
        for step in range(steps):
            progress.on_train_batch_end(step, {"loss": 1.0 / (step + 1)})
        progress.on_epoch_end(epoch, {"loss": 0.25, "accuracy": 0.875, "val_loss": 0.5})
    progress.on_train_end()


@pytest.mark.parametrize(
    ("terminal", "ci", "verbose", "bar"),
    [
        (True, False, 1, True),
        (True, False, "auto", True),
        (True, True, 1, False),
        (False, False, 1, False),
        (True, False, 2, False),
    ],
)
def test_bar_on_a_terminal_lines_elsewhere(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, ci: bool, verbose: object, bar: bool
) -> None:
    for name in ("CI", "GITHUB_ACTIONS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    if ci:
        monkeypatch.setenv("CI", "true")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=120)
    progress = progress_callback(console, epochs=2, steps=3, verbose=verbose)
    assert isinstance(progress, RichProgress if bar else EpochLines)
    drive(progress, epochs=2, steps=3)
    text = buffer.getvalue()
    line = "loss: 0.2500 - accuracy: 0.8750 - val_loss: 0.5000"
    assert line in text
    assert ("━" in text) == bar
    if not bar:
        assert text.splitlines() == [f"Epoch 1/2 - {line}", f"Epoch 2/2 - {line}"]


def test_verbose_zero_shows_nothing() -> None:
    assert progress_callback(Console(file=io.StringIO()), epochs=2, steps=3, verbose=0) is None


def test_plain_lines_add_no_per_step_hook() -> None:
    """The training loop skips per-step callback work unless a callback overrides a step hook."""
    assert EpochLines.on_train_batch_end is Callback.on_train_batch_end
    assert RichProgress.on_train_batch_end is not Callback.on_train_batch_end


def test_format_logs_keeps_order_and_handles_odd_values() -> None:
    assert format_logs({"loss": 0.5, "acc": float("nan"), "big": 1e9}) == (
        "loss: 0.5000 - acc: nan - big: 1e+09"
    )


def test_metrics_table_has_a_column_per_split_with_values() -> None:
    results = {"train": {"loss": 0.5, "accuracy": 0.9}, "validation": {}, "test": {"loss": 0.75}}
    buffer = io.StringIO()
    Console(file=buffer, width=80).print(metrics_table(results))
    text = buffer.getvalue()
    assert "train" in text and "test" in text and "validation" not in text
    assert "0.7500" in text and "0.9000" in text


LONG_LOGS = {
    "loss": 0.123456,
    "accuracy": 0.875,
    "precision": 0.8125,
    "recall": 0.75,
    "val_loss": 0.25,
    "val_accuracy": 0.8,
    "val_precision": 0.7,
    "val_recall": 0.65,
}


def test_finished_epoch_at_80_columns_is_never_cut_mid_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CI", "GITHUB_ACTIONS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80)
    progress = progress_callback(console, epochs=2, steps=3, verbose=1)
    assert isinstance(progress, RichProgress)
    progress.set_params({"epochs": 2, "steps": 3})
    progress.on_train_begin()
    for epoch in range(2):
        progress.on_epoch_begin(epoch)
        progress.on_train_batch_end(0, LONG_LOGS)
        progress.on_epoch_end(epoch, LONG_LOGS)
    progress.on_train_end()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", buffer.getvalue())
    lines = [line for line in text.splitlines() if line.strip()]
    for epoch in (1, 2):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"Epoch {epoch}/2 - "))
        block = " ".join(lines[start : start + 3])
        for name, value in LONG_LOGS.items():
            assert f"{name}: {value:.4f}" in block
    assert all(len(line) <= 80 for line in lines)


def _bar_logs(hook: str) -> str:
    """The logs beside the bar after two quick steps fed through one of the two step hooks."""
    progress = RichProgress(Console(file=io.StringIO(), force_terminal=True), epochs=1, steps=4)
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    for step in range(2):
        logs = {"loss": 1.0 / (step + 1)}
        if hook == "lazy":
            progress.on_train_batch_end_lazy(step, lambda logs=logs: logs)
        else:
            progress.on_train_batch_end(step, logs)
    assert progress._progress is not None
    shown = str(progress._progress.tasks[0].fields["logs"])
    progress.on_train_end()
    return shown


def test_both_step_hooks_draw_the_bar_alike() -> None:
    """Keras's `on_train_batch_end` and fit's lazy hook are one path: same bar, same logs."""
    assert _bar_logs("keras") == _bar_logs("lazy") == "loss: 1.0000"
