"""How training looks in a terminal: a rich progress bar per epoch, and the final metrics table.

The engine never imports rich; `train` hands the callback of `progress_callback` to `fit` like any
other Keras-style callback, and prints `metrics_table` when the run ends.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from engine.callbacks import Callback, ReadLogs

_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "NO_COLOR")
# rich redraws a live bar 10 times a second: fresher logs than that would never be seen.
LOGS_INTERVAL_S = 0.1


def plain_output(console: Console) -> bool:
    """True in CI or when output is not a terminal: print lines, never redraw a bar."""
    return not console.is_terminal or any(os.environ.get(name) for name in _CI_VARIABLES)


def format_logs(logs: Mapping[str, Any]) -> str:
    """`loss: 0.4213 - accuracy: 0.9000`, Keras's way of showing a line of metrics."""
    return " - ".join(f"{name}: {_number(value)}" for name, value in logs.items())


def wrap_line(label: str, logs: Mapping[str, Any], width: int) -> str:
    """`label - name: value - ...` broken only between metrics, never inside a number."""
    items = [f"{name}: {_number(value)}" for name, value in logs.items()]
    lines = [label]
    for item in items:
        if len(lines[-1]) + 3 + len(item) <= width:
            lines[-1] += f" - {item}"
        else:
            lines.append(f"  {item}")
    return "\n".join(lines)


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4f}" if math.isfinite(number) and abs(number) < 1e5 else f"{number:.4g}"


class EpochLines(Callback):
    """A Keras-style callback printing one line per epoch: for CI, pipes and `fit.verbose: 2`.

    It has no per-step hook, so the training loop skips per-step callback work entirely.
    """

    def __init__(self, console: Console, epochs: int) -> None:
        self.console = console
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        line = f"{self.label(epoch)} - {format_logs(logs or {})}"
        self.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def label(self, epoch: int) -> str:
        return f"Epoch {epoch + 1}/{self.epochs}"


class RichProgress(EpochLines):
    """One rich progress bar per epoch with steps, time left and the running loss and metrics."""

    def __init__(self, console: Console, epochs: int, steps: int) -> None:
        super().__init__(console, epochs)
        self.steps = max(1, steps)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._logs_at = -math.inf

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        self.steps = int(params.get("steps") or self.steps)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[logs]}", table_column=Column(no_wrap=True)),
            console=self.console,
        )
        self._progress.start()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(self.label(epoch), total=self.steps, logs="")

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Keras's hook, for a caller holding the logs: drawn as fit's steps are."""
        self.on_train_batch_end_lazy(batch, lambda: dict(logs or {}))

    def on_train_batch_end_lazy(self, batch: int, read_logs: ReadLogs) -> None:
        """The bar moves every step; the logs beside it are read at most every
        LOGS_INTERVAL_S, so most steps compute no metric results."""
        if self._progress is None or self._task is None:
            return
        fields: dict[str, Any] = {}
        now = time.perf_counter()
        if now - self._logs_at >= LOGS_INTERVAL_S:
            self._logs_at = now
            fields["logs"] = format_logs(read_logs())
        self._progress.update(self._task, completed=min(batch + 1, self.steps), **fields)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """The finished epoch leaves the live bar and stays as a whole line, as Keras's does."""
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        line = wrap_line(self.label(epoch), logs or {}, self.console.width)
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def progress_callback(console: Console, epochs: int, steps: int, verbose: Any) -> Callback | None:
    """What `fit.verbose` asks for: nothing (0), a bar (1, on a terminal) or epoch lines."""
    if verbose == 0:
        return None
    if verbose == 2 or plain_output(console):
        return EpochLines(console, epochs)
    return RichProgress(console, epochs, steps)


def metrics_table(
    results: Mapping[str, Mapping[str, float]], title: str | None = "Final metrics"
) -> Table:
    """One row per metric, one column per data split (train, validation, test)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    splits = [split for split, values in results.items() if values]
    for split in splits:
        table.add_column(split, justify="right")
    names = list(dict.fromkeys(name for split in splits for name in results[split]))
    for name in names:
        table.add_row(name, *(_cell(results[split].get(name)) for split in splits))
    return table


def _cell(value: float | None) -> str:
    return "" if value is None else _number(value)
