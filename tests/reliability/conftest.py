"""A tiny trainable project in a temporary folder, and the hypothesis profiles of the fuzz tests.

`ci` (the default) keeps the fuzz tests within a fixed budget; run
`pytest tests/reliability --hypothesis-profile=long` locally to search much longer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings

from tests.cli.test_run import ROWS, SPEC, csv_text

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI never flakes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """specs/tiny.yaml beside its data; the current directory is an empty work folder."""
    (tmp_path / "specs" / "data").mkdir(parents=True)
    (tmp_path / "specs" / "data" / "train.csv").write_text(csv_text(ROWS))
    (tmp_path / "specs" / "data" / "test.csv").write_text(csv_text(ROWS[:4]))
    (tmp_path / "specs" / "tiny.yaml").write_text(yaml.safe_dump(SPEC))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("CI", "1")
    return tmp_path
