"""A CSV row of the wrong width is reported at the line an editor shows, whether the file is
read whole or streamed: blank lines are skipped but counted, a comment line (CSV has no
comments) is a row of its own, and a quoted cell spanning lines counts all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config.data import DataSource
from engine.data import (
    DataError,
    InputSpec,
    ModelSignature,
    OutputSpec,
    array_table,
    csv_table,
    fit_table,
    load_dataset,
    read_table,
)

CASES = [
    # text, the line of the first bad row, of every bad row
    ("a,b\n1,2\n\n3,4\n\n\n5\n", 7, [7]),
    ("\n\na,b\n1,2\n\n1,2,3\n", 6, [6]),
    ("a,b\r\n1,2\r\n\r\n3,4\r\n# a comment, with commas, here\r\n", 5, [5]),
    ("a,b\n# one\n\n# two\n1,2\n\n# three\n", 2, [2, 4, 7]),
]
WHOLE_ONLY = [('a,b\n"two\nlines",1\n\n7\n', 5)]


@pytest.mark.parametrize(("text", "line", "_"), CASES)
def test_read_whole_names_the_real_line(tmp_path: Path, text: str, line: int, _: list[int]) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode())
    with pytest.raises(DataError, match=rf"d\.csv:{line}: \d cells but the header names 2"):
        read_table(path)
    with pytest.raises(DataError, match=rf"^body:{line}: "):
        csv_table(text, "body")


@pytest.mark.parametrize(("text", "line"), WHOLE_ONLY)
def test_a_quoted_cell_over_two_lines_counts_both(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"d\.csv:{line}: 1 cells"):
        read_table(path)


@pytest.mark.parametrize(("text", "line", "lines"), CASES)
def test_streamed_csv_names_the_real_line(
    tmp_path: Path, text: str, line: int, lines: list[int]
) -> None:
    pytest.importorskip("pyarrow")
    from engine.streaming.tables import CsvSource

    path = tmp_path / "d.csv"
    path.write_bytes(text.encode())
    with pytest.raises(DataError, match=rf"d\.csv: line {line}: \d cells but the header names 2"):
        CsvSource(path, "error")
    skipped = CsvSource(path, "skip").skipped
    assert [int(s.split(": line ")[1].split(":")[0]) for s in skipped] == lines


def test_streamed_lines_stay_right_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow numbers rows across its blocks; the line found for each stays the file's."""
    pytest.importorskip("pyarrow")
    from engine.streaming import tables

    monkeypatch.setattr(tables, "_CSV_BLOCK_BYTES", 256)
    rows = ["a,b"]
    for i in range(3000):
        rows += [f"{i},{i}"] + ([""] if i % 7 == 0 else [])
    rows[1200] = rows[2500] = "1,2,3"
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    skipped = tables.CsvSource(path, "skip").skipped
    assert [s.split(": ")[1] for s in skipped] == ["line 1201", "line 2501"]


SIGNATURE = ModelSignature((InputSpec("x", (2,)),), (OutputSpec("y", (1,)),))


def test_a_missing_value_names_its_real_line_after_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("\n\na,b,t\n1,2,0\n\n1,2,1\n\n\n1,,1\n")
    source = DataSource(path="d.csv", x=["a", "b"], target="t")
    with pytest.raises(DataError, match=r"d\.csv:9: column 'b' holds NaN or infinity"):
        load_dataset(source, tmp_path, SIGNATURE)


def test_columns_not_read_from_a_file_name_the_sample_not_a_line() -> None:
    """Records of a request body have no lines: the sample is named instead."""
    columns = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, np.nan])}
    table = array_table(columns, "request", "csv")
    source = DataSource(path="request", x=["a", "b"])
    with pytest.raises(DataError, match=r"^request: column 'b', sample 1 holds NaN"):
        fit_table(table, source, SIGNATURE, need_targets=False)


def test_a_streamed_chunk_names_the_sample_in_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")
    from engine.streaming import open_stream, tables

    monkeypatch.setattr(tables, "_CSV_BLOCK_BYTES", 256)
    rows = ["a,b,t"] + [f"{i},{i},0" for i in range(3000)]
    rows[2001] = "1,,0"
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    source = DataSource(path="d.csv", x=["a", "b"], target="t", streaming=True)
    stream = open_stream(source, tmp_path, SIGNATURE)
    with pytest.raises(DataError, match=r"d\.csv: column 'b', sample 2000 holds NaN"):
        list(stream.batches(64, shuffle=False))
