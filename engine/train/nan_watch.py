"""The first step of an epoch whose loss is NaN or infinite, recorded on the loss's device.

On the CPU the loop tests each step's loss as a float. On a device reading the loss would be
a sync every step, so the watch stores each step's loss in a device buffer (one store per
step) and the loop looks for a bad one only where the host reads anyway: when a callback read
the step's logs, and at the epoch's end. The error still names the epoch and step.
"""

from __future__ import annotations

import math
from typing import Any

from engine import device_checks
from engine.backend import backend_of
from engine.train.tracker import Tracker

Array = Any


class NanWatch:
    """One epoch's losses, kept where they are computed, and the first that is not finite."""

    def __init__(self) -> None:
        self.losses: Array | None = None  # kept from epoch to epoch
        self.reset()

    def reset(self) -> None:
        self.first = 0  # the steps recorded this epoch: [first, end)
        self.end = 0
        self.reads = 0

    def record(self, loss: Array, step: int) -> None:
        """Keep step `step`'s loss on the device: one store, no sync."""
        if self.losses is None or step >= len(self.losses):
            self._grow(loss, step)
        assert self.losses is not None
        if self.end == 0:
            self.first = step
        self.losses[step] = loss
        self.end = step + 1

    def _grow(self, loss: Array, step: int) -> None:
        xp = backend_of(loss).xp
        grown = xp.zeros(max(2 * step, 64), dtype=loss.dtype)
        if self.losses is not None:
            grown[: len(self.losses)] = self.losses
        self.losses = grown

    def failure(self) -> tuple[str, int] | None:
        """("NaN" or "infinite", step) of the epoch's first bad loss so far; reads the device
        (one value when all are finite). Pending range checks are read first."""
        device_checks.flush()
        if self.losses is None or self.end == 0:
            return None
        xp = backend_of(self.losses).xp
        bad = ~xp.isfinite(self.losses[self.first : self.end])
        if not bool(bad.any()):
            return None
        step = self.first + int(xp.argmax(bad))
        return ("NaN" if math.isnan(float(self.losses[step])) else "infinite"), step

    def failure_if_read(self, tracker: Tracker) -> tuple[str, int] | None:
        """`failure()` when the step's logs were read (the host synced anyway), else None."""
        if tracker.reads == self.reads:
            return None
        self.reads = tracker.reads
        return self.failure()


def loss_failure(loss: Any, step: int, watch: NanWatch, tracker: Tracker) -> tuple[str, int] | None:
    """A float loss is tested at once (the CPU); a device loss goes to the watch."""
    if isinstance(loss, float):
        if math.isfinite(loss):
            return None
        return ("NaN" if math.isnan(loss) else "infinite"), step
    watch.record(loss, step)
    return watch.failure_if_read(tracker)
