"""Predictor.load reads the model file once, and reports a damaged or missing one as clearly
as `engine.saving.read_artifact` and the run commands do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import saving
from modelspec.errors import RunError
from modelspec.predictor import Predictor
from tests.opened import opens


def test_load_opens_the_model_file_once(iris_run: Path) -> None:
    model_file = iris_run / saving.MODEL_FILE
    with opens(model_file) as modes:
        predictor = Predictor.load(iris_run)
    assert len(modes) == 1, modes
    assert predictor.checksum == saving.fingerprint_file(model_file)
    assert predictor.spec["model"] == saving.read_artifact(iris_run).spec["model"]


def test_a_damaged_model_file_is_named_as_read_artifact_names_it(
    iris_run: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.msz"
    data = (iris_run / saving.MODEL_FILE).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(saving.ArtifactError) as expected:
        saving.read_artifact(cut)
    with pytest.raises(saving.ArtifactError) as got:
        Predictor.load(cut)
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value) and str(cut) in str(got.value)


def test_a_missing_model_is_a_run_error(tmp_path: Path, iris_run: Path) -> None:
    with pytest.raises(RunError, match="no such run folder or model file") as missing:
        Predictor.load(tmp_path / "nowhere")
    assert missing.value.code == 2
    empty = tmp_path / "run"
    shutil.copytree(iris_run, empty)
    (empty / saving.MODEL_FILE).unlink()
    with pytest.raises(saving.ArtifactError, match="no such file"):
        Predictor.load(empty)
