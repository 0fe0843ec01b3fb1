"""A Stream as fit and evaluate see data: batches in the model's order and dtypes, per epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engine.read_progress import reading
from engine.streaming import Stream
from engine.train.prepare import cast_inputs

if TYPE_CHECKING:
    from engine.distributed.replica import DataParallel
    from engine.models import Model

# Rows per batch when preprocessing layers adapt on a stream.
ADAPT_BATCH = 4096


class StreamData:
    """fit's view of a Stream; same seed and epoch, same batches."""

    def __init__(self, model: Model, stream: Stream) -> None:
        self.model = model
        self.stream = stream
        self.sw = None

    @property
    def size(self) -> int:
        return self.stream.rows()

    def steps(self, batch_size: int, seed: int, epoch: int, shuffle: bool) -> int:
        return self.stream.steps(batch_size, seed, epoch, shuffle)

    def adapt_inputs(self) -> Iterator[list[Any]]:
        """Every row's inputs in file order, in batches of `ADAPT_BATCH` rows, for adapting
        preprocessing layers (Normalization) over the whole stream as Keras's adapt does; the
        rows read are told to the watcher of `engine.read_progress`, as a first read's are."""
        total = self.stream.rows(shuffle=False) or None
        with reading(self.stream.source.path, "adapt") as progress:
            for x, _ in self.stream.batches(ADAPT_BATCH, shuffle=False):
                yield cast_inputs(self.model, [x[n] for n in self.model.input_names])
                progress(progress.rows + len(next(iter(x.values()))), total)

    def epoch_batches(
        self, batch_size: int, seed: int, epoch: int, shuffle: bool, start_batch: int = 0
    ) -> Iterator[tuple[list[Any], list[Any], None]]:
        batches = self.stream.batches(
            batch_size, seed=seed, epoch=epoch, shuffle=shuffle, start_batch=start_batch
        )
        for x, y in batches:
            yield self._cast(x, y)

    def shard(self, rank: int, world: int) -> StreamData:
        """This rank's share of the stream's units (validation under data parallelism)."""
        return StreamData(self.model, self.stream.shard(rank, world))

    def shard_batches(
        self,
        dp: DataParallel,
        batch_size: int,
        seed: int,
        epoch: int,
        shuffle: bool,
        start_batch: int = 0,
    ) -> Iterator[tuple[list[Any], list[Any], None] | None]:
        """This rank's part of each global step from the `start_batch`-th, read from its own
        units only.

        Every rank knows every shard's row count from the units' declared sizes, so all take
        the same number of steps (a rank whose shard ran out takes idle steps, None) and weight
        their gradient by their share of the step's rows."""
        local = batch_size // dp.size
        shards = [self.stream.shard(r, dp.size) for r in range(dp.size)]
        rows = [shard.declared_rows(seed, epoch, shuffle) for shard in shards]
        steps = max(-(-n // local) for n in rows)
        mine = self.stream.shard(dp.rank, dp.size)
        own = mine.batches(local, seed=seed, epoch=epoch, shuffle=shuffle, start_batch=start_batch)
        for step in range(start_batch, steps):
            counts = [max(0, min(local, n - step * local)) for n in rows]
            dp.share = counts[dp.rank] / sum(counts)
            batch = next(own, None) if counts[dp.rank] else None
            yield None if batch is None else self._cast(*batch)

    def batches(self, batch_size: int, order: None = None) -> Iterator[tuple[Any, Any, None]]:
        del order
        return self.epoch_batches(batch_size, 0, 0, shuffle=False)

    def _cast(self, x: dict[str, Any], y: dict[str, Any]) -> tuple[list[Any], list[Any], None]:
        model = self.model
        ys = [y[n] for n in model.output_names if n in y]
        if len(ys) != len(model.output_names):
            raise ValueError(
                f"{self.stream.path}: the stream has no labels for the model's outputs"
            )
        xs = cast_inputs(model, [x[n] for n in model.input_names])
        return xs, ys, None
