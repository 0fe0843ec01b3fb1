"""Every streamed format yields the same samples as the arrays it was written from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config.data import DataSource
from engine.streaming import open_data, open_stream
from tests.streaming.files import ROWS, SIGNATURE, WRITERS, arrays

pytest.importorskip("pyarrow")


def _rows(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    return sorted(r.tobytes() + bytes([int(t)]) for r, t in zip(x, y, strict=True))


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_an_epoch_holds_every_sample_once(kind: str, tmp_path: Path) -> None:
    stream = open_stream(DataSource(**WRITERS[kind](tmp_path)), tmp_path, SIGNATURE)
    got = list(stream.batches(32, seed=5, epoch=0))
    assert len(stream) == ROWS and len(got) == -(-ROWS // 32)
    x = np.concatenate([b[0]["features"] for b in got])
    y = np.concatenate([b[1]["label"] for b in got])
    assert x.dtype == np.float32 and x.shape == (ROWS, 6)
    assert _rows(x, y) == _rows(*arrays())
    assert not np.array_equal(x, arrays()[0]), "the epoch is shuffled"


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_in_memory_and_unshuffled_stream_agree(kind: str, tmp_path: Path) -> None:
    source = DataSource(**WRITERS[kind](tmp_path), streaming=False)
    dataset, _ = open_data(source, tmp_path, SIGNATURE)
    stream = open_stream(source, tmp_path, SIGNATURE)
    x = np.concatenate([b[0]["features"] for b in stream.batches(64, shuffle=False)])
    assert np.array_equal(dataset.x["features"], x)  # type: ignore[union-attr]
    assert np.array_equal(dataset.x["features"], arrays()[0])  # type: ignore[union-attr]


def test_streaming_auto_keeps_small_data_in_memory(tmp_path: Path) -> None:
    data, _ = open_data(DataSource(**WRITERS["parquet"](tmp_path)), tmp_path, SIGNATURE)
    assert not hasattr(data, "batches")
    forced, _ = open_data(
        DataSource(**WRITERS["npy"](tmp_path), streaming=True), tmp_path, SIGNATURE
    )
    assert hasattr(forced, "batches")


def test_string_labels_take_classes_from_every_row_group(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, _ = arrays()
    labels = ["a"] * 100 + ["b"] * 100 + ["c"] * 100
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 6), "y": labels})
    pq.write_table(table, tmp_path / "s.parquet", row_group_size=50)
    stream = open_stream(DataSource(path="s.parquet", x="x", target="y"), tmp_path, SIGNATURE)
    assert stream.schema.classes == {"label": ["a", "b", "c"]}
    ys = np.concatenate([b[1]["label"] for b in stream.batches(64, shuffle=False)])
    assert list(ys) == [0] * 100 + [1] * 100 + [2] * 100
