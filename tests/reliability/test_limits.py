"""Limits: a 10,000-layer spec lints and summarises, in work linear in its layers (counted in
Python calls, not seconds); a NaN loss stops the run naming the epoch and the batch."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from typer.testing import CliRunner

from modelspec.cli import app
from tests.cli.terminal import run_cli
from tests.cli.test_run import SPEC, run, write_spec


def _deep_spec(folder: Path, layers: int) -> Path:
    stack = [{"type": "Input", "shape": [8]}] + [{"type": "Dense", "units": 8}] * layers
    path = folder / f"deep_{layers}.yaml"
    path.write_text(yaml.safe_dump({"name": "deep", "model": {"layers": stack}}))
    return path


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def _calls(*args: str) -> int:
    """Python function calls one command makes (a deterministic measure of its work)."""
    _invoke(*args)  # imports and caches first
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        count += event == "call"

    sys.setprofile(profile)
    try:
        _invoke(*args)
    finally:
        sys.setprofile(None)
    return count


def test_lint_and_summary_work_grows_linearly_with_layers(tmp_path: Path) -> None:
    for command in ("lint", "summary"):
        small, medium, large = (
            _calls(command, str(_deep_spec(tmp_path, n))) for n in (50, 100, 200)
        )
        # Linear work doubles the increment when the layers double; quadratic work quadruples it.
        assert (large - medium) <= 2.2 * (medium - small), command


def test_ten_thousand_layers_lint_and_summarise(tmp_path: Path) -> None:
    path = str(_deep_spec(tmp_path, 10_000))
    assert "All checks passed" in _invoke("lint", path)
    summary = _invoke("summary", path)
    assert "Total params: 720,000" in summary  # 10,000 x (8 x 8 + 8)


def test_a_nan_loss_names_the_epoch_and_batch(project: Path) -> None:
    compile_section = dict(SPEC["compile"])  # type: ignore[arg-type]
    compile_section["optimizer"] = {"type": "sgd", "learning_rate": 1e30}
    code, _, err = run("train", str(write_spec(project, compile=compile_section)))
    assert code == 1
    assert re.search(r"error: loss became (NaN|infinite) at epoch 1, step \d+$", err.strip()), err
    assert not (Path("runs") / "changed" / ".lock").exists()


def test_reading_the_data_shows_on_a_terminal(project: Path) -> None:
    """A data file of millions of rows takes a while: the terminal is told what is read."""
    outcome = run_cli("train", str(project / "specs" / "tiny.yaml"), colour=True)
    assert outcome.code == 0
    assert "Reading the data of tiny.yaml ..." in outcome.stdout
