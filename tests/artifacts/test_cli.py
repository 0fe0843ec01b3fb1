"""`modelspec export` and `modelspec report` through the real CLI app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import saving
from engine.build import from_spec
from engine.loading import load_model
from modelspec.cli import app
from tests.artifacts import train_script
from tests.artifacts.helpers import sample_artifact

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    train_script.train(str(run_dir), resume=False, sleep=0.0)
    return run_dir


def test_report_writes_the_csv_and_png(trained: Path) -> None:
    result = runner.invoke(app, ["report", str(trained)])
    assert result.exit_code == 0, result.output
    assert (trained / "history.csv").read_text().startswith("epoch,")
    assert (trained / "training_curves.png").read_bytes().startswith(b"\x89PNG")


def test_report_prints_summary_metrics_curves(trained: Path) -> None:
    result = runner.invoke(app, ["report", str(trained), "--width", "30"])
    assert result.exit_code == 0, result.output
    for expected in ("final model", "Final metrics", "val_loss", "accuracy", "Curves:", "⠀"):
        assert expected in result.output


def test_report_names_overfitting_and_best_epoch(tmp_path: Path) -> None:
    artifact = sample_artifact()
    falling = [1.0 / (i + 1) for i in range(10)]
    artifact.history = {"loss": falling, "val_loss": [*falling[:5], 0.3, 0.4, 0.5, 0.6, 0.7]}
    saving.write_artifact(tmp_path, artifact)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "overfitting" in result.output and "best at epoch 5" in result.output


def test_report_falls_back_to_the_newest_checkpoint(tmp_path: Path) -> None:
    for epoch in range(3):
        artifact = sample_artifact()
        artifact.history = {"loss": [1.0] * (epoch + 1)}
        saving.write_checkpoint(tmp_path, epoch, artifact)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "epoch-000002.msz" in result.output and "did not finish" in result.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no artifact"),
        (lambda p: p.write_bytes(b"x") and p, "not a modelspec artifact"),
        (
            lambda p: p.write_bytes(saving.artifact_bytes(sample_artifact())[:200]) and p,
            "truncated artifact",
        ),
    ],
    ids=["missing", "not-zip", "truncated"],
)
@pytest.mark.parametrize("command", [["report"], ["export", "--output", "out.onnx"]])
def test_damaged_input_exits_2(
    tmp_path: Path, make: object, message: str, command: list[str]
) -> None:
    target = make(tmp_path / "model.msz")  # type: ignore[operator]
    result = runner.invoke(app, [command[0], str(target), *command[1:]])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_export_writes_a_model_onnxruntime_runs(trained: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(trained), "--format", "onnx", "--output", str(out)])
    assert result.exit_code == 0, result.output
    model = load_model(trained)
    x = train_script.data()[0][:7]
    got = ort.InferenceSession(str(out)).run(None, {model.input_names[0]: x})[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-5)


def test_export_of_an_unsupported_layer_exits_1(tmp_path: Path) -> None:
    spec = {
        "model": {
            "type": "sequential",
            "layers": [
                {"type": "Input", "shape": [3]},
                {"type": "Lambda", "name": "double", "expression": "x * 2"},
            ],
        }
    }
    saving.save_model(from_spec(spec), tmp_path)
    result = runner.invoke(app, ["export", str(tmp_path), "--output", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert "'double' (Lambda) has no ONNX export" in result.output
    assert not (tmp_path / "m.onnx").exists()
