"""Parquet, Arrow/Feather and CSV files read with pyarrow: row groups, record batches, and CSV
chunks with the column types fixed from the first block, so a later block cannot change them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import DataError, Format
from engine.read_progress import RowCounter, reading
from engine.streaming.units import Chunk, Unit, files_in

_CSV_BLOCK_BYTES = 4 << 20


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise DataError(
            "Parquet, Arrow and streamed CSV data need pyarrow, which is not installed: "
            "pip install 'modelspec[data]'"
        ) from None
    return pyarrow


def column_array(column: Any) -> np.ndarray:
    """A pyarrow column as NumPy: numbers as they are (nulls as NaN), fixed-size lists as extra
    axes, text as str."""
    pa = _pyarrow()
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    shape = [len(column)]
    while pa.types.is_fixed_size_list(column.type):
        shape.append(column.type.list_size)
        column = column.flatten()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=str).reshape(shape)
    if pa.types.is_dictionary(column.type):
        return np.asarray(column.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=str)
    if column.null_count and pa.types.is_integer(column.type):
        column = column.cast(pa.float64())
    return column.to_numpy(zero_copy_only=False).reshape(shape)


def _chunk(table: Any) -> Chunk:
    return {name: column_array(table.column(name)) for name in table.column_names}


def _units(file: Path, counts: list[int], what: str) -> list[Unit]:
    """A unit per block of `file` (`counts` rows each), each knowing the rows before it."""
    starts = itertools.accumulate(counts, initial=0)
    return [
        Unit(file, i, n, f"{what} {i}", start)
        for i, (n, start) in enumerate(zip(counts, starts, strict=False))
    ]


class ParquetSource:
    """A Parquet file or a folder of them; one unit per row group."""

    format: Format = "parquet"
    exact = True

    def __init__(self, path: Path, bad_data: str) -> None:
        self.path = path
        self.skipped: list[str] = []
        self.units: list[Unit] = []
        _pyarrow()
        import pyarrow.parquet as pq

        self._pq = pq
        for file in files_in(path, (".parquet", ".pq"), "Parquet"):
            try:
                meta = pq.ParquetFile(file).metadata
            except (OSError, ValueError) as exc:
                if bad_data == "skip":
                    self.skipped.append(f"{file}: not a readable Parquet file ({exc})")
                    continue
                raise DataError(f"{file}: not a readable Parquet file ({exc})") from exc
            counts = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            self.units += _units(file, counts, "row group")

    def read(self, unit: Unit, columns: list[str] | None = None) -> Iterator[Chunk]:
        try:
            table = self._pq.ParquetFile(unit.path).read_row_group(unit.index, columns=columns)
        except (OSError, ValueError) as exc:
            raise DataError(f"{unit.label}: cannot be read ({exc})") from exc
        yield _chunk(table)

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in {u.path for u in self.units})


class ArrowSource:
    """An Arrow IPC (Feather v2) file or a folder of them, memory-mapped; one unit per record
    batch."""

    format: Format = "arrow"
    exact = True

    def __init__(self, path: Path, bad_data: str) -> None:
        self.path = path
        self.skipped: list[str] = []
        self.units: list[Unit] = []
        for file in files_in(path, (".arrow", ".feather", ".ipc"), "Arrow"):
            try:
                reader = self._open(file)
                counts = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
            except DataError as exc:
                if bad_data == "skip":
                    self.skipped.append(str(exc))
                    continue
                raise
            self.units += _units(file, counts, "record batch")

    @staticmethod
    def _open(file: Path) -> Any:
        pa = _pyarrow()
        try:
            return pa.ipc.open_file(pa.memory_map(str(file), "r"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{file}: not a readable Arrow/Feather file ({exc})") from exc

    def read(self, unit: Unit, columns: list[str] | None = None) -> Iterator[Chunk]:
        batch = self._open(unit.path).get_batch(unit.index)
        if columns is not None:
            batch = batch.select(columns)
        yield {name: column_array(batch.column(name)) for name in batch.schema.names}

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in {u.path for u in self.units})


class CsvSource:
    """CSV files with a header row, read in blocks by pyarrow's streaming reader; one unit per
    file. Integer columns are read as float64 so that a later block holding a decimal cannot
    contradict the first; a row of the wrong width is an error naming its line, or skipped."""

    format: Format = "csv"
    exact = True

    def __init__(self, path: Path, bad_data: str) -> None:
        self.path = path
        self.skipped: list[str] = []
        self._bad_data = bad_data
        self._problem: str | None = None
        self._types: dict[Path, dict[str, Any]] = {}
        self._lines = _FileLines()
        with reading(path, "count") as progress:
            self.units = [
                Unit(file, 0, self._count(file, progress), "")
                for file in files_in(path, (".csv",), "CSV")
            ]

    def _reader(self, file: Path, columns: list[str] | None = None) -> Any:
        pa = _pyarrow()
        import pyarrow.csv as pcsv

        def on_bad_row(row: Any) -> str:
            line = f"line {self._lines.line(file, row.number)}" if row.number else "a row"
            problem = (
                f"{file}: {line}: {row.actual_columns} cells but the header names "
                f"{row.expected_columns} columns"
            )
            if self._bad_data != "skip":
                self._problem = problem
                return "error"
            if problem not in self.skipped:
                self.skipped.append(problem)
            return "skip"

        convert = pcsv.ConvertOptions(
            column_types=self._types.get(file, {}), include_columns=columns
        )
        try:
            return pcsv.open_csv(
                str(file),
                read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=False),
                parse_options=pcsv.ParseOptions(invalid_row_handler=on_bad_row),
                convert_options=convert,
            )
        except pa.ArrowInvalid as exc:
            raise self._error(file, exc) from exc

    def _error(self, file: Path, exc: Exception) -> DataError:
        """The bad row the handler saw, else pyarrow's own words."""
        problem, self._problem = self._problem, None
        return DataError(problem or f"{file}: not a readable CSV file ({exc})")

    def _count(self, file: Path, progress: RowCounter) -> int:
        """Rows in the file (one pass, which also fixes the column types and finds bad rows);
        `progress` hears the rows of the whole source counted so far."""
        pa = _pyarrow()
        reader = self._reader(file)
        self._types[file] = {
            f.name: pa.float64() if pa.types.is_integer(f.type) else f.type for f in reader.schema
        }
        reader = self._reader(file)
        count = 0
        try:
            for batch in reader:
                count += batch.num_rows
                progress(progress.rows + batch.num_rows)
        except pa.ArrowInvalid as exc:
            raise self._error(file, exc) from exc
        return count

    def read(self, unit: Unit, columns: list[str] | None = None) -> Iterator[Chunk]:
        pa = _pyarrow()
        reader = self._reader(unit.path, columns)
        try:
            for batch in reader:
                yield {n: column_array(batch.column(n)) for n in batch.schema.names}
        except pa.ArrowInvalid as exc:
            raise self._error(unit.path, exc) from exc

    def nbytes(self) -> int:
        return sum(u.path.stat().st_size for u in self.units)


class _FileLines:
    """The file line of pyarrow's row number: pyarrow counts rows (the header is row 1) and
    skips blank lines, so after a blank line its number is not the line an editor shows.
    Bad rows come in file order, so each file is scanned once, onward from the last answer."""

    def __init__(self) -> None:
        self._at: dict[Path, tuple[int, int, int]] = {}  # rows seen, lines read, byte offset

    def line(self, file: Path, row: int) -> int:
        rows, lines, offset = self._at.get(file, (0, 0, 0))
        if row <= rows:
            rows, lines, offset = 0, 0, 0
        with file.open("rb") as handle:
            handle.seek(offset)
            for text in iter(handle.readline, b""):
                lines += 1
                offset += len(text)
                if text.strip(b"\r\n"):
                    rows += 1
                    if rows == row:
                        break
        self._at[file] = (rows, lines, offset)
        return lines
