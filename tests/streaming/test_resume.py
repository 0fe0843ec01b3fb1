"""A run stopped in the middle of an epoch continues from its checkpoint's position bit for bit:
the same batches (arrays or a stream), the same dropout masks, the same epoch metrics."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import callbacks as cb
from engine.config.data import DataSource
from engine.streaming import open_stream
from tests.streaming.files import SIGNATURE, arrays, write_parquet
from tests.streaming.test_fit_stream import SPEC, _model, _same

pytest.importorskip("pyarrow")
SPEC["compile"]["metrics"] = ["accuracy"]


class Snapshot(cb.Callback):
    """What a mid-epoch checkpoint holds, taken after `step` steps of epoch `epoch`."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__()
        self.at = (epoch, step)
        self.epoch = 0
        self.taken: tuple[list[np.ndarray], dict[str, Any]] | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch + 1) == self.at:
            state = copy.deepcopy(self.model.get_training_state())
            self.taken = ([w.copy() for w in self.model.get_weights()], state)


@pytest.mark.parametrize("streamed", [False, True])
def test_resume_mid_epoch_is_bit_identical(tmp_path: Path, streamed: bool) -> None:
    def data() -> dict[str, Any]:
        if streamed:
            source = DataSource(**write_parquet(tmp_path), shuffle_buffer=50)
            return {"x": open_stream(source, tmp_path, SIGNATURE)}
        x, y = arrays()
        return {"x": x, "y": y}

    whole = _model()
    snapshot = Snapshot(1, 4)
    history = whole.fit(**data(), epochs=3, batch_size=16, verbose=0, callbacks=[snapshot])
    assert snapshot.taken is not None
    weights, state = snapshot.taken
    assert state["epoch"] == 1 and state["position"]["step"] == 4

    resumed = _model()
    resumed.set_weights(weights)
    resumed.set_training_state(state)
    if streamed:
        (tmp_path / "parts").rename(tmp_path / "old")
    again = resumed.fit(**data(), epochs=3, batch_size=16, verbose=0, initial_epoch=1)
    assert _same(whole.get_weights(), resumed.get_weights())
    for key, values in again.history.items():
        assert values == history.history[key][1:], key


class Killed(Exception):
    """Stands for SIGKILL: the run ends without a word, keeping only what is on disk."""


def _killed() -> None:
    raise Killed


class KillAt(cb.Callback):
    """`kill()` after step `step` of epoch `epoch` (by default: raise Killed)."""

    def __init__(self, epoch: int, step: int, kill: Callable[[], None] = _killed) -> None:
        super().__init__()
        self.at, self.epoch, self.kill = (epoch, step), 0, kill

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch + 1) == self.at:
            self.kill()


def test_a_killed_streamed_run_resumes_from_its_step_checkpoint(tmp_path: Path) -> None:
    from engine.callbacks import StepCheckpointCallback
    from engine.saving import apply_artifact, latest_checkpoint

    source = DataSource(**write_parquet(tmp_path), shuffle_buffer=50)

    def stream() -> Any:
        return open_stream(source, tmp_path, SIGNATURE)

    whole = _model()
    history = whole.fit(stream(), epochs=3, batch_size=16, verbose=0)
    run_dir = tmp_path / "run"
    killed = _model()
    with pytest.raises(Killed):
        callbacks = [StepCheckpointCallback(run_dir, save_freq=4), KillAt(1, 14)]
        killed.fit(stream(), epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
    path, artifact = latest_checkpoint(run_dir)
    assert path.name == "epoch-000001-step-000000012.msz"
    resumed = _model()
    apply_artifact(resumed, artifact, str(path))
    epoch = artifact.training_state["epoch"]  # type: ignore[index]
    resumed.fit(
        stream(),
        epochs=3,
        batch_size=16,
        verbose=0,
        initial_epoch=epoch,
        callbacks=[StepCheckpointCallback(run_dir, save_freq=4)],
    )
    assert _same(whole.get_weights(), resumed.get_weights())
    assert resumed.history.history == history.history
