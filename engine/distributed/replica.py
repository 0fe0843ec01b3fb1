"""One rank of a data-parallel fit: Horovod's and DDP's semantics as hooks of the training loop.

Each global batch of `batch_size` samples (drawn from the epoch's shuffled order, the same on
every rank) is split into contiguous shards, one per rank, sizes differing by at most one. Each
rank computes the mean gradient of its shard, scales it by its share of the batch and the flat
gradient buffer is summed over ranks in one Allreduce: the result is the gradient of the whole
batch, so every rank applies the same update a single process would. Running losses and
metric states are sums over samples, so adding them over ranks gives one process's values.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backend import backend_of
from engine.distributed.buckets import Buckets
from engine.distributed.comm import Communicator
from engine.distributed.errors import DistributedError
from engine.distributed.reduce import Reduce, reducer_for
from engine.distributed.session import check_batch_size
from engine.layers.moments import Moments
from engine.tensor import Variable
from engine.train.prepare import Data

if TYPE_CHECKING:
    from engine.models import Model
    from engine.train.flat_params import FlatParams
    from engine.train.stream_data import StreamData
    from engine.train.tracker import Tracker
    from engine.train.trainer import Trainer

Array = Any
Batch = tuple[list[Array], list[Array], Array | None]

# Flags each step agrees on (maximum over ranks): a non-finite loss (2 NaN, 1 infinite), a
# callback's stop_training, Ctrl-C.
_NONFINITE, _STOP, _INTERRUPT = range(3)


def shard_bounds(count: int, rank: int, size: int) -> tuple[int, int]:
    """Rank `rank`'s contiguous part of `count` items split over `size` ranks."""
    return count * rank // size, count * (rank + 1) // size


class DataParallel:
    """The hooks `fit` calls on one rank of a data-parallel run."""

    def __init__(
        self, comm: Communicator, check_weights: bool = True, bucket_bytes: int = 0
    ) -> None:
        self.comm = comm
        self.rank = comm.rank
        self.size = comm.size
        self.check = check_weights
        self.bucket_bytes = bucket_bytes
        self.share = 1.0
        self._reduce: Reduce | None = None
        self.buckets: Buckets | None = None
        self._reducers: dict[str, Reduce] = {}
        self._averaged: list[Variable] = []

    # --- the start of fit ------------------------------------------------------------------

    def begin(
        self, model: Model, trainer: Trainer, batch_size: int, data: Data | StreamData
    ) -> int:
        """Check the run can be split, give every rank rank 0's seed and weights; returns the
        seed (as Horovod broadcasts parameters before the first step)."""
        check_batch_size(batch_size, self.size)
        if data.size < self.size:
            raise DistributedError(
                f"{data.size} training samples cannot be shared by {self.size} ranks"
            )
        seed = np.array([model.seed if model.seed is not None else -1], dtype=np.int64)
        self.comm.broadcast(seed)
        model.seed = int(seed[0])
        for w in model.weights:
            self._broadcast(w)
        self._reduce = self._reducer(trainer.flat.grad) if trainer.flat.size else None
        self.buckets = None
        if self.bucket_bytes and trainer.flat.size and backend_of(trainer.flat.grad).name == "cpu":
            # host buffers only: NCCL and staged device transfers sum the buffer whole
            buckets = Buckets(self.comm, trainer.flat, trainer.train_exec, self.bucket_bytes)
            # one bucket is ready only when the pass ends: the blocking Allreduce does it then
            if len(buckets.ranges) > 1:
                self.buckets = buckets
                trainer.train_exec.progress = buckets.progress
        self._averaged = [
            w
            for call in model.graph.calls
            for w in call.layer.weights
            if w.name.rsplit("/", 1)[-1] in call.layer.replica_averaged
        ]
        return model.seed

    def _broadcast(self, w: Variable) -> None:
        backend = backend_of(w.data)
        host = np.ascontiguousarray(backend.to_host(w.data))
        self.comm.broadcast(host)
        w.data[...] = backend.asarray(host)

    def _reducer(self, buffer: Array) -> Reduce:
        """The sum over ranks for `buffer`'s device, set up once per device (NCCL's
        communicator is costly to create)."""
        name = backend_of(buffer).name
        if name not in self._reducers:
            self._reducers[name] = reducer_for(self.comm, buffer)
        return self._reducers[name]

    def rng_key(self, seed: int, epoch: int) -> list[int]:
        """Dropout's generator key: one stream per rank, all derived from the spec's seed."""
        return [seed, epoch, 1, self.rank]

    # --- steps -----------------------------------------------------------------------------

    def batches(
        self, data: Data, batch_size: int, order: np.ndarray | None, start_batch: int = 0
    ) -> Iterator[Batch | None]:
        """This rank's shard of each global batch from the `start_batch`-th (None when a short
        last batch leaves it nothing); `share` is the shard's fraction of the batch."""
        for start in range(start_batch * batch_size, data.size, batch_size):
            count = min(batch_size, data.size - start)
            lo, hi = shard_bounds(count, self.rank, self.size)
            self.share = (hi - lo) / count
            if self.buckets is not None:
                self.buckets.share = self.share
            if hi == lo:
                yield None
                continue
            index = slice(start + lo, start + hi)
            part = data.take(index if order is None else order[index])
            yield part.xs, part.ys, part.sw

    def reduce_gradients(self, flat: FlatParams) -> None:
        """The whole batch's gradient on every rank: shares weighted, summed in one Allreduce
        (or already, bucket by bucket, during the backward pass); then the statistics layers
        keep per batch (BatchNormalization's) averaged likewise."""
        if self._reduce is not None and self.buckets is None:
            flat.grad *= flat.grad.dtype.type(self.share)
            self._reduce(flat.grad)
        if self._averaged:
            self._average_state()

    def _average_state(self) -> None:
        first = self._averaged[0].data
        xp = backend_of(first).xp
        packed = xp.concatenate([w.data.reshape(-1) for w in self._averaged])
        packed *= packed.dtype.type(self.share)
        self._reducer(packed)(packed)
        offset = 0
        for w in self._averaged:
            size = w.data.size
            w.data[...] = packed[offset : offset + size].reshape(w.data.shape)
            offset += size

    def idle_step(self, trainer: Trainer) -> None:
        """A rank with no samples in a short last batch adds nothing but takes the update."""
        trainer.flat.grad.fill(0)
        if self.buckets is not None:
            self.buckets.progress(0)
        self.reduce_gradients(trainer.flat)
        trainer.apply_update()

    def agree(self, loss: float, stop: bool, interrupted: bool) -> tuple[float, bool, bool]:
        """The step's outcome every rank acts on: a non-finite loss, a stop or a Ctrl-C on any
        rank holds for all, so no rank leaves the loop while others wait for it."""
        flags = np.zeros(3)
        flags[_NONFINITE] = 0.0 if math.isfinite(loss) else (2.0 if math.isnan(loss) else 1.0)
        flags[_STOP] = float(stop)
        flags[_INTERRUPT] = float(interrupted)
        agreed = self.comm.allreduce_max(flags)
        kind = agreed[_NONFINITE]
        if kind:
            loss = math.nan if kind == 2.0 else math.inf
        return loss, bool(agreed[_STOP]), bool(agreed[_INTERRUPT])

    def agree_signal(self, signum: int) -> int:
        """The largest signal number any rank stopped on (0 for none): after the last step,
        a Ctrl-C that reached one rank after the step's agreement, or SIGTERM on one rank and
        SIGINT on another, still ends every rank with the same exit code."""
        return int(self.comm.allreduce_max(np.array([signum], dtype=np.int64))[0])

    def gather_json(self, mine: dict[str, Any]) -> list[dict[str, Any]]:
        """Every rank's JSON-ready `mine`, in rank order (a mid-epoch checkpoint's positions);
        sent as UTF-8 bytes, so nothing is pickled."""
        data = np.frombuffer(json.dumps(mine).encode(), dtype=np.uint8)
        lengths = self.comm.allgather(np.array([data.size], dtype=np.int64))[:, 0]
        padded = np.zeros(int(lengths.max()), dtype=np.uint8)
        padded[: data.size] = data
        every = self.comm.allgather(padded)
        return [json.loads(every[r, : lengths[r]].tobytes()) for r in range(self.size)]

    def merge_moments(self, local: Moments, shape: tuple[int, ...]) -> Moments:
        """Every rank's moments (of its share of the data) merged in rank order, the same on
        every rank (Normalization adapting on a sharded stream)."""
        return Moments.merged(self.comm.allgather(local.packed(shape)), shape)

    # --- epochs ----------------------------------------------------------------------------

    def shard(self, data: Data) -> Data:
        """This rank's contiguous part of a data set (validation)."""
        if data.size < self.size:
            raise DistributedError(
                f"{data.size} validation samples cannot be shared by {self.size} ranks"
            )
        lo, hi = shard_bounds(data.size, self.rank, self.size)
        return data.take(slice(lo, hi))

    def reduce_tracker(self, tracker: Tracker) -> None:
        """Sum the running losses and the metrics' additive state over ranks, in place."""
        parts: list[np.ndarray] = [
            np.array([tracker.count, tracker.loss, *tracker.per_output], dtype=np.float64)
        ]
        metrics = tracker.all_metrics()
        for m in metrics:
            if not m.additive_state:
                raise DistributedError(
                    f"metric {m.name!r} keeps no additive state, so it cannot be combined over "
                    "ranks; declare `additive_state` on its class"
                )
            parts.extend(
                np.asarray(getattr(m, k), dtype=np.float64).reshape(-1) for k in m.additive_state
            )
        packed = np.concatenate(parts)
        self.comm.allreduce_sum(packed)
        head = 2 + len(tracker.per_output)
        tracker.count = int(packed[0])
        tracker.loss = float(packed[1])
        tracker.per_output = [float(v) for v in packed[2:head]]
        offset = head
        for m in metrics:
            summed = {}
            for k in m.additive_state:
                size = np.size(getattr(m, k))
                summed[k] = packed[offset : offset + size]
                offset += size
            m.set_additive_state(summed)

    def check_weights(self, model: Model, epoch: int) -> None:
        """Stop with an error when any rank's weights differ from rank 0's by a single bit."""
        if not self.check:
            return
        digest = hashlib.blake2b(digest_size=8)
        for w in model.weights:
            digest.update(np.ascontiguousarray(backend_of(w.data).to_host(w.data)).tobytes())
        mine = np.frombuffer(digest.digest(), dtype=np.uint64).copy()
        every = self.comm.allgather(mine)[:, 0]
        differ = [r for r in range(self.size) if every[r] != every[0]]
        if differ:
            raise DistributedError(
                f"after epoch {epoch + 1} the weights of rank(s) "
                f"{', '.join(map(str, differ))} differ from rank 0's (checksum over every "
                "weight); the ranks no longer train the same model"
            )
