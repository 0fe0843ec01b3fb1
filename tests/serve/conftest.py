"""Trained iris (CSV, one input) and digits multi-input (NPZ) runs, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelspec.cli import app

SPECS = Path(__file__).resolve().parents[2] / "specs"


def cli(*args: str) -> tuple[int, str, str]:
    """Run modelspec in-process; a traceback is a failure whatever the exit code."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def _trained(tmp: Path, spec: str, epochs: int) -> Path:
    out = tmp / spec
    code, _, err = cli(
        "train", str(SPECS / f"{spec}.yaml"), "--out", str(out), "--set", f"fit.epochs={epochs}"
    )
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained(tmp_path_factory.mktemp("serve"), "iris_mlp", 5)


@pytest.fixture(scope="session")
def multi_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained(tmp_path_factory.mktemp("serve"), "digits_multi_io", 1)
