"""A background thread that keeps the next pieces of data decoded while the training step
runs, and measures how long the step waited for them (it should not wait when the disk keeps
up)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

_DONE = object()


class Prefetcher:
    """Iterate `items` on a daemon thread, `depth` items ahead; errors surface in the consumer.

    `waited` is the total time the consumer spent blocked on an item that was not ready, and
    `waits` how many times that happened; both accumulate across epochs.
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.waited = 0.0
        self.waits = 0
        self.items = 0

    def run(self, items: Iterator[Any]) -> Iterator[Any]:
        ready: queue.Queue[Any] = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for item in items:
                    if not put(item):
                        return
                put(_DONE)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                put(exc)

        worker = threading.Thread(target=produce, name="modelspec-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = self._get(ready)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                self.items += 1
                yield item
        finally:
            stop.set()
            worker.join()

    def _get(self, ready: queue.Queue[Any]) -> Any:
        try:
            return ready.get_nowait()
        except queue.Empty:
            start = time.perf_counter()
            item = ready.get()
            self.waited += time.perf_counter() - start
            self.waits += 1
            return item
