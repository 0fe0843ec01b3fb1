"""What a streamed source is made of: units (a row group, a record batch, a range of rows, a
group of image files) that can be read, shuffled and shared between ranks on their own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.data import DataError, Format

Chunk = dict[str, np.ndarray]


@dataclass(frozen=True)
class Unit:
    """One readable piece of a source; `rows` is None when only reading it tells (CSV).

    `start` is the rows of the same file before this unit, so that a problem found in the unit
    names its sample counted from the file's first row, as the whole-file reader does."""

    path: Path
    index: int
    rows: int | None
    where: str
    start: int = 0

    @property
    def label(self) -> str:
        return f"{self.path}: {self.where}" if self.where else str(self.path)


class Source(Protocol):
    """A data set on disk, read unit by unit; `exact` says the units' row counts are exact."""

    format: Format
    path: Path
    units: list[Unit]
    exact: bool
    skipped: list[str]

    def read(self, unit: Unit, columns: list[str] | None = None) -> Iterator[Chunk]: ...

    def nbytes(self) -> int: ...


class BadDataWarning(UserWarning):
    """Data skipped because the spec allows it (`bad_data: skip`); the message counts it."""


def files_in(path: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """A file, or the files of a folder with one of `suffixes`, in sorted order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such data file or folder")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not found:
        raise DataError(f"{path}: a folder with no {what} files ({', '.join(suffixes)})")
    return found


def merge(chunks: list[Chunk]) -> Chunk:
    """Chunks of the same columns as one chunk (no copy for a single chunk); empty chunks, the
    units `bad_data: skip` dropped, are left out."""
    chunks = [c for c in chunks if c]
    if len(chunks) <= 1:
        return chunks[0] if chunks else {}
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def rows_of(chunk: Chunk) -> int:
    return len(next(iter(chunk.values()))) if chunk else 0
