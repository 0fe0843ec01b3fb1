"""A process killed with SIGKILL while writing checkpoints leaves the last complete one loadable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine import saving

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")

WRITER = """
import sys
import numpy as np
from engine import saving
run_dir = sys.argv[1]
epoch = 0
while True:
    weights = {"dense/kernel": np.full((512, 512), epoch, np.float32)}
    artifact = saving.Artifact(spec={"epoch": epoch}, weights=weights, metadata={"epoch": epoch})
    saving.write_checkpoint(run_dir, epoch, artifact)
    epoch += 1
"""


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the writer made no progress")
        time.sleep(0.01)


@pytest.mark.parametrize("extra_wait", [0.0, 0.023])
def test_sigkill_mid_write_leaves_a_complete_checkpoint(tmp_path: Path, extra_wait: float) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=env)
    try:
        _wait_for(lambda: len(saving.list_checkpoints(tmp_path)) >= 2)
        time.sleep(extra_wait)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for path in saving.list_checkpoints(tmp_path):
        saving.read_artifact(path)
    path, artifact = saving.latest_checkpoint(tmp_path)
    epoch = artifact.metadata["epoch"]
    assert path == saving.checkpoint_path(tmp_path, epoch)
    np.testing.assert_array_equal(artifact.weights["dense/kernel"], np.float32(epoch))
