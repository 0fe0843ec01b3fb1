"""Ctrl-C during `train` saves the run and exits 130, as shells expect of an interrupted command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.terminal import ANSI, COLOUR, run_cli, terminal_env


@COLOUR
def test_sigint_saves_and_exits_130(tmp_path: Path, colour: bool) -> None:
    assert run_cli("examples", "iris_mlp", "--to", str(tmp_path)).code == 0
    env = dict(os.environ)
    for name, value in terminal_env(colour).items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    args = ["train", "iris_mlp.yaml", "--set", "fit.epochs=100000", "--set", "fit.callbacks=[]"]
    command = [sys.executable, "-c", "from modelspec.cli import main; main()", *args]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        seen = ""
        for line in process.stdout:
            seen += line
            if "Epoch 2/100000 - " in ANSI.sub("", line):
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=300)
    out = ANSI.sub("", seen + out)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert "Interrupted" in out and "Saved the run to runs/iris_mlp" in out
    assert (tmp_path / "runs" / "iris_mlp" / "model.msz").is_file()
    assert run_cli("evaluate", str(tmp_path / "runs" / "iris_mlp"), "--format", "json").code == 0
