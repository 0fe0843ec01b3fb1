"""A time bound per fuzz case: a case that runs longer is reported as a hang, not waited for."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

CASE_SECONDS = 30  # far above any case's real cost on a busy machine; a hang is unbounded


class Hang(AssertionError):
    """A fuzz case did not finish within its bound."""


@contextlib.contextmanager
def bounded(seconds: float = CASE_SECONDS) -> Iterator[None]:
    def hang(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"the case did not finish in {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
