"""The first step of an epoch whose loss is NaN or infinite, recorded on the loss's device.

On the CPU the loop tests each step's loss as a float. On a device reading the loss would be
a sync every step, so the watch keeps the first bad step and its loss on the device (a few
device operations per step) and the loop reads them only where the host reads anyway: when a
callback read the step's logs, and at the epoch's end. The error still names the epoch and step.
"""

from __future__ import annotations

import math
from typing import Any

from engine import device_checks
from engine.backend import backend_of
from engine.train.tracker import Tracker

Array = Any


class NanWatch:
    """One epoch's first non-finite loss, kept where the losses are."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.step: Array | None = None
        self.value: Array | None = None
        self.reads = 0

    def record(self, loss: Array, step: int) -> None:
        """Note `step` if its loss is the epoch's first that is not finite (no sync)."""
        xp = backend_of(loss).xp
        if self.step is None or self.value is None:
            self.step = xp.full((), -1, dtype=xp.int64)
            self.value = xp.zeros((), dtype=loss.dtype)
        new = ~xp.isfinite(loss) & (self.step < 0)
        self.step = xp.where(new, step, self.step)
        self.value = xp.where(new, loss, self.value)

    def failure(self) -> tuple[str, int] | None:
        """("NaN" or "infinite", step) of the first bad loss so far; reads the device."""
        device_checks.flush()
        if self.step is None or self.value is None:
            return None
        step = int(self.step)
        if step < 0:
            return None
        return ("NaN" if math.isnan(float(self.value)) else "infinite"), step

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
