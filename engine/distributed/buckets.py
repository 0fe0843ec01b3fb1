"""The gradient Allreduce in buckets, each started while the backward pass is still running.

The flat gradient buffer holds the weights in forward order, so the backward pass finishes it
from the end. It is cut, from the end, into contiguous buckets of at least `bucket_bytes`
(PyTorch DDP's buckets, 25 MiB by default as there); a bucket is summed over ranks with a
non-blocking Allreduce as soon as every layer call that writes into it has run its backward
(a shared layer's earliest call included), and the step waits for all of them once the
backward pass ends. Every rank cuts the same buckets and starts them in the same order, as MPI
requires of collectives. Each progress report also tests the requests in flight: MPI moves a
non-blocking operation forward only inside its own calls.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from engine.distributed.comm import Communicator

if TYPE_CHECKING:
    from engine.train.executor import Executor
    from engine.train.flat_params import FlatParams


class Buckets:
    """Starts each bucket's Allreduce when the backward pass has written it."""

    def __init__(
        self, comm: Communicator, flat: FlatParams, executor: Executor, bucket_bytes: int
    ) -> None:
        self.comm = comm
        self.grad = flat.grad
        first_call: dict[int, int] = {}
        for i, call in enumerate(executor.calls):
            for w in call.layer.weights:
                first_call.setdefault(id(w), i)
        itemsize = flat.grad.dtype.itemsize
        self.ranges: list[tuple[int, int]] = []
        self.ready_at: list[int] = []
        hi, ready, size = None, len(executor.calls), 0
        for v, segment in reversed(list(zip(flat.variables, flat.segments, strict=True))):
            hi = segment.stop if hi is None else hi
            ready = min(ready, first_call.get(id(v), 0))
            size += (segment.stop - segment.start) * itemsize
            if size >= bucket_bytes or segment.start == 0:
                self.ranges.append((segment.start, hi))
                self.ready_at.append(ready)
                hi, ready, size = None, len(executor.calls), 0
        self.share = 1.0
        self.next = 0
        self.requests: list[Any] = []
        self.seconds = 0.0  # inside `progress`: starting, testing and waiting (for benchmarks)

    def progress(self, done_from: int) -> None:
        """Layer calls `done_from` onwards have run their backward; at 0 the pass is over and
        the step waits until every bucket is summed."""
        start = time.perf_counter()
        while self.next < len(self.ranges) and self.ready_at[self.next] >= done_from:
            lo, hi = self.ranges[self.next]
            part = self.grad[lo:hi]
            part *= part.dtype.type(self.share)
            self.requests.append(
                self.comm.world.Iallreduce(self.comm.mpi.IN_PLACE, part, op=self.comm.mpi.SUM)
            )
            self.next += 1
        if done_from == 0:
            self.comm.mpi.Request.Waitall(self.requests)
            self.requests.clear()
            self.next = 0
        elif self.requests:
            self.comm.mpi.Request.Testall(self.requests)
        self.seconds += time.perf_counter() - start
