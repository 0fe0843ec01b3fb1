"""SIGTERM (what Slurm, Kubernetes and spot instances send) stops training at the next batch,
saves the run and exits 143; the run resumes bit-identically; a second signal ends at once
without touching the last complete file."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from engine import atomic
from engine.saving import checkpoint_position, list_checkpoints, read_artifact
from engine.train.interrupt import StopOnInterrupt
from tests.cli.terminal import run_cli, train_until_epoch

QUIET = ["--set", "fit.callbacks=[]"]


def _weights(path: Path) -> dict[str, np.ndarray]:
    return read_artifact(path).weights


def test_sigterm_saves_exits_143_and_resumes_bit_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("examples", "iris_mlp", "--to", str(tmp_path)).code == 0
    stopped = train_until_epoch(tmp_path, 3, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr
    assert "Interrupted" in stopped.stdout and "Saved the run to runs/iris_mlp" in stopped.stdout
    run = tmp_path / "runs" / "iris_mlp"
    assert (run / "model.msz").is_file() and not (run / ".lock").exists()
    latest = list_checkpoints(run)[-1]  # taken at the batch the signal stopped
    assert "-step-" in latest.name, latest.name
    done = checkpoint_position(latest)[0] + 1  # the signal raced some epochs on: resume to done + 2
    assert done >= 3

    monkeypatch.chdir(tmp_path)
    epochs = ["--set", f"fit.epochs={done + 2}", *QUIET]
    assert run_cli("train", "iris_mlp.yaml", *epochs, "--resume", str(run)).code == 0
    assert run_cli("train", "iris_mlp.yaml", *epochs, "--out", "whole").code == 0
    resumed, whole = _weights(run / "model.msz"), _weights(tmp_path / "whole" / "model.msz")
    assert resumed.keys() == whole.keys()
    for name in whole:
        assert np.array_equal(resumed[name], whole[name]), name


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_asks_to_stop_and_the_second_exits(signum: int) -> None:
    with StopOnInterrupt() as stop:
        os.kill(os.getpid(), signum)
        assert stop.requested and stop.signum == signum
        with pytest.raises(SystemExit) as ended:
            os.kill(os.getpid(), signum)
    assert ended.value.code == 128 + signum


def test_a_second_signal_during_a_write_keeps_the_last_good_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoints" / "epoch-000001.msz"
    target.parent.mkdir()
    target.write_bytes(b"last good checkpoint")
    real_fsync = os.fsync

    def signalled_fsync(fd: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", signalled_fsync)
    with StopOnInterrupt() as stop, pytest.raises(SystemExit) as ended:
        stop.signum = signal.SIGTERM  # the first signal came earlier
        atomic.atomic_write_bytes(target, b"half" * 10_000)
    assert ended.value.code == 143
    assert target.read_bytes() == b"last good checkpoint"
    assert os.listdir(target.parent) == [target.name]
