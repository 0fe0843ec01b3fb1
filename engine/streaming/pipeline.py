"""A stream: a source on disk fitted to the model unit by unit and served as shuffled,
prefetched batches, epoch after epoch, without ever holding the whole data set in memory."""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.config.data import DataSource
from engine.data import DataError, DataSchema, Dataset, ModelSignature, Table, fit_table
from engine.read_progress import reading
from engine.streaming.order import Piece, batches, epoch_units, shuffled_rows
from engine.streaming.prefetch import Prefetcher
from engine.streaming.units import BadDataWarning, Chunk, Source, Unit, merge, rows_of

Batch = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


class Stream:
    """Batches of a data set read from disk during training (`model.fit(stream)`).

    `batches(batch_size, seed=..., epoch=...)` yields `(x, y)` maps keyed by the model's input
    and output names, in an order that depends only on the seed and the epoch;
    `start_batch=k` continues an epoch at its k-th batch. `shard(rank, world)` is the stream a
    rank reads under data-parallel training: every world-th unit of the epoch's permutation.
    """

    def __init__(
        self,
        source: Source,
        config: DataSource,
        signature: ModelSignature,
        schema: DataSchema | None,
        label_key: str | None = None,
        *,
        need_targets: bool = True,
        dtype: str = "float32",
    ) -> None:
        self.source = source
        self.config = config
        self.rank, self.world = 0, 1
        self.prefetcher = Prefetcher(config.prefetch)
        # the rows each unit gave when read, fewer than it declares where `bad_data: skip`
        # dropped some (shared with this stream's shards)
        self._given: dict[Unit, int] = {}
        self._fit_args: dict[str, Any] = {
            "signature": signature,
            "label_key": label_key,
            "need_targets": need_targets,
            "dtype": dtype,
        }
        if not source.units:
            raise DataError(f"{source.path}: no samples")
        first = next(source.read(source.units[0]))
        _, made = self._fit(Table(source.units[0].path, source.format, first), schema)
        if schema is None and made.classes:
            made = made.model_copy(update={"classes": self._all_classes(made)})
        self.schema = schema or made

    @property
    def path(self) -> str:
        return str(self.source.path)

    def __len__(self) -> int:
        return sum(self._rows_of(u) for u in self.source.units)

    def shard(self, rank: int, world: int) -> Stream:
        """This stream as rank `rank` of `world` reads it: a disjoint share of the units."""
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}); got {rank}")
        sharded = copy.copy(self)
        sharded.rank, sharded.world = rank, world
        sharded.prefetcher = Prefetcher(self.config.prefetch)
        return sharded

    def rows(self, seed: int = 0, epoch: int = 0, shuffle: bool = True) -> int:
        """Rows this rank reads in the epoch (all rows unless sharded). A unit counts the rows
        it declares until the stream has read it, then the rows it gave: in `bad_data: skip`
        mode only reading finds the rows left out, so from the second epoch on."""
        return sum(self._rows_of(u) for u in self._units(seed, epoch, shuffle))

    def declared_rows(self, seed: int = 0, epoch: int = 0, shuffle: bool = True) -> int:
        """`rows` as the units declare them, read or not: what every rank of a data-parallel
        run computes alike for every shard, as each reads only its own units."""
        return sum(u.rows or 0 for u in self._units(seed, epoch, shuffle))

    def steps(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True) -> int:
        return max(1, math.ceil(self.rows(seed, epoch, shuffle) / batch_size))

    def batches(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        start_batch: int = 0,
    ) -> Iterator[Batch]:
        """The epoch's batches; whole shuffled windows are read and decoded ahead on a
        background thread, so the step waits only when the disk falls behind."""
        skipped_before = len(self.source.skipped)
        pieces = (p for u in self._units(seed, epoch, shuffle) for p in self._pieces(u))
        rows = shuffled_rows(
            pieces, self.config.shuffle_buffer, seed, epoch, shuffle, start_batch * batch_size
        )
        for batch in batches(self.prefetcher.run(rows), batch_size):
            yield self._split(batch)
        self.warn_skipped(skipped_before)

    def to_dataset(self) -> Dataset:
        """The whole data set in memory, in file order (the small-data path)."""
        total = len(self) if self.source.exact else None
        chunks: list[Chunk] = []
        with reading(self.source.path) as progress:
            for piece in (p for u in self.source.units for p in self._pieces(u)):
                chunks.append(piece.load())
                progress(progress.rows + rows_of(chunks[-1]), total)
        whole = merge([c for c in chunks if c])
        x, y = self._split(whole)
        self.warn_skipped(0)
        return Dataset(self.path, x, y)

    def _units(self, seed: int, epoch: int, shuffle: bool) -> list[Unit]:
        return epoch_units(self.source.units, seed, epoch, shuffle, self.rank, self.world)

    def _rows_of(self, unit: Unit) -> int:
        return self._given.get(unit, unit.rows or 0)

    def _pieces(self, unit: Unit) -> Iterator[Piece]:
        """Lazy pieces when the unit's size is known; else read now, a piece per chunk. A
        piece's size is the unit's declared one even once the unit gave fewer rows, as the
        epoch's windows, and so its order, follow those sizes."""
        if self.source.exact and unit.rows is not None:
            exact = self.config.bad_data != "skip"
            yield Piece(unit.rows, functools.partial(self._load, unit), exact)
            return
        given = 0
        for fitted in self._fitted(unit):
            given += rows_of(fitted)
            yield Piece(rows_of(fitted), functools.partial(dict, fitted))
        self._given[unit] = given

    def _load(self, unit: Unit) -> Chunk:
        chunk = merge(list(self._fitted(unit)) or [{}])
        self._given[unit] = rows_of(chunk)
        return chunk

    def _fitted(self, unit: Unit) -> Iterator[Chunk]:
        """The unit's chunks fitted to the model, each knowing the rows of its file before it."""
        first_row = unit.start
        for chunk in self._read(unit):
            yield self._fit_chunk(unit, chunk, first_row)
            first_row += rows_of(chunk)

    def _read(self, unit: Unit) -> Iterator[Chunk]:
        try:
            yield from self.source.read(unit)
        except DataError as exc:
            if self.config.bad_data != "skip":
                raise
            self.source.skipped.append(str(exc))

    def _fit_chunk(self, unit: Unit, chunk: Chunk, first_row: int = 0) -> Chunk:
        """The chunk's inputs and targets fitted to the model, keyed `x:name` and `y:name`."""
        table = Table(unit.path, self.source.format, chunk, first_row=first_row)
        try:
            dataset, _ = self._fit(table, self.schema)
        except DataError as exc:
            message = str(exc)
            if unit.where and not message.startswith(unit.label):
                message = f"{message} (in {unit.where})"
            if self.config.bad_data == "skip":
                self.source.skipped.append(message)
                return {}
            raise DataError(message) from exc
        fitted = {f"x:{k}": v for k, v in dataset.x.items()}
        fitted.update({f"y:{k}": v for k, v in dataset.y.items()})
        return fitted

    def _fit(self, table: Table, schema: DataSchema | None) -> tuple[Dataset, DataSchema]:
        args = self._fit_args
        return fit_table(
            table,
            self.config,
            args["signature"],
            schema,
            args["label_key"],
            need_targets=args["need_targets"],
            dtype=args["dtype"],
        )

    def _all_classes(self, made: DataSchema) -> dict[str, list[str]]:
        """String labels' classes over the whole source (reading only the label columns)."""
        classes: dict[str, list[str]] = {}
        for output in made.classes:
            column = made.outputs[output][0]
            seen: set[str] = set()
            with reading(self.source.path, "labels") as progress:
                for unit in self.source.units:
                    for chunk in self.source.read(unit, [column]):
                        seen.update(str(v) for v in np.unique(chunk[column]))
                        progress(progress.rows + rows_of(chunk), len(self))
            classes[output] = sorted(seen)
        return classes

    @staticmethod
    def _split(batch: Chunk) -> Batch:
        x = {k[2:]: v for k, v in batch.items() if k.startswith("x:")}
        y = {k[2:]: v for k, v in batch.items() if k.startswith("y:")}
        return x, y

    def warn_skipped(self, before: int) -> None:
        """One warning counting the pieces skipped since the `before`-th (bad_data: skip)."""
        new = self.source.skipped[before:]
        if new:
            warnings.warn(
                f"{self.path}: skipped {len(new)} unreadable or bad pieces of data "
                f"(bad_data: skip); the first: {new[0]}",
                BadDataWarning,
                stacklevel=2,
            )


def as_model_arrays(
    batch: Batch, input_names: list[str], output_names: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    x, y = batch
    return [x[n] for n in input_names], [y[n] for n in output_names if n in y]
