"""NPY files memory-mapped and NPZ archives (stored members memory-mapped in place), split into
units of rows, so that a block is read from disk only when the epoch reaches it."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.data import DataError, Format, read_table
from engine.streaming.units import Chunk, Unit

# Rows per unit: about this many bytes of samples, so a unit is one efficient read.
UNIT_BYTES = 4 << 20


class ArraySource:
    """The arrays of an NPY file (plus its labels file) or an NPZ archive, read by row ranges."""

    exact = True

    def __init__(self, path: Path, labels: Path | None = None) -> None:
        self.path = path
        self.skipped: list[str] = []
        table = read_table(path)
        self.label_key: str | None = None
        if labels is not None:
            if table.format != "npy":
                raise DataError(f"{path}: `y` names a labels file only for an NPY input file")
            label_arrays = read_table(labels).arrays
            self.label_key = next(iter(label_arrays))
            table.arrays.update(label_arrays)
        self.format: Format = table.format
        self._arrays = table.arrays
        lengths = {len(a) if a.ndim else 0 for a in table.arrays.values()}
        if len(lengths) != 1:
            detail = ", ".join(f"{k}: {len(a)}" for k, a in table.arrays.items())
            raise DataError(f"{path}: the arrays disagree on the number of samples ({detail})")
        rows = lengths.pop()
        row_bytes = max(1, sum(a[:1].nbytes for a in table.arrays.values()))
        step = max(1, UNIT_BYTES // row_bytes)
        self.units = [
            Unit(
                path,
                start,
                min(step, rows - start),
                f"rows {start}-{min(rows, start + step) - 1}",
                start,
            )
            for start in range(0, rows, step)
        ]

    def read(self, unit: Unit, columns: list[str] | None = None) -> Iterator[Chunk]:
        stop = unit.index + (unit.rows or 0)
        names = columns if columns is not None else list(self._arrays)
        chunk = {k: np.array(self._arrays[k][unit.index : stop]) for k in names}
        for name in names:
            _release(self._arrays[name], unit.index, stop)
        yield chunk

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())


def _release(array: np.ndarray, start: int, stop: int) -> None:
    """Drop a memory map's pages for rows already copied, so they leave this process's resident
    memory (the kernel keeps them in its page cache); a stream of a file larger than memory
    would otherwise end with the whole file resident."""
    handle = getattr(array, "_mmap", None)
    if handle is None or not hasattr(mmap, "MADV_DONTNEED") or array.ndim == 0:
        return
    row = array[:1].nbytes
    lead = int(getattr(array, "offset", 0)) % mmap.ALLOCATIONGRANULARITY
    first = lead + start * row
    first -= first % mmap.PAGESIZE
    end = min(len(handle), lead + stop * row)
    if end > first:
        handle.madvise(mmap.MADV_DONTNEED, first, end - first)
