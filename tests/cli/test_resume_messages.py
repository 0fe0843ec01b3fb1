"""`train --resume`: a run from another spec is named as such; history.csv keeps its columns;
a finished run is left untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.terminal import COLOUR, run_cli


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("iris_mlp", "tutorial_mlp"):
        assert run_cli("examples", name).code == 0
    return tmp_path


@COLOUR
def test_resume_from_another_specs_run_names_that_spec(examples: Path, colour: bool) -> None:
    assert run_cli("train", "iris_mlp.yaml", "--set", "fit.epochs=1").code == 0
    outcome = run_cli("train", "tutorial_mlp.yaml", "--resume", "runs/iris_mlp", colour=colour)
    assert outcome.code == 2
    text = " ".join(outcome.stderr.split())
    assert text.startswith(
        "error: runs/iris_mlp was trained from spec 'iris_mlp' (saved as "
        "runs/iris_mlp/spec.yaml), not tutorial_mlp.yaml: its weights do not fit this model"
    )
    assert "--out DIR" in text


def test_resume_keeps_history_csv_column_order(examples: Path) -> None:
    whole = ["train", "iris_mlp.yaml", "--set", "fit.epochs=3", "--out", "whole"]
    assert run_cli(*whole).code == 0
    part = ["train", "iris_mlp.yaml", "--set", "fit.epochs=2", "--out", "part"]
    assert run_cli(*part).code == 0
    header = (examples / "part" / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,accuracy,val_loss,val_accuracy"
    resumed = ["train", "iris_mlp.yaml", "--set", "fit.epochs=3", "--resume", "part"]
    assert run_cli(*resumed).code == 0
    lines = (examples / "part" / "history.csv").read_text().splitlines()
    assert lines[0] == header
    assert lines == (examples / "whole" / "history.csv").read_text().splitlines()


def test_resuming_a_finished_run_changes_nothing(examples: Path) -> None:
    assert run_cli("train", "iris_mlp.yaml", "--set", "fit.epochs=2").code == 0
    run = examples / "runs" / "iris_mlp"
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    outcome = run_cli("train", "iris_mlp.yaml", "--set", "fit.epochs=2", "--resume", str(run))
    assert outcome.code == 0
    text = " ".join(outcome.stdout.split())
    assert "has trained all 2 epochs of fit.epochs already: nothing to resume" in text
    assert "--set fit.epochs=4" in text
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before
    assert len((run / "history.csv").read_text().splitlines()) == 3
