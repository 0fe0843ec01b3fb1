"""Keep `engine.fused.parallel`'s helper thread busy, as a loaded machine would."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from engine.fused import parallel


@contextlib.contextmanager
def helper_busy() -> Iterator[None]:
    """Within the block the helper runs a task that waits for the block to end."""
    release, blocked = threading.Event(), threading.Event()

    def hold_helper() -> None:
        blocked.set()
        release.wait(5)

    parallel.HELPER.submit(hold_helper)
    blocked.wait(5)
    try:
        yield
    finally:
        release.set()
