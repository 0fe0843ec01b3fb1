"""Ctrl-C during fit as "stop after the current step"."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class StopOnInterrupt:
    """Turns Ctrl-C during fit into 'stop after the current step' (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
