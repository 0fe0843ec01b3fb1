"""How far the reading of a data set has got, told to whoever watches: millions of rows take
seconds to minutes to read, and a run should show that progress instead of silence.

The engine prints nothing. A caller (the CLI) installs a callback with `watch`; a reader opens
`reading(path)` around its work and calls the counter it gets once per chunk (never per row)
with the rows reached so far. Without a watcher the counter does nothing but compare two ints.
The watcher lives in a context variable, so the prefetch thread of a stream, which starts
with an empty context, reports nothing during training.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# What a pass over the data is doing: reading it in, counting its rows before streaming it,
# collecting the classes of its string labels, or adapting preprocessing layers to it.
Action = Literal["read", "count", "labels", "adapt"]


@dataclass(frozen=True)
class ReadProgress:
    """One report: `rows` reached of `total` (None when only the end tells), after `seconds`;
    `done` on the last report of a pass that succeeded."""

    path: Path
    action: Action
    rows: int
    total: int | None
    seconds: float
    done: bool = False


Watcher = Callable[[ReadProgress], None]

_WATCHER: ContextVar[Watcher | None] = ContextVar("read_progress_watcher", default=None)


@contextlib.contextmanager
def watch(watcher: Watcher) -> Iterator[None]:
    """Send the reports of every read in this block (in this thread) to `watcher`."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)


class RowCounter:
    """The rows a pass has reached; called with the position (not an increment), so passes that
    go over the same rows again (one per input of an NPZ) never move it backwards."""

    def __init__(self, path: Path, action: Action, watcher: Watcher | None) -> None:
        self.path = path
        self.action = action
        self.rows = 0
        self.total: int | None = None
        self._watcher = watcher
        self._start = time.perf_counter()

    def __call__(self, rows: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        if rows > self.rows:
            self.rows = rows
            self._tell(done=False)

    def finish(self) -> None:
        self._tell(done=True)

    def _tell(self, done: bool) -> None:
        if self._watcher is not None:
            seconds = time.perf_counter() - self._start
            self._watcher(
                ReadProgress(self.path, self.action, self.rows, self.total, seconds, done)
            )


@contextlib.contextmanager
def reading(path: Path, action: Action = "read") -> Iterator[RowCounter]:
    """A counter for one pass over `path`; its final report is sent when the block succeeds
    (a failed read ends in an error message instead)."""
    counter = RowCounter(path, action, _WATCHER.get())
    yield counter
    counter.finish()
