"""Bad data names its file and row (or row group, or image), or is skipped and counted."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.config.data import DataSource
from engine.data import DataError
from engine.streaming import BadDataWarning, arrays, open_stream
from tests.streaming import files
from tests.streaming.files import (
    SIGNATURE,
    WIDTH,
    write_csv,
    write_images,
    write_parquet,
)

pytest.importorskip("pyarrow")


def test_corrupt_parquet_file_is_named(tmp_path: Path) -> None:
    source = write_parquet(tmp_path)
    bad = tmp_path / "parts" / "c.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"c\.parquet: not a readable Parquet file"):
        open_stream(DataSource(**source), tmp_path, SIGNATURE)
    with pytest.warns(BadDataWarning, match=r"skipped 1 .*c\.parquet"):
        stream = open_stream(DataSource(**source, bad_data="skip"), tmp_path, SIGNATURE)
    assert len(stream) == 300


def test_csv_row_of_the_wrong_width_names_its_line(tmp_path: Path) -> None:
    source = write_csv(tmp_path)
    path = Path(source["path"])
    lines = path.read_text().splitlines()
    lines[5] += ",9"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d\.csv: line 6: 8 cells but the header names 7"):
        open_stream(DataSource(**source), tmp_path, SIGNATURE)
    with pytest.warns(BadDataWarning, match="skipped 1"):
        stream = open_stream(DataSource(**source, bad_data="skip"), tmp_path, SIGNATURE)
    assert len(stream) == 299


def _table(x: np.ndarray) -> Any:
    import pyarrow as pa

    return pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 6), "y": [0] * 40})


def _nan_parquet(folder: Path, x: np.ndarray) -> dict[str, str]:
    import pyarrow.parquet as pq

    pq.write_table(_table(x), folder / "n.parquet", row_group_size=20)
    return {"path": "n.parquet", "x": "x", "target": "y"}


def _nan_arrow(folder: Path, x: np.ndarray) -> dict[str, str]:
    import pyarrow.feather as feather

    feather.write_feather(_table(x), folder / "n.feather", chunksize=20)
    return {"path": "n.feather", "x": "x", "target": "y"}


def _nan_npz(folder: Path, x: np.ndarray) -> dict[str, str]:
    np.savez(folder / "n.npz", x=x, y=np.zeros(40, np.int64))
    return {"path": "n.npz", "x": "x", "y": "y"}


# Each file splits its 40 rows into units of 20; the NaN is in row 25 of the file.
NAN_FILES = [
    (_nan_parquet, r"\(in row group 1\)"),
    (_nan_arrow, r"\(in record batch 1\)"),
    (_nan_npz, r"\(in rows 20-39\)"),
]


@pytest.mark.parametrize(("write", "unit"), NAN_FILES)
@pytest.mark.parametrize("bad_data", ["error", "skip"])
@pytest.mark.parametrize("buffer", [5, 10_000], ids=["buffer-under-a-unit", "buffer-over-all"])
def test_nan_names_its_sample_counted_from_the_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write: Any,
    unit: str,
    bad_data: str,
    buffer: int,
) -> None:
    monkeypatch.setattr(arrays, "UNIT_BYTES", 20 * (6 * 4 + 8))
    x = np.ones((40, 6), np.float32)
    x[25, 2] = np.nan
    config = DataSource(
        **write(tmp_path, x), streaming=True, bad_data=bad_data, shuffle_buffer=buffer
    )
    stream = open_stream(config, tmp_path, SIGNATURE)
    assert [u.start for u in stream.source.units] == [0, 20]
    message = rf"n\.\w+: .*sample 25 .*NaN.*{unit}"
    if bad_data == "error":
        with pytest.raises(DataError, match=message):
            list(stream.batches(8))
        return
    with pytest.warns(BadDataWarning, match=rf"skipped 1 .*{message}"):
        got = list(stream.batches(8))
    assert sum(len(b[0]["features"]) for b in got) == 20


def test_unreadable_image_is_named_or_skipped(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    root = write_images(tmp_path)
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    source = {"path": str(root), "format": "images", "image_size": [8, 8]}
    signature = SIGNATURE.__class__(
        (SIGNATURE.inputs[0].__class__("features", (8, 8, 3)),),
        (SIGNATURE.outputs[0].__class__("label", (2,), "sparse_categorical_crossentropy"),),
    )
    with pytest.raises(DataError, match=r"broken\.png: not a readable image"):
        open_stream(DataSource(**source), tmp_path, signature)
    with pytest.warns(BadDataWarning, match=r"skipped 1 .*broken\.png"):
        skipping = open_stream(DataSource(**source, bad_data="skip"), tmp_path, signature)
        got = list(skipping.batches(4, shuffle=False))
    assert sum(len(b[0]["features"]) for b in got) == 10


def _one_bad_row_group(tmp_path: Path) -> DataSource:
    """The 300-row Parquet source with a NaN in row group 1 of a.parquet's 32-row groups:
    `bad_data: skip` drops that group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = write_parquet(tmp_path)
    x, y = files.arrays()
    x[40, 2] = np.nan
    column = pa.FixedSizeListArray.from_arrays(pa.array(x[:200].ravel()), WIDTH)
    part = pa.table({"x": column, "y": y[:200]})
    pq.write_table(part, tmp_path / "parts" / "a.parquet", row_group_size=32)
    return DataSource(**source, shuffle_buffer=40, bad_data="skip")


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("start", [1, 3, 5, 9, 14])
def test_a_resumed_epoch_in_skip_mode_continues_where_the_whole_one_was(
    tmp_path: Path, start: int, shuffle: bool
) -> None:
    """A unit `bad_data: skip` drops gives no rows, so the rows before a resume point are only
    known by reading what precedes it: counting the dropped unit's rows from the file's
    metadata would start the resumed epoch that many rows late."""
    stream = open_stream(_one_bad_row_group(tmp_path), tmp_path, SIGNATURE)
    with pytest.warns(BadDataWarning, match="skipped 1"):
        whole = [b[0]["features"] for b in stream.batches(16, seed=1, shuffle=shuffle)]
    assert sum(len(b) for b in whole) == 300 - 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadDataWarning)
        resumed = stream.batches(16, seed=1, shuffle=shuffle, start_batch=start)
        got = [b[0]["features"] for b in resumed]
    assert [b.tobytes() for b in got] == [b.tobytes() for b in whole[start:]]


def test_counts_in_skip_mode_are_the_rows_given_once_read(tmp_path: Path) -> None:
    """Only reading finds the unit `bad_data: skip` drops: until then the counts are the units'
    declared rows, from then on the rows the epochs give, for the whole stream and each shard
    (data-parallel ranks still agree on the declared counts, as each reads its own units)."""
    stream = open_stream(_one_bad_row_group(tmp_path), tmp_path, SIGNATURE)
    assert stream.rows() == len(stream) == 300
    with pytest.warns(BadDataWarning, match="skipped 1"):
        got = [len(b[0]["features"]) for b in stream.batches(16, seed=1)]
    assert sum(got) == 300 - 32
    assert stream.rows(seed=1) == len(stream) == sum(got)
    assert stream.steps(16, seed=1) == len(got)
    assert sum(stream.shard(r, 2).rows(seed=1) for r in range(2)) == sum(got)
    assert stream.declared_rows(seed=1) == 300
