"""`modelspec train`, `evaluate` and `predict` on streamed Parquet data, from a spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from modelspec.cli import app
from tests.streaming.files import write_parquet

pytest.importorskip("pyarrow")

SPEC: dict[str, Any] = {
    "name": "streamed",
    "seed": 2,
    "model": {
        "type": "sequential",
        "layers": [
            {"type": "Input", "shape": [6]},
            {"type": "Dense", "units": 8, "activation": "relu"},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    },
    "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
    "fit": {"epochs": 2, "batch_size": 32},
}


def test_train_evaluate_predict_on_a_streamed_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parquet(tmp_path)
    source = {"path": "parts", "x": "x", "target": "y", "streaming": True, "shuffle_buffer": 64}
    spec = {**SPEC, "data": {"train": source, "test": source}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "s.yaml", "--out", "run"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", "run", "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["loss"] > 0
    predicted = runner.invoke(
        app, ["predict", "run", "--input", "parts/a.parquet", "--output", "p.csv"]
    )
    assert predicted.exit_code == 0, predicted.output
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 201


def test_a_corrupt_file_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parquet(tmp_path)
    (tmp_path / "parts" / "z.parquet").write_bytes(b"garbage")
    spec = {**SPEC, "data": {"train": {"path": "parts", "x": "x", "target": "y"}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "s.yaml", "--out", "run"])
    assert result.exit_code != 0
    assert "z.parquet: not a readable Parquet file" in result.output
    assert "Traceback" not in result.output


def test_skipped_data_is_one_warning_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_parquet(tmp_path)
    (tmp_path / "parts" / "z.parquet").write_bytes(b"garbage")
    source = {"path": "parts", "x": "x", "target": "y", "bad_data": "skip"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**SPEC, "data": {"train": source}}))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "s.yaml", "--out", "run"])
    assert result.exit_code == 0, result.output
    assert "warning: parts: skipped 1 unreadable or bad pieces of data" in result.output
    assert "z.parquet: not a readable Parquet file" in result.output


def test_train_tells_the_adapt_pass_over_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normalization adapting to a stream reads it whole: the run says so, as for a read."""
    from modelspec import data_progress

    monkeypatch.setattr(data_progress, "CLOSING_AFTER", 0.0)
    write_parquet(tmp_path)
    layers = SPEC["model"]["layers"]
    model = {**SPEC["model"], "layers": [layers[0], {"type": "Normalization"}, *layers[1:]]}
    source = {"path": "parts", "x": "x", "target": "y", "streaming": True}
    spec = {**SPEC, "model": model, "data": {"train": source}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    trained = CliRunner().invoke(app, ["train", "s.yaml", "--out", "run"])
    assert trained.exit_code == 0, trained.output
    assert "Adapted to 300 rows of parts in " in trained.output, trained.output
