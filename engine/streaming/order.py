"""An epoch's order for a stream: its units permuted, then rows shuffled within windows of at
least `buffer` rows, all drawn from `default_rng([seed, epoch, ...])` so that an epoch's order
depends on nothing else. Batches are cut from the concatenated windows, so batch k of an epoch
can be reached by skipping rows (without reading the units it skips when their sizes are
known): that is how a resumed run continues from the middle of an epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from engine.streaming.units import Chunk, Unit, merge, rows_of

_UNITS, _ROWS = 2, 3


def epoch_units(
    units: list[Unit], seed: int, epoch: int, shuffle: bool, rank: int = 0, world: int = 1
) -> list[Unit]:
    """This epoch's units for this rank: all ranks permute alike, each takes every world-th."""
    ordered = (
        [units[i] for i in np.random.default_rng([seed, epoch, _UNITS]).permutation(len(units))]
        if shuffle
        else list(units)
    )
    return ordered[rank::world]


@dataclass
class Piece:
    """A unit's rows, read only when `load` is called. `rows` is what the unit declares; not
    `exact` when loading may drop some (`bad_data: skip` leaves out a bad unit)."""

    rows: int
    load: Callable[[], Chunk]
    exact: bool = True


def windows(pieces: Iterator[Piece], buffer: int) -> Iterator[list[Piece]]:
    """Consecutive pieces grouped until each group holds at least `buffer` rows."""
    group: list[Piece] = []
    held = 0
    for piece in pieces:
        group.append(piece)
        held += piece.rows
        if held >= buffer:
            yield group
            group, held = [], 0
    if group:
        yield group


def shuffled_rows(
    pieces: Iterator[Piece], buffer: int, seed: int, epoch: int, shuffle: bool, skip: int
) -> Iterator[Chunk]:
    """Each window's rows permuted, the epoch's first `skip` rows left out. A window wholly
    before the skip is passed over unread only when its pieces' sizes are exact: otherwise it
    is read to count the rows the whole epoch had there."""
    offset = 0
    for w, group in enumerate(windows(pieces, buffer)):
        size = sum(p.rows for p in group)
        if offset + size <= skip and all(p.exact for p in group):
            offset += size
            continue
        chunk = merge([p.load() for p in group])
        size = rows_of(chunk)
        if shuffle and size:
            order = np.random.default_rng([seed, epoch, _ROWS, w]).permutation(size)
            chunk = {k: v[order] for k, v in chunk.items()}
        drop = max(0, skip - offset)
        offset += size
        if drop < size:
            yield {k: v[drop:] for k, v in chunk.items()}


def batches(chunks: Iterator[Chunk], batch_size: int) -> Iterator[Chunk]:
    """Batches of `batch_size` rows across chunk boundaries; the last may be smaller."""
    held: list[Chunk] = []
    count = 0
    for chunk in chunks:
        held.append(chunk)
        count += rows_of(chunk)
        if count < batch_size:
            continue
        merged = merge(held)
        full = count - count % batch_size
        for start in range(0, full, batch_size):
            yield {k: v[start : start + batch_size] for k, v in merged.items()}
        held = [{k: v[full:] for k, v in merged.items()}] if full < count else []
        count -= full
    if count:
        yield merge(held)
