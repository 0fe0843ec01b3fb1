"""Trained iris (CSV, one input) and digits multi-input (NPZ) runs, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_run import run as cli

SPECS = Path(__file__).resolve().parents[2] / "specs"


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
