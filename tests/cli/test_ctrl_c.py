"""Ctrl-C during `train` saves the run and exits 130, as shells expect of an interrupted command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.terminal import run_cli


def test_sigint_saves_and_exits_130(tmp_path: Path) -> None:
    assert run_cli("examples", "iris_mlp", "--to", str(tmp_path)).code == 0
    env = {**os.environ, "CI": "1", "COLUMNS": "80"}
    args = ["train", "iris_mlp.yaml", "--set", "fit.epochs=100000", "--set", "fit.callbacks=[]"]
    command = [sys.executable, "-c", "from modelspec.cli import main; main()", *args]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Epoch 2/"):
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert "Interrupted" in out and "Saved the run to runs/iris_mlp" in out
    assert (tmp_path / "runs" / "iris_mlp" / "model.msz").is_file()
    assert run_cli("evaluate", str(tmp_path / "runs" / "iris_mlp"), "--format", "json").code == 0
