"""Bad data names its file and row (or row group, or image), or is skipped and counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.data import DataSource
from engine.data import DataError
from engine.streaming import BadDataWarning, open_stream
from tests.streaming.files import SIGNATURE, write_csv, write_images, write_parquet

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


def test_nan_in_a_row_group_names_the_file_and_row_group(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.ones((40, 6), np.float32)
    x[25, 2] = np.nan
    table = pa.table(
        {"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 6), "y": [0] * 40}
    )
    pq.write_table(table, tmp_path / "n.parquet", row_group_size=20)
    stream = open_stream(DataSource(path="n.parquet", x="x", target="y"), tmp_path, SIGNATURE)
    with pytest.raises(DataError, match=r"n\.parquet: .*sample 5 .*NaN.*\(in row group 1\)"):
        list(stream.batches(8, shuffle=False))


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
