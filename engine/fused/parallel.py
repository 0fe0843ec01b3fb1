"""Run a few independent tasks on this thread and one helper, never waiting for a late helper.

NumPy releases the GIL in large element-wise passes and one-thread BLAS products, so two Python
threads keep both cores busy. On a loaded machine the helper thread may not be scheduled for
milliseconds: tasks are therefore taken from a shared list, and the calling thread runs
whatever the helper has not started, then waits only for a task the helper is running. Who
runs a task never changes what it computes, so results are the same either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import engine.native as native

# The engine's one helper thread, also the recurrent loops' (`engine.kernels.chunk_tasks`): a
# second one would only add a third thread for two cores. Sharing it is safe because neither
# side ever waits for a task the helper has not started: a caller nested in a helper task, or
# one queued behind the other's work, runs its tasks itself.
HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-helper")


class _Tasks:
    """A list of tasks both threads take from, with a count of those not finished yet."""

    def __init__(self, tasks: Sequence[Callable[[], object]]) -> None:
        self.tasks = list(tasks)
        self.next = 0
        self.left = len(self.tasks)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        while True:
            with self.lock:
                if self.next == len(self.tasks):
                    return
                task = self.tasks[self.next]
                self.next += 1
            try:
                task()
            except BaseException as exc:  # re-raised on the calling thread
                self.error = self.error or exc
            finally:
                with self.lock:
                    self.left -= 1
                    if not self.left:
                        self.done.set()


def run(tasks: Sequence[Callable[[], object]]) -> None:
    """Run every task, sharing them with the helper thread; raises the first task error."""
    if len(tasks) < 2:
        for task in tasks:
            task()
        return
    shared = _Tasks(tasks)
    native.rest_split_worker()
    HELPER.submit(shared.work)
    shared.work()
    shared.done.wait()
    if shared.error is not None:
        raise shared.error


def share(count: int, workers: Sequence[Callable[[int], None]]) -> None:
    """Run items 0..count-1, each by exactly one worker; each worker takes the next free item.

    Each worker runs as one `run` task, so a worker's own state (a second executor, say) is
    only ever used by one thread at a time, and the faster core simply takes more items.
    Which worker runs an item must not change what it computes. After an error, the other
    workers stop at their next item and the error is raised here.
    """
    items = iter(range(count))
    lock = threading.Lock()
    failed = threading.Event()

    def loop(work: Callable[[int], None]) -> Callable[[], None]:
        def go() -> None:
            while not failed.is_set():
                with lock:
                    item = next(items, None)
                if item is None:
                    return
                try:
                    work(item)
                except BaseException:
                    failed.set()
                    raise

        return go

    run([loop(work) for work in workers])
