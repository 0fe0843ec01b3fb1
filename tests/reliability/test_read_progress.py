"""Reading a data file of many rows shows progress, not silence: the engine reports rows per chunk
(`engine.read_progress`) and the CLI prints them, live on a terminal and as plain lines in a log."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from engine import data as data_module
from engine.config.data import DataSource
from engine.data import InputSpec, ModelSignature, OutputSpec, load_dataset, read_table
from engine.read_progress import ReadProgress, watch
from modelspec import data_progress
from tests.cli.test_run import run

SIGNATURE = ModelSignature(
    (InputSpec("x", (2,)),), (OutputSpec("y", (2,), "sparse_categorical_crossentropy"),)
)
needs_pyarrow = pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None, reason="streamed CSV needs pyarrow"
)


def _write_csv(path: Path, rows: int) -> Path:
    values = np.arange(rows, dtype=np.float64) / rows
    table = np.column_stack([values, 1 - values, np.arange(rows) % 2])
    with path.open("w") as handle:
        handle.write("x1,x2,level\n")
        np.savetxt(handle, table, fmt=["%.6f", "%.6f", "%d"], delimiter=",")
    return path


def _reports(action: object, *args: object, **kwargs: object) -> list[ReadProgress]:
    seen: list[ReadProgress] = []
    with watch(seen.append):
        action(*args, **kwargs)  # type: ignore[operator]
    return seen


def _assert_increasing(reports: list[ReadProgress]) -> None:
    """Running reports with strictly growing counts, then one closing report."""
    rows = [r.rows for r in reports[:-1]]
    assert rows == sorted(set(rows)), rows
    assert [r.done for r in reports] == [False] * len(rows) + [True]
    assert reports[-1].rows == rows[-1]


def test_a_csv_reports_rows_per_chunk_not_per_row(tmp_path: Path) -> None:
    rows = 300_000
    path = _write_csv(tmp_path / "big.csv", rows)
    reports = _reports(_read_and_fit, path)
    _assert_increasing(reports)
    chunks = -(-rows // data_module._CSV_CHUNK_ROWS)
    assert len(reports) <= chunks + 2  # one per chunk, the full count, the end
    assert reports[0].rows == data_module._CSV_CHUNK_ROWS
    assert reports[-1].rows == rows and reports[-1].path == path
    assert reports[-1].action == "read"


def _read_and_fit(path: Path) -> None:
    source = DataSource(path=path.name, target="level")
    dataset, _ = load_dataset(source, path.parent, SIGNATURE)
    assert len(dataset) > 0


def test_a_csv_read_in_chunks_equals_one_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column of numbers in its first chunks and text later is text, spelt as in the file."""
    path = tmp_path / "mixed.csv"
    cells = ["1", "2.50", " 3", "", "7"] + ["cat", "1.0"]
    path.write_text("a,b\n" + "".join(f"{c},{i}\n\n" for i, c in enumerate(cells)))
    monkeypatch.setattr(data_module, "_CSV_CHUNK_ROWS", 3)
    table = read_table(path)
    assert table.arrays["a"].tolist() == ["1", "2.50", "3", "", "7", "cat", "1.0"]
    assert table.arrays["b"].tolist() == [float(i) for i in range(len(cells))]


def test_a_csv_row_of_the_wrong_width_names_its_line_in_a_later_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n" + "1,2\n" * 5 + "1,2,3\n")
    monkeypatch.setattr(data_module, "_CSV_CHUNK_ROWS", 2)
    with pytest.raises(data_module.DataError, match=r"bad\.csv:7: 3 cells but the header names 2"):
        read_table(path)


def test_an_npy_file_reports_rows_of_a_known_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.save(tmp_path / "x.npy", np.ones((1000, 2), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.zeros(1000, dtype=np.int64))
    monkeypatch.setattr(data_module, "_NAN_CHUNK", 200)  # 100 rows of 2 values per scan
    source = DataSource(path="x.npy", y="y.npy")
    reports = _reports(load_dataset, source, tmp_path, SIGNATURE)
    _assert_increasing(reports)
    assert {r.total for r in reports} == {1000}
    assert [r.rows for r in reports[:3]] == [100, 200, 300]
    assert reports[-1].rows == 1000


def test_without_a_watcher_reading_reports_nothing(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "small.csv", 10)
    assert len(read_table(path).arrays["x1"]) == 10  # no watcher installed: nothing to call


@needs_pyarrow
def test_a_streamed_csv_reports_its_row_count_then_its_read(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "big.csv", 200_000)
    source = DataSource(path=path.name, target="level", streaming=False, format="csv")
    reports = _reports(_stream_whole, source, tmp_path)
    counting = [r for r in reports if r.action == "count"]
    reading = [r for r in reports if r.action == "read"]
    assert counting and reading and len(counting) + len(reading) == len(reports)
    _assert_increasing(counting)
    _assert_increasing(reading)
    assert counting[-1].rows == reading[-1].rows == 200_000
    assert {r.total for r in reading} == {200_000}


def _stream_whole(source: DataSource, base: Path) -> None:
    from engine.streaming import Stream, open_stream

    stream = open_stream(source, base, SIGNATURE)
    assert isinstance(stream, Stream)
    assert len(stream.to_dataset()) == 200_000


def test_train_in_a_log_prints_progress_lines_with_growing_counts(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Non-terminal output (Slurm's file, `| tee`) gets a plain line per interval and a count."""
    _write_csv(project / "specs" / "data" / "train.csv", 5000)
    monkeypatch.setattr(data_progress, "LOG_INTERVAL", 0.0)
    monkeypatch.setattr(data_progress, "CLOSING_AFTER", 0.0)
    monkeypatch.setattr(data_module, "_CSV_CHUNK_ROWS", 1000)
    code, out, _ = run("train", str(project / "specs" / "tiny.yaml"))
    assert code == 0
    counts = [
        int(n.replace(",", "")) for n in re.findall(r"Reading \S*train\.csv: ([\d,]+) rows", out)
    ]
    assert counts == [1000, 2000, 3000, 4000, 5000], out
    assert re.search(r"^Read 5,000 rows of \S*train\.csv in \d+\.\d s$", out, re.M), out
    assert re.search(r"^Read 4 rows of \S*test\.csv in \d+\.\d s$", out, re.M), out


def test_a_quick_read_adds_no_line(project: Path) -> None:
    code, out, err = run("train", str(project / "specs" / "tiny.yaml"))
    assert code == 0
    assert "Read" not in out + err


def test_predict_and_evaluate_tell_their_reading_on_stderr(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_progress, "CLOSING_AFTER", 0.0)
    assert run("train", str(project / "specs" / "tiny.yaml"))[0] == 0
    code, out, err = run(
        "predict", "runs/tiny", "--input", str(project / "specs" / "data" / "test.csv")
    )
    assert code == 0
    assert out.splitlines()[0] == "level" and len(out.splitlines()) == 5
    assert re.search(r"^Read 4 rows of \S*test\.csv in \d+\.\d s$", err, re.M), err
    code, out, err = run("evaluate", "runs/tiny", "--format", "json")
    assert code == 0 and out.startswith("{")
    assert re.search(r"^Read 4 rows of \S*test\.csv in \d+\.\d s$", err, re.M), err


def test_the_words_of_each_action() -> None:
    path = Path("data/train.csv")
    report = ReadProgress(path, "count", 1_250_000, None, 3.21)
    assert (
        data_progress.running_line(report) == "Counting the rows of data/train.csv: 1,250,000 rows"
    )
    report = ReadProgress(path, "read", 1_250_000, 5_000_000, 3.21, done=False)
    assert data_progress.running_line(report) == (
        "Reading data/train.csv: 1,250,000 of 5,000,000 rows (25%)"
    )
    done = ReadProgress(path, "labels", 1, 1, 0.04, done=True)
    assert data_progress.closing_line(done) == (
        "Collected the labels of 1 row of data/train.csv in 0.0 s"
    )


@needs_pyarrow
def test_a_stream_collecting_its_string_labels_reports_the_rows(tmp_path: Path) -> None:
    from engine.streaming import open_stream

    rows = 200_000
    path = tmp_path / "labels.csv"
    with path.open("w") as handle:
        handle.write("x1,x2,level\n")
        handle.writelines(f"0.5,0.25,{'low' if i % 2 else 'high'}\n" for i in range(rows))
    source = DataSource(path=path.name, target="level", format="csv")
    seen: list[ReadProgress] = []
    with watch(seen.append):
        stream = open_stream(source, tmp_path, SIGNATURE)
    labels = [r for r in seen if r.action == "labels"]
    _assert_increasing(labels)
    assert labels[-1].rows == rows and {r.total for r in labels} == {rows}
    assert stream.schema.classes == {"y": ["high", "low"]}


def test_a_pass_inside_fit_leaves_no_live_display_for_the_progress_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a terminal the adapt pass shows a live line while it runs and stops it when done,
    so fit's progress bar (a live display of its own) can start after it."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from engine.read_progress import reading
    from modelspec import progress

    for name in progress._CI_VARIABLES:  # CI itself sets CI=true, which means plain lines
        monkeypatch.delenv(name, raising=False)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with data_progress.shown_within(console):
        with reading(Path("data/train.csv"), "adapt") as progress:
            progress(10, 20)
            progress(20, 20)
        with Progress(console=console) as bar:
            bar.add_task("epoch", total=1)
    assert "Adapting preprocessing layers to data/train.csv" in buffer.getvalue()
