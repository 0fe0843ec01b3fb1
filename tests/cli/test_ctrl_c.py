"""Ctrl-C during `train` saves the run and exits 130, as shells expect of an interrupted command."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli.terminal import COLOUR, run_cli, train_until_epoch


@COLOUR
def test_sigint_saves_and_exits_130(tmp_path: Path, colour: bool) -> None:
    assert run_cli("examples", "iris_mlp", "--to", str(tmp_path)).code == 0
    stopped = train_until_epoch(tmp_path, 2, signal.SIGINT, colour)
    out, err = stopped.stdout, stopped.stderr
    assert stopped.returncode == 130, err
    assert "Traceback" not in out + err
    assert "Interrupted" in out and "Saved the run to runs/iris_mlp" in out
    assert (tmp_path / "runs" / "iris_mlp" / "model.msz").is_file()
    assert run_cli("evaluate", str(tmp_path / "runs" / "iris_mlp"), "--format", "json").code == 0
