"""`modelspec train` under `mpirun -n 2`: equal to one process, rank 0 writes, faults end the job.

Each test launches a real MPI job (the `mpi` extra's MPI) through `worker.py`; they are skipped
when mpi4py or mpirun is absent. Every launch has a timeout: a hang fails the test.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import saving
from engine.distributed.launch import mpirun_command
from modelspec.cli import app

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
MPIRUN = shutil.which(
    "mpirun", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)
TIMEOUT = 240

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIRUN is None,
    reason="needs mpi4py and mpirun (pip install '.[mpi]')",
)


def launch(*args: str, ranks: int = 2, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert MPIRUN is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [*mpirun_command(ranks, MPIRUN), sys.executable, str(WORKER), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=env, check=False
    )


def train_mpi(
    spec: str, out: Path, *extra: str, fault: str = "none", ranks: int = 2
) -> subprocess.CompletedProcess[str]:
    return launch(
        "cli",
        fault,
        "--",
        "train",
        str(ROOT / "specs" / f"{spec}.yaml"),
        "--out",
        str(out),
        *extra,
        ranks=ranks,
        cwd=out.parent,
    )


def train_one(spec: str, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(
        app, ["train", str(ROOT / "specs" / f"{spec}.yaml"), "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output


def history(run: Path) -> dict[str, np.ndarray]:
    with (run / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def assert_same_run(a: Path, b: Path, rtol: float = 2e-5) -> None:
    """Equal to the dtype's tolerance: only the order of the sums differs."""
    ha, hb = history(a), history(b)
    assert ha.keys() == hb.keys()
    for key in ha:
        np.testing.assert_allclose(hb[key], ha[key], rtol=rtol, atol=rtol / 20, err_msg=key)
    wa, wb = saving.read_artifact(a).weights, saving.read_artifact(b).weights
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_allclose(wb[key], wa[key], rtol=5 * rtol, atol=rtol, err_msg=key)


@pytest.mark.parametrize(
    ("spec", "options", "rtol"),
    [
        # one bucket (the default 25 MiB holds the whole gradient)
        ("iris_mlp", [], 2e-5),
        # a ragged last batch (283 samples in batches of 32), one Allreduce after the backward pass
        ("diabetes_regression", ["fit.distributed.bucket_mb=0"], 2e-5),
        # two inputs through shared layers, the gradient in 1 KiB buckets started during the
        # backward pass; in float64, where Adam cannot amplify float32 rounding (in float32
        # this model's validation loss moves by 1e-3 between summation orders: one process's
        # float32 run is that far from its float64 run as well)
        ("digits_siamese", ["fit.distributed.bucket_mb=0.001", "dtype=float64"], 1e-10),
    ],
)
def test_two_ranks_equal_one_process_at_the_same_global_batch(
    tmp_path: Path, spec: str, options: list[str], rtol: float
) -> None:
    """The design's proof: over several epochs, the History and the weights of a 2-rank run
    are one process's at the same global batch."""
    epochs = 4
    settings = [f"--set=fit.epochs={epochs}", *(f"--set={o}" for o in options)]
    train_one(spec, tmp_path / "one", *settings)
    two = train_mpi(spec, tmp_path / "two", *settings)
    assert two.returncode == 0, two.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two", rtol)
    # rank 0 alone prints: one summary, one progress line per epoch, one table
    assert two.stdout.count(f"Epoch {epochs}/{epochs}") == 1
    assert two.stdout.count("Final metrics") == 1
    assert two.stdout.count("Total params") == 1
    assert "Data-parallel over 2 ranks" in two.stdout


def test_strict_fake_device_reduces_through_the_host(tmp_path: Path) -> None:
    """The device path (copy out, MPI, copy back) on arrays that refuse host mixing."""
    train_one("iris_mlp", tmp_path / "one", "--set", "fit.epochs=3")
    two = train_mpi("iris_mlp", tmp_path / "two", "--set", "fit.epochs=3", "--device", "fake")
    assert two.returncode == 0, two.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two")


def test_resume_at_another_world_size(tmp_path: Path) -> None:
    """Two epochs on 2 ranks, two more on 1 process, and the reverse: the 4-epoch run."""
    train_one("iris_mlp", tmp_path / "whole", "--set", "fit.epochs=4")
    first = train_mpi("iris_mlp", tmp_path / "a", "--set", "fit.epochs=2")
    assert first.returncode == 0, first.stderr
    train_one("iris_mlp", tmp_path / "a", "--resume", str(tmp_path / "a"), "--set", "fit.epochs=4")
    assert_same_run(tmp_path / "whole", tmp_path / "a")
    train_one("iris_mlp", tmp_path / "b", "--set", "fit.epochs=2")
    second = train_mpi(
        "iris_mlp", tmp_path / "b", "--resume", str(tmp_path / "b"), "--set", "fit.epochs=4"
    )
    assert second.returncode == 0, second.stderr
    assert_same_run(tmp_path / "whole", tmp_path / "b")


def test_a_batch_that_does_not_split_is_one_clear_error(tmp_path: Path) -> None:
    result = train_mpi("iris_mlp", tmp_path / "run", "--set", "fit.batch_size=15")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("fit.batch_size 15 does not split evenly over 2 ranks") == 1
    assert "Traceback" not in result.stderr


def test_a_rank_that_raises_ends_the_job_naming_it(tmp_path: Path) -> None:
    result = train_mpi("iris_mlp", tmp_path / "run", "--set", "fit.epochs=4", fault="raise")
    assert result.returncode != 0, result.stdout
    assert "error: rank 1 of 2: ValueError: injected failure" in result.stderr, result.stderr
    _assert_checkpoints_valid(tmp_path / "run")


def test_a_killed_rank_ends_the_job_and_the_launcher_names_its_pid(tmp_path: Path) -> None:
    result = train_mpi("iris_mlp", tmp_path / "run", "--set", "fit.epochs=4", fault="kill")
    assert result.returncode != 0
    pid = re.search(r"rank 1\s+pid\s+(\d+)", result.stdout)
    assert pid is not None, result.stdout
    report = result.stdout + result.stderr
    assert re.search(rf"PID {pid.group(1)}\b", report) or f"process id {pid.group(1)}" in report, (
        report
    )
    _assert_checkpoints_valid(tmp_path / "run")


def test_diverged_weights_are_an_error(tmp_path: Path) -> None:
    result = train_mpi("iris_mlp", tmp_path / "run", "--set", "fit.epochs=4", fault="diverge")
    assert result.returncode == 1, result.stderr
    assert "the weights of rank(s) 1 differ from rank 0's" in result.stderr, result.stderr
    assert result.stderr.count("differ from rank 0's") == 1


def _assert_checkpoints_valid(run: Path) -> None:
    """The fault came in the third epoch: the first two epochs' checkpoints are whole."""
    checkpoints = saving.list_checkpoints(run)
    assert checkpoints, f"no checkpoint in {sorted(p.name for p in run.rglob('*'))}"
    for path in checkpoints:
        saving.read_artifact(path)
    _, artifact = saving.latest_checkpoint(run)
    assert int((artifact.training_state or {})["epoch"]) >= 1


def test_batchnorm_statistics_per_rank_moving_statistics_averaged() -> None:
    """One step over 8 samples on 2 ranks: each rank normalizes with its 4 samples' statistics;
    moving mean = the whole batch's (as one process), moving variance = mean of the shards'."""
    result = launch("batchnorm")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    x = np.asarray(out["x"], dtype=np.float64)
    halves = (x[:4], x[4:])
    momentum = 0.99
    mean = (1 - momentum) * np.mean([h.mean(axis=0) for h in halves], axis=0)
    var = momentum + (1 - momentum) * np.mean([h.var(axis=0) for h in halves], axis=0)
    np.testing.assert_allclose(out["moving_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(out["moving_mean"], (1 - momentum) * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(out["moving_variance"], var, rtol=1e-6)


@pytest.mark.gpu
def test_two_ranks_on_gpus_sum_with_nccl(tmp_path: Path) -> None:
    """On CuPy each rank takes its local GPU and the gradient is summed by NCCL (the `gpu` marker
    skips it without one: tests/conftest.py)."""
    train_one("iris_mlp", tmp_path / "one", "--set", "fit.epochs=3")
    two = train_mpi("iris_mlp", tmp_path / "two", "--set", "fit.epochs=3", "--device", "gpu")
    assert two.returncode == 0, two.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two", rtol=1e-4)


def test_forced_on_one_process_is_a_world_of_one(tmp_path: Path) -> None:
    """`fit.distributed.enabled: true` without a launcher: MPI's singleton world, same run."""
    train_one("iris_mlp", tmp_path / "one", "--set", "fit.epochs=2")
    command = [sys.executable, str(WORKER), "cli", "none", "--", "train"]
    command += [str(ROOT / "specs" / "iris_mlp.yaml"), "--out", str(tmp_path / "forced")]
    command += ["--set", "fit.epochs=2", "--set", "fit.distributed.enabled=true"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert result.returncode == 0, result.stderr
    assert "Data-parallel over 1 rank (" in result.stdout
    assert_same_run(tmp_path / "one", tmp_path / "forced")


def ctrl_c_once_checkpointed(
    args: list[str], run: Path, cwd: Path | None = None
) -> tuple[str, str]:
    """stdout and stderr of `modelspec ARGS` on 2 ranks, sent SIGINT (to mpirun, as a terminal's
    Ctrl-C reaches it) once `run` holds a checkpoint. Ranks still running TIMEOUT later fail
    the test with their output, and are killed: a hung job must not outlive it."""
    assert MPIRUN is not None
    command = [*mpirun_command(2, MPIRUN), sys.executable, str(WORKER), "cli", "none", "--"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not saving.list_checkpoints(run) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        for pid in re.findall(r"rank \d+ pid (\d+)", stdout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        pytest.fail(f"the ranks did not end after SIGINT:\n{stdout}\n{stderr}")
    finally:
        proc.kill()


def test_ctrl_c_stops_every_rank_at_the_same_step_and_rank_0_saves(tmp_path: Path) -> None:
    """SIGINT to mpirun reaches every rank; the step's agreement makes them all stop together."""
    out = tmp_path / "run"
    args = ["train", str(ROOT / "specs" / "iris_mlp.yaml"), "--out", str(out)]
    args += ["--set", "fit.epochs=100000", "--set", "fit.callbacks=[]"]
    stdout, stderr = ctrl_c_once_checkpointed(args, out)
    assert "Interrupted: saving the model as it is now." in stdout, stderr
    assert stdout.count("Saved the run to") == 1
    saving.read_artifact(out)
    assert len(history(out)["loss"]) >= 1
