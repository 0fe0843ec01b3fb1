"""Where a run is inside an epoch, saved with a checkpoint and restored on resume: the steps
done, the dropout generator's state and the epoch's running loss and metric sums. With these
(and the epoch's batch order, which depends only on the seed and the epoch) a run killed in the
middle of an epoch continues bit-identically from its last checkpoint.

A data-parallel run saves every rank's position (each has its own generator and running sums
of its shard), gathered when the checkpoint is taken; it resumes on as many ranks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.train.errors import TrainingError
from engine.train.tracker import Tracker

Gather = Callable[[dict[str, Any]], list[dict[str, Any]]]


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
        "loss": float(tracker.loss),
        "per_output": [float(v) for v in tracker.per_output],
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
    for m, saved in zip(tracker.all_metrics(), position["metrics"], strict=True):
        m.set_additive_state(saved)


@dataclass
class Live:
    """The running epoch's position, read when a checkpoint is taken (None between epochs)."""

    epoch: int
    generator: np.random.Generator
    tracker: Tracker
    step: int = 0
    # data-parallel: every rank's position, in rank order (a collective: all ranks call it)
    gather: Gather | None = None
    frozen: list[dict[str, Any] | None] | None = None

    def __call__(self) -> dict[str, Any] | None:
        if self.frozen is not None:
            return self.frozen[0]
        if not self.step:
            return None
        mine = capture(self.epoch, self.step, self.generator, self.tracker)
        if self.gather is None:
            return mine
        return {"epoch": self.epoch, "step": self.step, "ranks": self.gather(mine)}


def freeze(live: Live) -> None:
    """Take a data-parallel position now, while the signal that stopped fit is still caught:
    every rank is at the same step, and a late signal cannot cut one rank out of the gather."""
    if live.gather is not None:
        live.frozen = [live()]


def saved_step(saved: dict[str, Any] | None, epoch: int) -> int:
    """The step a saved position continues epoch `epoch` from (0: it is another epoch's)."""
    if saved is None or int(saved.get("epoch", -1)) != epoch:
        return 0
    return int(saved["step"])


def resume_step(
    saved: dict[str, Any] | None,
    epoch: int,
    generator: np.random.Generator,
    tracker: Tracker,
    rank: int = 0,
    world: int = 1,
) -> int:
    """The step to start epoch `epoch` at: a saved position of this epoch restored (this rank's
    part of a data-parallel one), else 0."""
    if not saved_step(saved, epoch):
        return 0
    assert saved is not None
    ranks = saved.get("ranks")
    saved_world = 1 if ranks is None else len(ranks)
    if saved_world != world:
        raise TrainingError(
            f"the checkpoint was taken inside epoch {epoch + 1} of a run on {saved_world} "
            f"process(es); resume it on as many ({_launch(saved_world)}), or delete the run's "
            f"checkpoints/epoch-*-step-*.msz to resume from the last epoch's end on any number"
        )
    return restore(saved if ranks is None else ranks[rank], generator, tracker)


def _launch(world: int) -> str:
    return "without mpirun" if world == 1 else f"mpirun -n {world}"
