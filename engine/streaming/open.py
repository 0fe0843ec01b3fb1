"""Open a spec's data source: in memory when it is small (today's fast path), as a `Stream`
when it is large or the spec asks for streaming; the format from `format` or the path."""

from __future__ import annotations

from pathlib import Path

from engine.config.data import DataSource, ImageOptions
from engine.data import (
    DataError,
    DataSchema,
    Dataset,
    Format,
    ModelSignature,
    load_dataset,
    resolve_path,
)
from engine.streaming.arrays import ArraySource
from engine.streaming.folders import IMAGE_SUFFIXES, TEXT_SUFFIXES, FolderSource
from engine.streaming.pipeline import Stream
from engine.streaming.tables import ArrowSource, CsvSource, ParquetSource
from engine.streaming.units import Source

# `streaming: auto` streams a source larger than this on disk (images: decoded).
STREAM_ABOVE_BYTES = 512 << 20

_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".npz": "npz",
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
_IN_MEMORY_READERS = frozenset({"csv", "npz", "npy"})


def data_format(source: DataSource, path: Path) -> Format:
    """The spec's `format`, else the file's suffix, else what a folder holds."""
    if source.format is not None:
        return source.format
    if path.is_file() or path.suffix.lower() in _SUFFIXES:
        found = _SUFFIXES.get(path.suffix.lower())
        if found is None:
            raise DataError(
                f"{path}: unknown data format {path.suffix!r}; expected one of "
                f"{', '.join(sorted(_SUFFIXES))}, or set `format`"
            )
        return found
    if not path.is_dir():
        raise DataError(f"{path}: no such data file or folder")
    suffixes = {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
    for suffix, kind in _SUFFIXES.items():
        if suffix in suffixes and kind not in ("npz", "npy"):
            return kind
    if suffixes & set(IMAGE_SUFFIXES):
        return "images"
    if suffixes & set(TEXT_SUFFIXES):
        return "text"
    raise DataError(f"{path}: cannot tell the data format of this folder; set `format`")


def _source(source: DataSource, path: Path, kind: Format, base_dir: Path) -> Source:
    if kind == "parquet":
        return ParquetSource(path, source.bad_data)
    if kind == "arrow":
        return ArrowSource(path, source.bad_data)
    if kind == "csv":
        return CsvSource(path, source.bad_data)
    if kind in ("images", "text"):
        return FolderSource(path, source, kind)
    labels = (
        resolve_path(source.y, base_dir) if kind == "npy" and isinstance(source.y, str) else None
    )
    return ArraySource(path, labels)


def open_stream(
    source: DataSource,
    base_dir: Path,
    signature: ModelSignature,
    schema: DataSchema | None = None,
    *,
    need_targets: bool = True,
    dtype: str = "float32",
) -> Stream:
    """The source as a Stream, checked against the model on its first unit."""
    path = resolve_path(source.path, base_dir)
    reader = _source(source, path, data_format(source, path), base_dir)
    label_key = getattr(reader, "label_key", None)
    stream = Stream(
        reader, source, signature, schema, label_key, need_targets=need_targets, dtype=dtype
    )
    if schema is None and isinstance(reader, FolderSource):
        stream.schema = _folder_schema(stream.schema, reader, source)
    stream.warn_skipped(0)
    return stream


def _folder_schema(made: DataSchema, reader: FolderSource, source: DataSource) -> DataSchema:
    """A folder's schema remembers its class names (predictions name them) and, for images,
    how they were decoded (predict decodes new images alike)."""
    update: dict[str, object] = {}
    if made.outputs and reader.class_names:
        update["classes"] = {name: list(reader.class_names) for name in made.outputs}
    if reader.format == "images":
        update["images"] = ImageOptions.of(source)
    return made.model_copy(update=update)


def open_data(
    source: DataSource,
    base_dir: Path,
    signature: ModelSignature,
    schema: DataSchema | None = None,
    *,
    need_targets: bool = True,
    dtype: str = "float32",
    streaming: bool | None = None,
) -> tuple[Dataset | Stream, DataSchema]:
    """The source in memory or streamed, as `streaming` (else the spec, else its size) says."""
    path = resolve_path(source.path, base_dir)
    kind = data_format(source, path)
    choice = source.streaming if streaming is None else streaming
    small = path.is_file() and path.stat().st_size <= STREAM_ABOVE_BYTES
    if choice is False or (choice == "auto" and small and kind in _IN_MEMORY_READERS):
        return read_whole(source, base_dir, signature, schema, need_targets, dtype)
    stream = open_stream(
        source, base_dir, signature, schema, need_targets=need_targets, dtype=dtype
    )
    if choice is True or (choice == "auto" and stream.source.nbytes() > STREAM_ABOVE_BYTES):
        return stream, stream.schema
    return stream.to_dataset(), stream.schema


def read_whole(
    source: DataSource,
    base_dir: Path,
    signature: ModelSignature,
    schema: DataSchema | None = None,
    need_targets: bool = True,
    dtype: str = "float32",
) -> tuple[Dataset, DataSchema]:
    """The source in memory whatever its size: CSV, NPZ and NPY by today's readers, the other
    formats through their stream."""
    path = resolve_path(source.path, base_dir)
    if data_format(source, path) in _IN_MEMORY_READERS:
        return load_dataset(
            source, base_dir, signature, schema, need_targets=need_targets, dtype=dtype
        )
    stream = open_stream(
        source, base_dir, signature, schema, need_targets=need_targets, dtype=dtype
    )
    return stream.to_dataset(), stream.schema
