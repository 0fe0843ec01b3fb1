"""Load a spec's training, validation and test data (CSV, NPZ, NPY) and prove it fits the model.

Every mismatch between a data file and the model (a missing column or key, a wrong width or
rank, a label out of range, a NaN in an input) is found here, before any training starts, and
raised as a `DataError` naming the file, the column or key, and what the model expects.
String labels become class ids in sorted order; the `DataSchema` that records the columns and
the classes is stored with the trained model so that evaluation and prediction read new files
the same way and write predictions back as the original labels. Nothing in a data file is ever
executed: arrays are read with `allow_pickle=False`, and NPY files and uncompressed NPZ members
are memory-mapped rather than copied.
"""

from __future__ import annotations

import bisect
import csv
import difflib
import io
import itertools
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from engine.atomic import atomic_write_bytes
from engine.config.data import DataSource, ImageOptions, Selection
from engine.read_progress import RowCounter, reading

Shape = tuple[int | None, ...]
TargetKind = Literal["class_ids", "one_hot", "binary", "values"]
Format = Literal["csv", "npz", "npy", "parquet", "arrow", "images", "text"]

# Formats of named columns (stacked into samples) rather than named arrays.
COLUMNAR = frozenset({"csv", "parquet", "arrow"})
# Formats whose arrays default to the keys `x` and `y`.
_XY_KEYS = frozenset({"npz", "images", "text"})

_NAN_CHUNK = 1 << 20
# Rows a CSV is parsed and converted in at a time, and progress is told after.
_CSV_CHUNK_ROWS = 1 << 16
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")

# How a loss wants its labels; every other loss takes values shaped like the output.
TARGET_KINDS: dict[str, TargetKind] = {
    "sparse_categorical_crossentropy": "class_ids",
    "categorical_crossentropy": "one_hot",
    "binary_crossentropy": "binary",
}


class DataError(ValueError):
    """A data file that cannot be read or does not fit the model; the message says which and why."""


class UnreadableDataError(DataError):
    """A data file that is missing or cannot be opened (bad usage rather than bad data)."""


# --- the spec's `data` section -------------------------------------------------------------


# --- what the model expects ------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """A model input: its name, its shape without the batch dimension, its dtype name."""

    name: str
    shape: Shape
    dtype: str = "float32"


@dataclass(frozen=True)
class OutputSpec:
    """A model output, and the loss that decides what its labels must look like."""

    name: str
    shape: Shape
    loss: str = "mean_squared_error"
    from_logits: bool = False

    @property
    def kind(self) -> TargetKind:
        return TARGET_KINDS.get(self.loss, "values")

    @property
    def width(self) -> int | None:
        return self.shape[-1] if self.shape else 1


@dataclass(frozen=True)
class ModelSignature:
    """The model's inputs and outputs, in the model's order."""

    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]


class DataSchema(BaseModel):
    """How the training data mapped onto the model; saved with the model for evaluate and predict.

    `inputs`/`outputs` give, per model input/output name, the CSV columns (or the one array key)
    it was read from; `classes` gives, per output trained on string labels (or on an image or
    text folder's class subfolders), the labels in class-id order; `images`, for a model
    trained on an image folder, how its images were decoded.
    """

    model_config = ConfigDict(extra="forbid")

    format: Format
    inputs: dict[str, list[str]]
    outputs: dict[str, list[str]] = {}
    classes: dict[str, list[str]] = {}
    images: ImageOptions | None = None


@dataclass
class Dataset:
    """Arrays keyed by the model's input and output names, ready for `fit`/`evaluate`/`predict`."""

    source: str
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))


# --- raw tables ------------------------------------------------------------------------------


@dataclass
class RowLines:
    """The file line of each row of a CSV read whole, kept only where the count jumps (after a
    blank line, or a quoted cell over several lines) rather than as a number per row."""

    rows: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def line(self, row: int) -> int:
        at = bisect.bisect_right(self.rows, row) - 1
        return self.lines[at] + row - self.rows[at]


@dataclass
class Table:
    """What a file holds before it is fitted to the model: named columns or named arrays.

    `lines` gives a row's line in a CSV read whole; `first_row` is the rows of the same
    file before this table (a streamed chunk), so a problem names its sample in the file."""

    path: Path
    format: Format
    arrays: dict[str, np.ndarray]
    lines: RowLines | None = None
    first_row: int = 0

    @property
    def columnar(self) -> bool:
        return self.format in COLUMNAR

    @property
    def noun(self) -> str:
        return "column" if self.columnar else "key"

    def get(self, name: str, expects: str) -> np.ndarray:
        if name not in self.arrays:
            known = list(self.arrays)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; it has {_listing(known)}"
            raise DataError(f"{self.path}: no {self.noun} {name!r} ({expects}){hint}")
        return self.arrays[name]


def _listing(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _read_csv(path: Path, progress: RowCounter | None = None) -> Table:
    """Columns of a CSV with a header row: float where every cell parses, else strings."""
    return _csv_table(path, lambda: _open(path, "r", newline=""), progress)


def csv_table(text: str, name: str) -> Table:
    """A CSV held in memory (a request body), read exactly as a CSV file is; `name` is its label."""
    return _csv_table(Path(name), lambda: io.StringIO(text, newline=""), None)


def array_table(
    arrays: Mapping[str, np.ndarray], name: str, format: Literal["csv", "npz"] = "npz"
) -> Table:
    """Named arrays held in memory (a request body): CSV-like columns or NPZ-like arrays."""
    return Table(Path(name), format, dict(arrays))


def _csv_table(
    path: Path, open_lines: Callable[[], ContextManager[Iterable[str]]], progress: RowCounter | None
) -> Table:
    """Read in chunks of rows, each column converted chunk by chunk (no list of every row).

    A column whose first chunks were all numbers and a later one holds text is read again,
    as text from the start: its numbers' original spelling is then the label."""
    text: set[int] = set()
    while True:
        with open_lines() as lines:
            table, mixed = _csv_pass(path, lines, text, progress)
        if not mixed:
            return table
        text |= mixed


def _csv_pass(
    path: Path, lines: Iterable[str], text: set[int], progress: RowCounter | None
) -> tuple[Table, set[int]]:
    """One pass over the rows: the table, and the columns found to mix numbers and text."""
    reader = csv.reader(lines)
    try:
        header = _csv_header(path, next((row for row in reader if row), None))
        pieces: list[list[np.ndarray]] = [[] for _ in header]
        read = 0
        row_lines = RowLines()
        numbered = _numbered_rows(reader)
        while rows := list(itertools.islice(numbered, _CSV_CHUNK_ROWS)):
            for at, (line, row) in enumerate(rows, read):
                if len(row) != len(header):
                    raise DataError(
                        f"{path}:{line}: {len(row)} cells but the header names "
                        f"{len(header)} columns"
                    )
                if not row_lines.rows or row_lines.line(at) != line:
                    row_lines.rows.append(at)
                    row_lines.lines.append(line)
            for i, cells in enumerate(zip(*(row for _, row in rows), strict=True)):
                pieces[i].append(_text(cells) if i in text else _column(cells))
            read += len(rows)
            if progress is not None:
                progress(read)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    kinds = [{piece.dtype.kind for piece in column} for column in pieces]
    mixed = {i for i, found in enumerate(kinds) if len(found) > 1}
    arrays = {
        name: np.concatenate(column) if column else np.array([], dtype=np.float64)
        for name, column in zip(header, pieces, strict=True)
    }
    return Table(path, "csv", arrays, row_lines), mixed


def _numbered_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The rows after the header, each with the file line it starts on; blank lines are
    skipped but counted, and a quoted cell spanning lines moves the count by all of them."""
    start = reader.line_num + 1
    for row in reader:
        if row:
            yield start, row
        start = reader.line_num + 1


def _csv_header(path: Path, row: list[str] | None) -> list[str]:
    if not row or not any(row):
        raise DataError(f"{path}: empty CSV file; expected a header row of column names")
    header = [name.strip() for name in row]
    duplicates = sorted({n for n in header if header.count(n) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {_listing(duplicates)} in the header")
    return header


def _column(cells: Sequence[str]) -> np.ndarray:
    try:
        return np.array([float(c) if c.strip() else np.nan for c in cells], dtype=np.float64)
    except ValueError:
        return _text(cells)


def _text(cells: Sequence[str]) -> np.ndarray:
    return np.array([c.strip() for c in cells], dtype=str)


def _open(path: Path, mode: str, **kwargs: Any) -> Any:
    try:
        return path.open(mode, **kwargs)
    except OSError as exc:
        raise UnreadableDataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


# NumPy parses an NPY header with ast.literal_eval, so a damaged one can raise SyntaxError or
# tokenize.TokenError besides ValueError; a damaged ZIP may raise any of zipfile's errors.
_ARRAY_DAMAGE = (
    OSError,
    EOFError,
    ValueError,
    SyntaxError,
    tokenize.TokenError,
    zipfile.BadZipFile,
    NotImplementedError,
    zlib.error,
)


def _read_npy(path: Path, progress: RowCounter | None = None) -> Table:
    """Memory-mapped: its rows are read (and counted) as the fit first goes over them."""
    # np.load opens a file starting like a ZIP as an NpzFile (left open), not as an array.
    with _open(path, "rb") as handle:
        magic = handle.read(len(np.lib.format.MAGIC_PREFIX))
    if magic != np.lib.format.MAGIC_PREFIX:
        raise DataError(f"{path}: not a readable NPY array (no NPY header)")
    del progress
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except _ARRAY_DAMAGE as exc:
        raise DataError(f"{path}: not a readable NPY array ({exc})") from exc
    return Table(path, "npy", {path.stem: array})


def _read_npz(path: Path, progress: RowCounter | None = None) -> Table:
    """Stored members memory-mapped (counted as the fit goes over them), compressed ones
    inflated whole, as NumPy does."""
    del progress
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
            arrays = {i.filename[:-4]: _npz_member(path, archive, i) for i in members}
    except _ARRAY_DAMAGE as exc:
        raise DataError(f"{path}: not a readable NPZ archive ({exc})") from exc
    return Table(path, "npz", arrays)


def _npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map a stored (uncompressed) member in place; read a compressed one into memory."""
    if info.compress_type == zipfile.ZIP_STORED:
        with path.open("rb") as handle:
            handle.seek(info.header_offset)
            local = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
            handle.seek(info.header_offset + _LOCAL_HEADER.size + local[-2] + local[-1])
            major, _ = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
        if dtype.hasobject:
            raise ValueError(f"member {info.filename!r} holds Python objects, which are not loaded")
        if int(np.prod(shape)) > 0:
            order: Literal["C", "F"] = "F" if fortran else "C"
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


_READERS = {".csv": _read_csv, ".npy": _read_npy, ".npz": _read_npz}


def read_table(path: Path, progress: RowCounter | None = None) -> Table:
    """Read a CSV, NPY or NPZ file by its suffix, telling `progress` the rows read so far."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UnreadableDataError(
            f"{path}: unknown data format {path.suffix!r}; expected .csv, .npz or .npy"
        )
    if not path.is_file():
        raise UnreadableDataError(f"{path}: no such data file")
    return reader(path, progress)


# --- fitting a table to the model ------------------------------------------------------------


def _by_name(
    selection: Selection | None, names: Sequence[str], what: str, path: Path
) -> dict[str, list[str]] | None:
    """Normalise `x`/`y` to {model name: [columns or key]}; None when not given."""
    if selection is None:
        return None
    if isinstance(selection, dict):
        unknown = [k for k in selection if k not in names]
        if unknown:
            raise DataError(
                f"{path}: {what} {_listing(unknown)} named in the data section; "
                f"the model's {what}s are {_listing(list(names))}"
            )
        missing = [n for n in names if n not in selection]
        if missing:
            raise DataError(f"{path}: no data given for model {what} {_listing(missing)}")
        return {k: [v] if isinstance(v, str) else list(v) for k, v in selection.items()}
    if len(names) != 1:
        raise DataError(
            f"{path}: the model has {len(names)} {what}s ({_listing(list(names))}); "
            f"give `{what[0]}` as a map keyed by those names"
        )
    return {names[0]: [selection] if isinstance(selection, str) else list(selection)}


def _default_targets(
    source: DataSource, outputs: Sequence[str], table: Table
) -> dict[str, list[str]] | None:
    named = source.target if source.target is not None else source.y
    target = _by_name(named, outputs, "output", table.path)
    if target is not None or table.format not in _XY_KEYS:
        return target
    if len(outputs) == 1 and "y" in table.arrays:
        return {outputs[0]: ["y"]}
    if all(name in table.arrays for name in outputs):
        return {name: [name] for name in outputs}
    return None


def _default_features(
    source: DataSource, inputs: Sequence[str], table: Table, targets: dict[str, list[str]] | None
) -> dict[str, list[str]]:
    chosen = _by_name(source.x, inputs, "input", table.path)
    if chosen is not None:
        return chosen
    if source.features is not None:
        # docs/spec-format.md: listed features are read in file order, whatever the list order.
        listed = set(source.features)
        ordered = [c for c in table.arrays if c in listed]
        ordered += [c for c in source.features if c not in table.arrays]
        return _by_name(ordered, inputs, "input", table.path) or {}
    if table.columnar and len(inputs) == 1:
        used = {c for cols in (targets or {}).values() for c in cols}
        return {inputs[0]: [c for c in table.arrays if c not in used]}
    if len(inputs) == 1 and table.format == "npy":
        return {inputs[0]: [table.path.stem]}
    if len(inputs) == 1 and "x" in table.arrays:
        return {inputs[0]: ["x"]}
    if all(name in table.arrays for name in inputs):
        return {name: [name] for name in inputs}
    raise DataError(
        f"{table.path}: cannot tell which {table.noun}s feed the model's inputs "
        f"{_listing(list(inputs))}; name them with `x` in the data section"
    )


def _stack(table: Table, names: list[str], expects: str) -> np.ndarray:
    """Columns as an (n, k) matrix, or one array (an NPZ key, a Parquet list column) as it is."""
    if not table.columnar or (len(names) == 1 and table.get(names[0], expects).ndim > 1):
        if len(names) != 1:
            raise DataError(f"{table.path}: give one {table.noun} per name; got {_listing(names)}")
        return table.get(names[0], expects)
    columns = [table.get(name, expects) for name in names]
    for name, column in zip(names, columns, strict=True):
        if column.dtype.kind not in "fiub":
            bad = next(str(v) for v in column if not _is_number(str(v)))
            raise DataError(
                f"{table.path}: column {name!r} holds text such as {bad!r}, but it feeds "
                f"{expects}, which takes numbers"
            )
    return np.stack(columns, axis=1) if columns else np.empty((0, 0))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return not text.strip()
    return True


def _describe(shape: Sequence[int | None]) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def _fit_input(
    table: Table, spec: InputSpec, names: list[str], progress: RowCounter | None = None
) -> np.ndarray:
    expects = f"model input {spec.name!r} of shape {_describe((None, *spec.shape))}"
    array = _stack(table, names, expects)
    where = (
        f"{len(names)} feature columns"
        if table.columnar and array.ndim == 2 and len(names) > 1
        else f"{table.noun} {names[0]!r}"
    )
    if array.ndim != len(spec.shape) + 1:
        hint = (
            "; CSV rows are rank-1 samples: put a Reshape layer first to make them images"
            if table.columnar and len(spec.shape) > 1
            else ""
        )
        raise DataError(
            f"{table.path}: {where}: samples of shape {_describe((None, *array.shape[1:]))} "
            f"(rank {array.ndim}); {expects} needs rank {len(spec.shape) + 1}{hint}"
        )
    for axis, (got, want) in enumerate(zip(array.shape[1:], spec.shape, strict=True), start=1):
        if want is not None and got != want:
            listed = f" ({_listing(names)})" if table.columnar else ""
            raise DataError(
                f"{table.path}: {where}{listed}: width {got} on axis {axis}; {expects} needs {want}"
            )
    array = _cast_input(table, array, spec, where)
    _check_finite(table, array, where, names, progress)
    return array


_INT_KINDS = {"int32": np.int32, "int64": np.int64}
_FLOAT_KINDS = {"float32": np.float32, "float64": np.float64, "float16": np.float16}


def _cast_input(table: Table, array: np.ndarray, spec: InputSpec, where: str) -> np.ndarray:
    """The model's dtype, without a copy when the file already has it (memory maps stay maps)."""
    if spec.dtype in _INT_KINDS:
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or not np.all(np.mod(array, 1) == 0):
                raise DataError(
                    f"{table.path}: {where}: non-integer values; model input {spec.name!r} has "
                    f"dtype {spec.dtype} (token ids)"
                )
        elif array.dtype.kind not in "iub":
            raise DataError(f"{table.path}: {where}: dtype {array.dtype}; expected {spec.dtype}")
        return array.astype(_INT_KINDS[spec.dtype], copy=False)
    if spec.dtype in _FLOAT_KINDS:
        if array.dtype.kind not in "fiub":
            raise DataError(f"{table.path}: {where}: dtype {array.dtype}; expected numbers")
        return array.astype(_FLOAT_KINDS[spec.dtype], copy=False)
    return array


def _check_finite(
    table: Table,
    array: np.ndarray,
    where: str,
    names: list[str],
    progress: RowCounter | None = None,
) -> None:
    """Scan in chunks, so a memory-mapped array is never copied whole; this first pass over a
    memory map is where its rows come off the disk, so it tells `progress`."""
    if array.dtype.kind != "f" or array.size == 0:
        return
    flat = array.reshape(len(array), -1)
    step = max(1, _NAN_CHUNK // max(1, flat.shape[1]))
    for start in range(0, len(flat), step):
        if progress is not None:
            progress(start, len(flat))
        bad = ~np.isfinite(flat[start : start + step])
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            sample = start + row
            if table.lines is not None and len(names) == flat.shape[1]:
                place = f"{table.path}:{table.lines.line(sample)}: column {names[col]!r}"
            elif table.columnar and len(names) == flat.shape[1]:
                place = f"{table.path}: column {names[col]!r}, sample {table.first_row + sample}"
            else:
                place = f"{table.path}: {where}, sample {table.first_row + sample}"
            raise DataError(
                f"{place} holds NaN or infinity; the model's inputs must be finite numbers: "
                "fill or drop the missing values"
            )


def _labels_to_ids(
    table: Table, name: str, column: np.ndarray, classes: list[str] | None
) -> tuple[np.ndarray, list[str]]:
    """String labels -> class ids in sorted order (or in the order the training data fixed)."""
    values = [str(v) for v in column]
    known = classes if classes is not None else sorted(set(values))
    index = {label: i for i, label in enumerate(known)}
    unseen = sorted({v for v in values if v not in index})
    if unseen:
        raise DataError(
            f"{table.path}: {table.noun} {name!r} has labels {_listing(unseen)} that the model was "
            f"not trained on; it knows {_listing(known)}"
        )
    return np.array([index[v] for v in values], dtype=np.int64), known


def _raw_target(
    table: Table, spec: OutputSpec, names: list[str], classes: list[str] | None
) -> tuple[np.ndarray, list[str] | None]:
    expects = f"model output {spec.name!r} of shape {_describe((None, *spec.shape))}"
    if len(names) == 1 and table.get(names[0], expects).dtype.kind in "USO":
        return _labels_to_ids(table, names[0], table.arrays[names[0]], classes)
    array = _stack(table, names, expects)
    if table.columnar and len(names) == 1 and table.arrays[names[0]].ndim == 1:
        array = array[:, 0]
    return np.asarray(array), None


def _fit_target(
    table: Table, spec: OutputSpec, names: list[str], classes: list[str] | None, dtype: str
) -> tuple[np.ndarray, list[str] | None]:
    raw, found = _raw_target(table, spec, names, classes)
    where = f"{table.noun} {names[0]!r}" if len(names) == 1 else f"columns {_listing(names)}"
    if raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
        row = int(np.argwhere(~np.isfinite(raw.reshape(len(raw), -1)))[0][0])
        raise DataError(f"{table.path}: {where} has a missing or NaN label in sample {row}")
    fitted = _TARGET_FITTERS[spec.kind](raw, spec, f"{table.path}: {where}")
    if fitted.dtype.kind == "f":
        fitted = fitted.astype(_FLOAT_KINDS.get(dtype, np.float32), copy=False)
    return fitted, found


def _class_ids(raw: np.ndarray, spec: OutputSpec, where: str) -> np.ndarray:
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise DataError(
            f"{where} has shape {_describe((None, *raw.shape[1:]))}; {spec.loss} on output "
            f"{spec.name!r} needs one class id per sample (one-hot labels need "
            "categorical_crossentropy)"
        )
    if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
        raise DataError(f"{where} holds non-integer labels; {spec.loss} needs class ids")
    ids = raw.astype(np.int64)
    _check_range(ids, spec, where)
    return ids


def _check_range(ids: np.ndarray, spec: OutputSpec, where: str) -> None:
    width = spec.width
    if width is None or len(ids) == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= width:
        bad = low if low < 0 else high
        raise DataError(
            f"{where} has class id {bad}, out of range: output {spec.name!r} has {width} units, "
            f"so labels must be 0..{width - 1}"
        )


def _one_hot(raw: np.ndarray, spec: OutputSpec, where: str) -> np.ndarray:
    width = spec.width
    if raw.ndim == 1 and width is not None and width > 1:
        ids = _class_ids(raw, spec, where)
        return np.eye(width, dtype=np.float32)[ids]
    return _values(raw, spec, where)


def _binary(raw: np.ndarray, spec: OutputSpec, where: str) -> np.ndarray:
    values = _values(raw, spec, where)
    if values.size and (float(values.min()) < 0.0 or float(values.max()) > 1.0):
        bad = float(values.min()) if float(values.min()) < 0.0 else float(values.max())
        raise DataError(
            f"{where} has label {bad:g}, out of range: {spec.loss} on output {spec.name!r} "
            "needs labels between 0 and 1"
        )
    return values


def _values(raw: np.ndarray, spec: OutputSpec, where: str) -> np.ndarray:
    if raw.ndim == 1 and spec.shape == (1,):
        raw = raw[:, None]
    got = raw.shape[1:]
    fits = len(got) == len(spec.shape) and all(
        w is None or g == w for g, w in zip(got, spec.shape, strict=True)
    )
    if not fits:
        raise DataError(
            f"{where} gives labels of shape {_describe((None, *got))} but model output "
            f"{spec.name!r} has shape {_describe((None, *spec.shape))}"
        )
    if raw.dtype.kind not in "fiub":
        raise DataError(f"{where} has dtype {raw.dtype}; output {spec.name!r} needs numbers")
    return raw.astype(np.float32, copy=False) if raw.dtype.kind != "f" else raw


_TARGET_FITTERS = {
    "class_ids": _class_ids,
    "one_hot": _one_hot,
    "binary": _binary,
    "values": _values,
}


# --- the public entry points -------------------------------------------------------------------


def resolve_path(path: str | Path, base_dir: Path) -> Path:
    """A data path as the spec means it: relative to the spec file's folder."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


def load_dataset(
    source: DataSource,
    base_dir: Path,
    signature: ModelSignature,
    schema: DataSchema | None = None,
    *,
    need_targets: bool = True,
    dtype: str = "float32",
) -> tuple[Dataset, DataSchema]:
    """Read `source` and fit it to `signature`, or raise a DataError that names the problem.

    With a `schema` (from the trained model), columns and keys not named in the data section
    are taken from it, and string labels map to the classes the model was trained on; without
    one, a new schema is made from this (training) data. The rows read so far are told to
    the watcher of `engine.read_progress`, if any.
    """

    def fit(table: Table, progress: RowCounter) -> tuple[tuple[Dataset, DataSchema], int]:
        label_key = _attach_npy_labels(table, source, base_dir)
        dataset, made = fit_table(
            table,
            source,
            signature,
            schema,
            label_key,
            need_targets=need_targets,
            dtype=dtype,
            progress=progress,
        )
        return (dataset, made), len(dataset)

    return _read_and_fit(resolve_path(source.path, base_dir), fit)


_Fitted = TypeVar("_Fitted")


def _read_and_fit(path: Path, fit: Callable[[Table, RowCounter], tuple[_Fitted, int]]) -> _Fitted:
    """Read a whole file and fit it to the model, telling the watcher of `engine.read_progress`
    the rows as they are read and the fitted count at the end."""
    with reading(path) as progress:
        fitted, rows = fit(read_table(path, progress), progress)
        progress(rows, rows)
    return fitted


def fit_table(
    table: Table,
    source: DataSource,
    signature: ModelSignature,
    schema: DataSchema | None = None,
    label_key: str | None = None,
    *,
    need_targets: bool = True,
    dtype: str = "float32",
    progress: RowCounter | None = None,
) -> tuple[Dataset, DataSchema]:
    """Fit columns or arrays already read (a whole file, or one block of a stream) to the model;
    `progress` hears of the rows of a memory map as they are first read."""
    outputs = [spec.name for spec in signature.outputs]
    remembered = schema if schema is not None and schema.format == table.format else None
    targets = _targets(source, outputs, table, label_key, need_targets)
    if targets is None and need_targets and remembered is not None and remembered.outputs:
        targets = remembered.outputs
    if targets is None and need_targets:
        raise DataError(
            f"{table.path}: no labels for the model's outputs {_listing(outputs)}; "
            f"name the {table.noun} with `target` (CSV) or `y`"
        )
    for spec in signature.outputs:
        for name in (targets or {}).get(spec.name, []):
            table.get(name, f"the labels of model output {spec.name!r}")
    features = _input_columns(source, table, signature, schema, targets)
    x = {
        spec.name: _fit_input(table, spec, features[spec.name], progress)
        for spec in signature.inputs
    }
    y: dict[str, np.ndarray] = {}
    classes: dict[str, list[str]] = {}
    for spec in signature.outputs:
        if targets is None:
            break
        known = schema.classes.get(spec.name) if schema is not None else None
        y[spec.name], found = _fit_target(table, spec, targets[spec.name], known, dtype)
        if found is not None:
            classes[spec.name] = found
    _check_lengths(table, {**x, **y})
    made = schema or DataSchema(
        format=table.format, inputs=features, outputs=targets or {}, classes=classes
    )
    return Dataset(str(table.path), x, y), made


def prediction_inputs(
    table: Table,
    signature: ModelSignature,
    schema: DataSchema | None,
    progress: RowCounter | None = None,
) -> dict[str, np.ndarray]:
    """The model's inputs from a table of new samples, read as the training data was.

    The one preprocessing path of `modelspec predict` and `modelspec serve`: the stored schema
    picks the columns (or keys), and each input is checked and cast as in training.
    """
    source = DataSource(path=str(table.path))
    features = _input_columns(source, table, signature, schema, None)
    x = {
        spec.name: _fit_input(table, spec, features[spec.name], progress)
        for spec in signature.inputs
    }
    _check_lengths(table, x)
    return x


def read_prediction_inputs(
    path: Path, signature: ModelSignature, schema: DataSchema | None
) -> dict[str, np.ndarray]:
    """`prediction_inputs` of a whole CSV, NPZ or NPY file, its reading told as training's is."""

    def fit(table: Table, progress: RowCounter) -> tuple[dict[str, np.ndarray], int]:
        x = prediction_inputs(table, signature, schema, progress)
        return x, len(next(iter(x.values())))

    return _read_and_fit(path, fit)


def _input_columns(
    source: DataSource,
    table: Table,
    signature: ModelSignature,
    schema: DataSchema | None,
    targets: dict[str, list[str]] | None,
) -> dict[str, list[str]]:
    """Which columns or keys feed each input: the data section's, else the stored schema's."""
    named = source.x is not None or source.features is not None
    if schema is not None and schema.format == table.format and not named:
        return schema.inputs
    inputs = [spec.name for spec in signature.inputs]
    return _default_features(source, inputs, table, targets)


def _targets(
    source: DataSource, outputs: list[str], table: Table, label_key: str | None, needed: bool
) -> dict[str, list[str]] | None:
    """Where the labels are: named in the source, or (when needed) found by the default names."""
    if label_key is not None:
        return _by_name(label_key, outputs, "output", table.path)
    if needed or source.target is not None or source.y is not None:
        return _default_targets(source, outputs, table)
    return None


def _attach_npy_labels(table: Table, source: DataSource, base_dir: Path) -> str | None:
    """For an NPY input file, `y` is the path of a second NPY file holding the labels."""
    if table.format != "npy" or source.y is None:
        return None
    if not isinstance(source.y, str):
        raise DataError(f"{table.path}: for an NPY file, `y` is the path of one NPY file of labels")
    labels = _read_npy(resolve_path(source.y, base_dir))
    table.arrays.update(labels.arrays)
    return next(iter(labels.arrays))


def _check_lengths(table: Table, arrays: Mapping[str, np.ndarray]) -> None:
    counts = {name: len(array) for name, array in arrays.items()}
    if not counts or max(counts.values()) == 0:
        raise DataError(f"{table.path}: no samples")
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise DataError(f"{table.path}: the arrays disagree on the number of samples ({detail})")


# --- predictions -----------------------------------------------------------------------------


def _thresholded(values: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """Class ids from an output: argmax over classes, or a threshold on a sigmoid (or logit)."""
    if spec.kind == "binary" or (spec.width == 1 and spec.kind != "values"):
        return (values > (0.0 if spec.from_logits else 0.5)).astype(np.int64)
    return np.argmax(values, axis=-1)[:, None]


def prediction_columns(
    predictions: Mapping[str, np.ndarray],
    signature: ModelSignature,
    schema: DataSchema | None,
    *,
    probabilities: bool = False,
    files: Sequence[Path] | None = None,
) -> dict[str, list[Any]]:
    """Predictions as named CSV columns: original labels for classifiers, else the raw outputs;
    first the file of each row when the samples were files (images)."""
    columns: dict[str, list[Any]] = {} if files is None else {"file": [str(f) for f in files]}
    for spec in signature.outputs:
        values = np.asarray(predictions[spec.name]).reshape(len(predictions[spec.name]), -1)
        targets = schema.outputs.get(spec.name, []) if schema is not None else []
        prefix = targets[0] if len(targets) == 1 else spec.name
        classes = schema.classes.get(spec.name) if schema is not None else None
        if spec.kind != "values" and not probabilities:
            ids = _thresholded(values, spec)
            names = (
                [prefix] if ids.shape[1] == 1 else [f"{prefix}_{i}" for i in range(ids.shape[1])]
            )
            for i, name in enumerate(names):
                columns[name] = [classes[k] if classes else int(k) for k in ids[:, i]]
            continue
        for i, name in enumerate(_value_names(prefix, values.shape[1], classes)):
            columns[name] = [float(v) for v in values[:, i]]
    return columns


def _value_names(prefix: str, width: int, classes: list[str] | None) -> list[str]:
    if classes and width == len(classes):
        return [f"{prefix}_{label}" for label in classes]
    if classes and width == 1 and len(classes) == 2:
        return [f"{prefix}_{classes[1]}"]
    return [prefix] if width == 1 else [f"{prefix}_{i}" for i in range(width)]


def write_predictions(
    path: Path,
    predictions: Mapping[str, np.ndarray],
    signature: ModelSignature,
    schema: DataSchema | None,
    *,
    probabilities: bool = False,
    files: Sequence[Path] | None = None,
) -> None:
    """Write predictions by the file's suffix: CSV (labels or probabilities, after the samples'
    `files` when they were files), NPY or NPZ; atomically, so a failed write keeps the old file."""
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise DataError(
            f"{path}: unknown output format {path.suffix!r}; expected .csv, .npy or .npz"
        )
    content = writer(path, predictions, signature, schema, probabilities, files)
    try:
        atomic_write_bytes(path, content)
    except OSError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        raise DataError(f"{path}: cannot write the file ({cause.strerror or cause})") from exc


def _write_csv(
    path: Path,
    predictions: Mapping[str, np.ndarray],
    signature: ModelSignature,
    schema: DataSchema | None,
    probabilities: bool,
    files: Sequence[Path] | None,
) -> bytes:
    columns = prediction_columns(
        predictions, signature, schema, probabilities=probabilities, files=files
    )
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values(), strict=True))
    return text.getvalue().encode("utf-8")


def _write_npy(
    path: Path,
    predictions: Mapping[str, np.ndarray],
    signature: ModelSignature,
    schema: DataSchema | None,
    probabilities: bool,
    files: Sequence[Path] | None,
) -> bytes:
    del schema, probabilities, files
    if len(signature.outputs) != 1:
        raise DataError(
            f"{path}: the model has {len(signature.outputs)} outputs; write them to an .npz file"
        )
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(predictions[signature.outputs[0].name]), allow_pickle=False)
    return buffer.getvalue()


def _write_npz(
    path: Path,
    predictions: Mapping[str, np.ndarray],
    signature: ModelSignature,
    schema: DataSchema | None,
    probabilities: bool,
    files: Sequence[Path] | None,
) -> bytes:
    del schema, probabilities, files
    arrays: dict[str, Any] = {
        spec.name: np.asarray(predictions[spec.name]) for spec in signature.outputs
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


_WRITERS = {".csv": _write_csv, ".npy": _write_npy, ".npz": _write_npz}
