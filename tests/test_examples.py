"""Every example spec in specs/ checks clean and trains briefly (one epoch) through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelspec.check import check_spec
from modelspec.cli import app

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
EXAMPLES = sorted(SPECS_DIR.glob("*.yaml"))
REQUIRED = {
    "iris_mlp",
    "tutorial_mlp",
    "tutorial_mlp_functional",
    "breast_cancer_mlp",
    "digits_cnn",
    "diabetes_regression",
    "sunspots_gru",
    "digits_multi_io",
    "digits_siamese",
}


def test_every_required_example_exists_and_is_documented() -> None:
    names = {path.stem for path in EXAMPLES}
    assert names >= REQUIRED
    readme = (SPECS_DIR / "README.md").read_text()
    for name in names:
        assert f"{name}.yaml" in readme, f"specs/README.md does not describe {name}.yaml"


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_checks_clean(spec: Path) -> None:
    report = check_spec(spec)
    assert [f"{d.line}: {d.code} {d.message}" for d in report.diagnostics] == []


@pytest.mark.parametrize("name", ["tutorial_mlp", "tutorial_mlp_functional"])
def test_tutorial_network_has_the_tutorial_parameter_counts(name: str) -> None:
    report = check_spec(SPECS_DIR / f"{name}.yaml")
    assert report.model is not None
    assert [row.params for row in report.model.rows if row.params] == [80, 136, 9]
    assert report.model.total("params") == 225


def test_iris_example_is_the_spec_format_page_example() -> None:
    """specs/iris_mlp.yaml is the format page's whole-file example (docs/spec-format.md)."""
    text = (SPECS_DIR / "iris_mlp.yaml").read_text()
    assert text.startswith("version: 1                  # format version")
    assert (
        "{type: EarlyStopping, monitor: val_loss, patience: 5, restore_best_weights: true}" in text
    )


@pytest.mark.slow
@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_trains_one_epoch(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    result = CliRunner().invoke(app, ["train", str(spec), "--set", "fit.epochs=1", "--out", "run"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stderr
    assert re.search(r"Epoch 1/1 - loss: [0-9.]+", result.stdout)
    assert (tmp_path / "run" / "model.msz").is_file()
    evaluated = CliRunner().invoke(app, ["evaluate", "run", "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.stderr
    assert '"loss"' in evaluated.stdout
