"""Run the CLI as a user's 80-column terminal would see it, with colour forced on or turned off."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelspec.cli import app

WIDTH = 80
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOUR = pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])


@dataclass
class Outcome:
    """Exit code, and stdout/stderr with escape codes removed (`raw_stdout` keeps them)."""

    code: int
    stdout: str
    stderr: str
    raw_stdout: str


def terminal_env(colour: bool) -> dict[str, str | None]:
    env: dict[str, str | None] = {"COLUMNS": str(WIDTH), "LINES": "40", "CI": None}
    if colour:
        env.update(FORCE_COLOR="1", NO_COLOR=None, TERM="xterm-256color")
    else:
        env.update(NO_COLOR="1", FORCE_COLOR=None)
    return env


def run_cli(*args: str, colour: bool = False) -> Outcome:
    """Invoke `modelspec ARGS`; a traceback (an exception other than exit) fails the test."""
    result = CliRunner().invoke(app, list(args), env=terminal_env(colour))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    out, err = result.stdout, result.stderr
    assert "Traceback" not in out + err
    return Outcome(result.exit_code, ANSI.sub("", out), ANSI.sub("", err), out)


def assert_fits(text: str) -> None:
    """No line wider than the terminal."""
    for line in text.splitlines():
        assert len(line) <= WIDTH, line


def train_until_epoch(
    folder: Path, epoch: int, signum: int, colour: bool = False
) -> subprocess.CompletedProcess[str]:
    """`modelspec train iris_mlp.yaml` for ever in `folder`, sent `signum` once epoch `epoch`
    starts; stdout has escape codes removed."""
    env = dict(os.environ)
    for name, value in terminal_env(colour).items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    args = ["train", "iris_mlp.yaml", "--set", "fit.epochs=100000", "--set", "fit.callbacks=[]"]
    command = [sys.executable, "-c", "from modelspec.cli import main; main()", *args]
    with subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        seen = ""
        for line in process.stdout:
            seen += line
            if f"Epoch {epoch}/100000 - " in ANSI.sub("", line):
                process.send_signal(signum)
                break
        out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(command, process.returncode, ANSI.sub("", seen + out), err)
