"""Where a run is inside an epoch, saved with a checkpoint and restored on resume: the steps
done, the dropout generator's state and the epoch's running loss and metric sums. With these
(and the epoch's batch order, which depends only on the seed and the epoch) a run killed in the
middle of an epoch continues bit-identically from its last checkpoint."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.train.tracker import Tracker


def capture(
    epoch: int, step: int, generator: np.random.Generator, tracker: Tracker
) -> dict[str, Any]:
    """The position after `step` steps of epoch `epoch`, as JSON-ready data."""
    metrics = tracker.all_metrics()
    return {
        "epoch": epoch,
        "step": step,
        "rng": generator.bit_generator.state,
        "count": tracker.count,
        "loss": tracker.loss,
        "per_output": list(tracker.per_output),
        "metrics": [
            {k: np.asarray(getattr(m, k)).tolist() for k in m.additive_state} for m in metrics
        ],
    }


def restore(position: dict[str, Any], generator: np.random.Generator, tracker: Tracker) -> int:
    """Put the generator back, and the running sums once the tracker's metrics exist (they are
    resolved on the first step); returns the step to continue from."""
    generator.bit_generator.state = position["rng"]
    tracker.resumed = functools.partial(_put_back, position)
    tracker.reset()
    return int(position["step"])


def _put_back(position: dict[str, Any], tracker: Tracker) -> None:
    tracker.count = int(position["count"])
    tracker.loss = float(position["loss"])
    tracker.per_output = [float(v) for v in position["per_output"]]
    metrics = tracker.all_metrics()
    for m, saved in zip(metrics, position["metrics"], strict=True):
        for k, value in saved.items():
            old = getattr(m, k)
            kind = np.asarray(old).dtype
            setattr(m, k, np.asarray(value, kind) if np.ndim(old) else type(old)(value))


@dataclass
class Live:
    """The running epoch's position, read when a checkpoint is taken (None between epochs)."""

    epoch: int
    generator: np.random.Generator
    tracker: Tracker
    step: int = 0

    def __call__(self) -> dict[str, Any] | None:
        if not self.step:
            return None
        return capture(self.epoch, self.step, self.generator, self.tracker)


def resume_step(
    saved: dict[str, Any] | None, epoch: int, generator: np.random.Generator, tracker: Tracker
) -> int:
    """The step to start epoch `epoch` at: a saved position of this epoch restored, else 0."""
    if saved is None or int(saved.get("epoch", -1)) != epoch:
        return 0
    return restore(saved, generator, tracker)
