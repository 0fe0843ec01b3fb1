"""The README's commands stay true: the two set-up commands and the lint example's output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.layers.base import clear_session
from modelspec.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _first_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block, "the README starts with a bash block of commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_first_command_trains_a_shipped_spec() -> None:
    train = _first_commands()[0]
    spec = re.search(r"modelspec train (\S+)", train)
    assert spec and (ROOT / spec.group(1)).is_file()
    assert "pip install -e ." in train


def test_second_command_is_the_ci_test_command() -> None:
    test = _first_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"(python -m pytest -q)", test)
    assert command and command.group(1) in ci
    assert "pip install torch==2.13.0" in test and "pip install torch==2.13.0" in ci


def test_lint_example_output_is_what_lint_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = re.search(r"```text\n\$ modelspec lint bad.yaml\n(.*?)```", README, re.S)
    assert block
    shutil.copy(ROOT / "tests" / "fixtures" / "bad.yaml", tmp_path / "bad.yaml")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["lint", "bad.yaml"])
    assert result.exit_code == 1
    assert result.output == block.group(1)


def test_third_command_copies_an_example_and_trains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quickstart for a plain install (tests/packaging/test_install.py runs it from a built
    wheel)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    commands = _first_commands()[2].split(" && ")
    assert [c.split()[:2] for c in commands] == [["modelspec", "examples"], ["modelspec", "train"]]
    for command in commands:
        args = command.split()[1:]
        if args[0] == "train":
            args += ["--set", "fit.epochs=1"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "iris_mlp" / "model.msz").is_file()


def test_python_section_runs_and_prints_what_its_comments_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README[README.index("## The Python API") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block and "import engine as tf" in block.group(1)
    expected = [
        line.split("#", 1)[1].strip()
        for line in block.group(1).splitlines()
        if line.startswith("print(") and "#" in line
    ]
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    monkeypatch.chdir(tmp_path)
    clear_session()
    exec(compile(block.group(1), "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.splitlines() == expected
    assert (tmp_path / "model.keras").is_file()
