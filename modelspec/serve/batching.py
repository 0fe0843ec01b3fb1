"""Micro-batching: requests that arrive within a few milliseconds share one forward pass.

One product per request wastes the engine (a 1-row GEMM costs nearly what a 32-row one does),
so a pass takes every request waiting when it starts (those that queued while the last pass ran)
and those that arrive within `max_delay` seconds after, up to `max_rows` samples; they are
concatenated, predicted in one `model.predict` call on the model's own thread, and split back by
rows. `max_delay` 0 takes only what is already waiting; `max_rows` 1 makes each request its own
pass (batching off).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

Arrays = dict[str, np.ndarray]


@dataclass
class _Pending:
    inputs: Arrays
    rows: int
    result: asyncio.Future[Arrays]


class MicroBatcher:
    """Gathers concurrent requests into one call of `run`, which never runs twice at once."""

    def __init__(
        self, run: Callable[[Mapping[str, np.ndarray]], Arrays], max_delay: float, max_rows: int
    ) -> None:
        self._run = run
        self.max_delay = max_delay
        self.max_rows = max_rows
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelspec-predict")
        self._task: asyncio.Task[None] | None = None
        self._next: _Pending | None = None  # taken from the queue, too big for the last pass
        self.passes = 0

    def start(self) -> None:
        """Start gathering (inside the server's event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=True)

    async def predict(self, inputs: Arrays) -> Arrays:
        """The outputs for `inputs` (arrays with a batch axis), computed with whoever is waiting."""
        rows = len(next(iter(inputs.values())))
        pending = _Pending(inputs, rows, asyncio.get_running_loop().create_future())
        await self._queue.put(pending)
        return await pending.result

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            try:
                outputs = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._run, _concatenated(batch)
                )
            except Exception as exc:  # the requests that shared the pass all get the error
                for pending in batch:
                    if not pending.result.done():
                        pending.result.set_exception(exc)
                continue
            self.passes += 1
            _split(batch, outputs)

    async def _gather(self) -> list[_Pending]:
        """The first waiting request, everything queued behind it, then arrivals until the window
        closes (`max_delay` after the first was taken) or `max_rows` samples are in. A request
        that would take the pass past `max_rows` starts the next one instead (a request larger
        than `max_rows` is a pass of its own)."""
        first, self._next = self._next or await self._queue.get(), None
        batch = [first]
        rows = first.rows
        deadline = time.monotonic() + self.max_delay
        while rows < self.max_rows:
            if self._queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            else:
                pending = self._queue.get_nowait()
            if rows + pending.rows > self.max_rows:
                self._next = pending
                break
            batch.append(pending)
            rows += pending.rows
        return batch


def _concatenated(batch: list[_Pending]) -> Arrays:
    if len(batch) == 1:
        return batch[0].inputs
    names = batch[0].inputs
    return {name: np.concatenate([p.inputs[name] for p in batch]) for name in names}


def _split(batch: list[_Pending], outputs: Arrays) -> None:
    start = 0
    for pending in batch:
        stop = start + pending.rows
        if not pending.result.done():  # a client that went away leaves a cancelled future
            pending.result.set_result({k: v[start:stop] for k, v in outputs.items()})
        start = stop
