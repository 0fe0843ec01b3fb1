"""Tasks shared by a recurrent loop's thread and one worker thread, each run exactly once.

The recurrent loops hand their full-sequence products (input projections ahead, weight and
input gradients behind) to the engine's helper thread (`engine.fused.parallel.HELPER`, the
worker below) in time chunks. On a loaded 2-core machine that
thread may be descheduled for milliseconds, even in the middle of a chunk, so the loop's
thread never just waits while there is work it could do: it claims whatever task nobody has
started (the one it needs first, else the next one ahead, or the last ones at the end), and
waits only when every task left is already running. Which thread runs a task never changes
what it computes: each task writes only its own slots.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import engine.native as native
from engine.fused import parallel

Task = Callable[[], None]


class Tasks:
    """A list of tasks, claimed in list order by the worker and on demand by the loop's
    thread; `need(i)` returns once task i is done and re-raises its error."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = threading.Condition(self.lock)
        self.tasks: list[Task] = []
        self.claimed: list[bool] = []
        self.done: list[bool] = []
        self.errors: list[BaseException | None] = []
        self.lowest_free = 0
        self.draining = False  # a drain is queued or running on the worker

    def add(self, task: Task, share: bool = True) -> int:
        """Append a task (for the worker to take too when `share`); returns its index."""
        with self.lock:
            self.tasks.append(task)
            self.claimed.append(False)
            self.done.append(False)
            self.errors.append(None)
            index = len(self.tasks) - 1
            wake = share and not self.draining
            self.draining = self.draining or share
        if wake:
            native.rest_split_worker()
            parallel.HELPER.submit(self._drain)
        return index

    def _claim(self, index: int) -> bool:
        with self.lock:
            if self.claimed[index]:
                return False
            self.claimed[index] = True
            while self.lowest_free < len(self.claimed) and self.claimed[self.lowest_free]:
                self.lowest_free += 1
            return True

    def _free(self, last: bool, drain: bool = False) -> int | None:
        """The lowest (or last) unclaimed task, claimed; None when none is left (then a
        `drain` ends: the next shared task queues a new one)."""
        with self.lock:
            span = range(len(self.claimed) - 1, self.lowest_free - 1, -1)
            for index in span if last else range(self.lowest_free, len(self.claimed)):
                if not self.claimed[index]:
                    self.claimed[index] = True
                    return index
            if drain:
                self.draining = False
            return None

    def _run(self, index: int) -> None:
        try:
            self.tasks[index]()
        except BaseException as exc:  # raised on the loop's thread by `need`
            self.errors[index] = exc
        finally:
            with self.lock:
                self.done[index] = True
                self.finished.notify_all()

    def _wait(self, index: int) -> None:
        with self.lock:
            while not self.done[index]:
                self.finished.wait()

    def _drain(self) -> None:
        """The worker's side: run the lowest unclaimed tasks until none is left."""
        while (index := self._free(last=False, drain=True)) is not None:
            self._run(index)

    def need(self, index: int) -> None:
        """Have task `index` done: run it here if nobody has started it; while the worker runs
        it, run the next unclaimed tasks here instead of waiting."""
        if self._claim(index):
            self._run(index)
        while not self.done[index]:
            spare = self._free(last=False)
            if spare is None:
                self._wait(index)
            else:
                self._run(spare)
        self._raise(index)

    def finish(self) -> None:
        """Have every task done, running unclaimed ones here from the last down (the worker
        takes them from the first up)."""
        while (index := self._free(last=True)) is not None:
            self._run(index)
        for index in range(len(self.tasks)):
            self._wait(index)
            self._raise(index)

    def _raise(self, index: int) -> None:
        error = self.errors[index]
        if error is not None:
            raise error
