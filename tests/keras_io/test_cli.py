"""`modelspec import` and `modelspec export --format keras` through the CLI app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from engine.loading import load_model
from modelspec.cli import app
from tests.keras_io.helpers import FIXTURES, TOLERANCE, max_difference

pytest.importorskip("h5py")
runner = CliRunner()


def test_import_writes_a_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["import", str(FIXTURES / "multi_io.keras"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load((out / "spec.yaml").read_text())
    assert spec["model"]["outputs"] == ["digit", "big"]
    model = load_model(out)
    assert max_difference(model, "multi_io") <= TOLERANCE
    assert model.artifact_metadata["imported_from"]["keras_version"] == "3.15.1"


def test_spec_only_writes_no_weights(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["import", str(FIXTURES / "mlp.h5"), "--out", str(tmp_path), "--spec-only"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]
    summary = runner.invoke(app, ["summary", str(tmp_path / "spec.yaml")])
    assert summary.exit_code == 0 and "dense_2" in summary.stdout


def test_export_keras_from_a_run_folder(tmp_path: Path) -> None:
    runner.invoke(app, ["import", str(FIXTURES / "shared.keras"), "--out", str(tmp_path / "r")])
    target = tmp_path / "model.keras"
    result = runner.invoke(
        app, ["export", str(tmp_path / "r"), "--format", "keras", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    from engine.keras_io.importer import import_keras

    assert max_difference(import_keras(target).model, "shared") <= TOLERANCE


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["import", str(FIXTURES / "unsafe_lambda.keras")], 1, "'double' (Lambda)"),
        (["import", str(FIXTURES / "custom_layer.keras")], 1, "custom class"),
        (["import", str(FIXTURES / "mlp.npz")], 2, "not a Keras archive"),
        (["import", "no/such/model.keras"], 2, "no such file"),
        (["export", "no/such/run", "--format", "keras", "--output", "x.keras"], 2, "no "),
    ],
)
def test_user_errors_are_one_line(args: list[str], code: int, words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "--out", str(tmp_path)] if args[0] == "import" else args)
    assert result.exit_code == code, result.output
    assert words in result.stderr and "Traceback" not in result.output + result.stderr


def test_without_h5py_say_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)
    result = runner.invoke(app, ["import", str(FIXTURES / "mlp.keras"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install 'modelspec[keras]'" in result.stderr


def test_export_without_h5py_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner.invoke(app, ["import", str(FIXTURES / "mlp.keras"), "--out", str(tmp_path / "r")])
    monkeypatch.setitem(sys.modules, "h5py", None)
    target = tmp_path / "out.keras"
    result = runner.invoke(
        app, ["export", str(tmp_path / "r"), "--format", "keras", "--output", str(target)]
    )
    assert result.exit_code == 2 and "pip install 'modelspec[keras]'" in result.stderr
    assert not target.exists()
