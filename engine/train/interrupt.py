"""Ctrl-C and SIGTERM during fit as "stop after the current step"; a second signal ends at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

# SIGTERM is what Slurm, Kubernetes and spot instances send before they kill a job.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnInterrupt:
    """Turns the first SIGINT or SIGTERM during fit into 'stop after the current step' (main
    thread only), so the run can be saved; a second one exits at once with 128 + its number.

    Exiting raises SystemExit rather than killing the process, so an atomic write under way
    removes its temporary file and the last complete checkpoint is left as it was.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise SystemExit(128 + signum)
        self.signum = signum
        self.requested = True

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
