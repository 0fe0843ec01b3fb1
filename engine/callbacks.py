"""Keras's training callbacks (History, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
CSVLogger, TerminateOnNaN; TensorBoard lives in engine/tensorboard.py), the run folder's
CheckpointCallback, the callbacks of a spec's entries, and the plain-text progress printer of
verbose 1/2.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TextIO

import numpy as np

from engine.config.callbacks import Mode
from engine.saving import (
    checkpoint_position,
    history_of,
    list_checkpoints,
    model_artifact,
    read_artifact,
    write_checkpoint,
)
from engine.train.position import saved_step

Logs = dict[str, float]
# Computes a step's running logs: every metric's result, a host copy each on a GPU.
ReadLogs = Callable[[], Logs]

# Metrics that get better as they grow, for mode="auto" (Keras asks the metric's direction).
_UP_METRICS = ("accuracy", "acc", "auc", "precision", "recall")


class Callback:
    """Hooks the fit loop calls; `model` and `params` are set before training starts."""

    model: Any = None
    params: dict[str, Any]
    # Callbacks that save training state run after the others each epoch, so what they save
    # already holds this epoch's EarlyStopping counters and learning-rate changes.
    saves_state: ClassVar[bool] = False

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch (also after an early stop or Ctrl-C)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called with the epoch's training and validation logs."""

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before each training step; defining it costs a call per step."""

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after each step with the running means so far."""

    def on_train_batch_end_lazy(self, batch: int, read_logs: ReadLogs) -> None:
        """What fit calls after each step. Computing the logs costs every metric's result (a
        device sync on a GPU), so a callback that reads them only now and then overrides this
        and calls `read_logs()` only then; by default it hands them to `on_train_batch_end`,
        if the callback has one."""
        if type(self).on_train_batch_end is not Callback.on_train_batch_end:
            self.on_train_batch_end(batch, read_logs())

    def get_state(self) -> dict[str, Any]:
        """What this callback must remember across a resumed run."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore `get_state()`'s output."""


class History(Callback):
    """Records every epoch's logs: `history.history["loss"]`, `["val_accuracy"]`, ..."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.interrupted = False
        self.stop_signal: int | None = None  # SIGINT or SIGTERM when one stopped the run

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _direction(monitor: str, mode: Mode) -> Literal["min", "max"]:
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if name in _UP_METRICS or name.endswith(_UP_METRICS) else "min"


class _Monitor(Callback):
    """Shared logic of callbacks that watch one logged value for improvement."""

    def __init__(self, monitor: str, mode: Mode, min_delta: float, verbose: int = 0) -> None:
        self.verbose = verbose
        self.monitor = monitor
        self.mode = mode
        self.direction = _direction(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = math.inf if self.direction == "min" else -math.inf

    def say(self, message: str) -> None:
        """Keras's verbose=1 messages, on standard output."""
        if self.verbose:
            sys.stdout.write(message + "\n")

    def improved(self, current: float, reference: float) -> bool:
        if self.direction == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def value(self, logs: Logs | None) -> float | None:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not logged; "
                f"the logs have {', '.join(logs)}",
                stacklevel=3,
            )
        return value


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs (Keras 3)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: Mode = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta, verbose)
        self.patience = patience
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.stopped_epoch = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = self.value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self.improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch > 0:
            self.say(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            self.say(
                f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}."
            )
            self.model.set_weights(self.best_weights)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
        }
        if self.best_weights is not None:
            state["best_weights"] = list(self.best_weights)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        if "best_weights" in state:
            self.best_weights = [np.array(w) for w in state["best_weights"]]


class ModelCheckpoint(_Monitor):
    """Save the model after each epoch (or only when `monitor` improves) with `model.save`.

    `filepath` may hold `{epoch}` and log keys as format fields: "ckpt/{epoch:02d}-{val_loss:.2f}".
    """

    def __init__(
        self,
        filepath: str | Path,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        mode: Mode = "auto",
    ) -> None:
        super().__init__(monitor, mode, 0.0, verbose)
        self.filepath = str(filepath)
        self.save_best_only = save_best_only

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = self.value(logs)
            if current is None:
                return
            if not self.improved(current, self.best):
                self.say(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            self.say(
                f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                f"{current:.5f}, saving model to {path}"
            )
            self.best = current
        else:
            self.say(f"Epoch {epoch + 1}: saving model to {path}")
        self.model.save(path)

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])


def set_learning_rate(optimizer: Any, value: float) -> None:
    """Change a constant learning rate (a schedule cannot be changed, as in Keras)."""
    rate = optimizer.config.learning_rate
    if not isinstance(rate, (int, float)):
        raise TypeError("the learning rate is a schedule; ReduceLROnPlateau needs a constant one")
    optimizer.config.learning_rate = float(value)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` after `patience` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: Mode = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau needs factor < 1; got {factor}")
        super().__init__(monitor, mode, min_delta, verbose)
        self.factor = factor
        self.patience = patience
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self.value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    set_learning_rate(optimizer, new)
                    self.say(
                        f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}."
                    )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.best = float(state["best"])
        self.cooldown_counter = int(state["cooldown_counter"])


class CSVLogger(Callback):
    """Write one CSV row per epoch: `epoch` then the log keys in sorted order (Keras's layout)."""

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False) -> None:
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._keys = None
        if not self.append:
            self.filename.parent.mkdir(parents=True, exist_ok=True)
            self.filename.write_text("")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        write_header = self._keys is None and (
            not self.filename.exists() or self.filename.stat().st_size == 0
        )
        if self._keys is None:
            self._keys = sorted(logs)
        with self.filename.open("a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator, lineterminator="\n")
            if write_header:
                writer.writerow(["epoch", *self._keys])
            writer.writerow([epoch, *(logs.get(k, "NA") for k in self._keys)])


class TerminateOnNaN(Callback):
    """Stop training (without an error) as soon as the running loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.model.stop_training = True


def _format_logs(logs: Logs) -> str:
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items())


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(round(seconds))}s"


class ProgressPrinter(Callback):
    """Keras's plain-text progress: verbose 1 a bar with steps, ETA and running logs; 2 a line
    per epoch. Bars are redrawn at most every `interval` seconds, so a step costs no printing."""

    BAR: ClassVar[int] = 30

    def __init__(self, verbose: int = 1, stream: TextIO | None = None, interval: float = 0.1):
        self.verbose = verbose
        self._stream = stream
        self.interval = interval
        self._start = 0.0
        self._last = 0.0

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
        self.stream.flush()
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Keras's hook, for a caller holding the logs: drawn as fit's steps are."""
        self.on_train_batch_end_lazy(batch, lambda: logs or {})

    def on_train_batch_end_lazy(self, batch: int, read_logs: ReadLogs) -> None:
        if self._due():
            self._draw(batch, read_logs())

    def _due(self) -> bool:
        """Whether the bar is to be redrawn now (verbose 1, `interval` since the last time)."""
        now = time.perf_counter()
        if self.verbose != 1 or now - self._last < self.interval:
            return False
        self._last = now
        return True

    def _draw(self, batch: int, logs: Logs) -> None:
        now = self._last
        steps = self.params["steps"]
        done = batch + 1
        eta = (now - self._start) / done * (steps - done)
        self.stream.write(f"\r{self._bar(done, steps)} - ETA: {_format_time(eta)}")
        self.stream.write(_format_logs(logs))
        self.stream.flush()

    def _bar(self, done: int, steps: int) -> str:
        filled = int(self.BAR * done / max(steps, 1))
        arrow = ">" if filled < self.BAR else ""
        body = ("=" * filled + arrow).ljust(self.BAR, ".")[: self.BAR]
        width = len(str(steps))
        return f"{done:>{width}}/{steps} [{body}]"

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        steps = self.params["steps"]
        elapsed = time.perf_counter() - self._start
        per_step = f"{elapsed / max(steps, 1) * 1000:.0f}ms/step"
        if self.verbose == 1:
            head = f"\r{self._bar(steps, steps)} - {_format_time(elapsed)} {per_step}"
        else:
            head = f"{steps}/{steps} - {_format_time(elapsed)} - {per_step}"
        self.stream.write(head + _format_logs(logs or {}) + "\n")
        self.stream.flush()


class CallbackList:
    """The callbacks of one fit: the progress printer first, the user's, History last."""

    def __init__(
        self,
        callbacks: Sequence[Callback],
        model: Any,
        history: History,
        verbose: int,
        params: dict[str, Any],
    ) -> None:
        progress: list[Callback] = [ProgressPrinter(verbose)] if verbose else []
        others = [c for c in callbacks if not c.saves_state]
        savers = [c for c in callbacks if c.saves_state]
        self.callbacks = [*progress, *others, *savers, history]
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)

    def _key(self, index: int) -> str:
        return f"{index}:{type(self.callbacks[index]).__name__}"

    def get_state(self) -> dict[str, Any]:
        return {self._key(i): c.get_state() for i, c in enumerate(self.callbacks) if c.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        for i, c in enumerate(self.callbacks):
            if self._key(i) in state:
                c.set_state(state[self._key(i)])

    def on_train_begin(self) -> None:
        for c in self.callbacks:
            c.on_train_begin()

    def on_train_end(self) -> None:
        for c in self.callbacks:
            c.on_train_end()

    def on_epoch_begin(self, epoch: int) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for c in self.callbacks:
            c.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int) -> None:
        for c in self.callbacks:
            c.on_train_batch_begin(batch)

    def on_train_batch_end(self, batch: int, read_logs: ReadLogs) -> None:
        """Each callback's batch hook; the logs are computed once, if any callback reads them,
        and every reader gets the same dict."""
        read_once = functools.cache(read_logs)
        for c in self.callbacks:
            c.on_train_batch_end_lazy(batch, read_once)


def __getattr__(name: str) -> Any:
    """`callbacks.TensorBoard` (Keras's `tf.keras.callbacks.TensorBoard`), imported on first use."""
    if name == "TensorBoard":
        # engine.tensorboard (and tensorboardX) load only when a TensorBoard is asked for
        from engine.tensorboard import TensorBoard

        return TensorBoard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CheckpointCallback(Callback):
    """Write a complete, atomic checkpoint of the model after every epoch into `run_dir`.

    A checkpoint holds the History of the whole run; when fit resumes at epoch k > 0 the
    History of the first k epochs comes from the run's checkpoint, and at the end of training
    `model.history` is made whole again, so a resumed run reports the same History as an
    uninterrupted one. `extras` go to model_artifact (spec, label_maps, ...).

    Data-parallel, every rank needs one (a position inside an epoch is gathered from all
    ranks, a collective) and only the rank made with `writes=True` writes files.
    """

    saves_state = True

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        keep: int = 2,
        *,
        writes: bool = True,
        **extras: Any,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.keep = keep
        self.writes = writes
        self.extras = extras
        self.earlier: dict[str, list[float]] = {}
        self._first_epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self._first_epoch is None and self.writes:
            self._first_epoch = epoch
            saved = getattr(getattr(self.model, "_state", None), "position", None)
            step = saved_step(saved, epoch)
            self.earlier = self._history_before(epoch, step)
            for stale in list_checkpoints(self.run_dir):
                if checkpoint_position(stale) > (epoch, step):
                    stale.unlink()

    def _history_before(self, epoch: int, step: int) -> dict[str, list[float]]:
        """The History of epochs [0, epoch) from the checkpoint fit resumed from, if any."""
        taken = [
            p for p in list_checkpoints(self.run_dir) if checkpoint_position(p) == (epoch, step)
        ]
        if epoch == 0 or not taken:
            return {}
        return {k: v[:epoch] for k, v in read_artifact(taken[-1]).history.items()}

    def _whole_history(self, logs: Mapping[str, float] | None) -> dict[str, list[float]]:
        current = history_of(self.model)
        # Keys in the order fit logs them (loss first), not the checkpoint's sorted JSON order.
        order = [*current, *(logs or {}), *self.earlier]
        whole = {k: list(self.earlier.get(k, [])) for k in dict.fromkeys(order)}
        for key, values in current.items():
            whole[key].extend(values)
        for key, value in (logs or {}).items():
            whole[key].append(float(value))
        return whole

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if not self.writes:
            return
        history = self._whole_history(logs)
        state = dict(self.model.get_training_state())
        state.update(epoch=epoch + 1, history=history)
        artifact = model_artifact(self.model, training_state=state, history=history, **self.extras)
        write_checkpoint(self.run_dir, epoch, artifact, keep=self.keep)

    def checkpoint_position(self) -> None:
        """A checkpoint of the position inside the current epoch (a step checkpoint)."""
        state = dict(self.model.get_training_state())
        if state.get("position") is None or not self.writes:
            return  # between epochs, or a data-parallel rank that does not write
        history = self._whole_history(None)
        state["history"] = history
        artifact = model_artifact(self.model, training_state=state, history=history, **self.extras)
        step = int(state["position"]["step"])
        write_checkpoint(self.run_dir, state["epoch"], artifact, keep=self.keep, step=step)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        """Checkpoint where a signal (SIGTERM, Ctrl-C) stopped the run, at the batch boundary
        it stopped at, so that it resumes there; and make a resumed run's History whole."""
        if getattr(getattr(self.model, "history", None), "interrupted", False):
            self.checkpoint_position()
        whole = self._whole_history(None)
        history = getattr(self.model, "history", None)
        if self.earlier and history is not None and hasattr(history, "history"):
            history.history = whole
            history.epoch = list(range(len(next(iter(whole.values()), []))))


class StepCheckpointCallback(CheckpointCallback):
    """CheckpointCallback that also checkpoints every `save_freq` steps inside an epoch (a
    long streamed epoch); kept apart so that runs without it pay for no per-step hook."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        save_freq: int,
        keep: int = 2,
        *,
        writes: bool = True,
        **extras: Any,
    ) -> None:
        super().__init__(run_dir, keep, writes=writes, **extras)
        self.save_freq = save_freq

    def on_train_batch_end_lazy(self, batch: int, read_logs: ReadLogs) -> None:
        self.on_train_batch_end(batch)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        """Every `save_freq` steps (Keras's ModelCheckpoint argument), a checkpoint of the
        position inside the epoch, so a killed run loses at most that many steps."""
        if self.save_freq and (batch + 1) % self.save_freq == 0:
            self.checkpoint_position()
