"""Two trainings into one run folder: the second is refused; a dead run's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelspec import run_lock
from tests.cli.test_run import run


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def _lock(folder: Path, pid: int, host: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / run_lock.LOCK_FILE
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))
    return path


def test_a_held_folder_is_refused_naming_the_owner(tmp_path: Path) -> None:
    lock = run_lock.acquire(tmp_path)
    with pytest.raises(run_lock.RunFolderLocked, match=f"pid {os.getpid()} on "):
        run_lock.acquire(tmp_path)
    run_lock.release(lock)
    assert not lock.exists()
    run_lock.release(run_lock.acquire(tmp_path))


@pytest.mark.parametrize("content", ["dead", "garbage", "empty"])
def test_a_stale_lock_is_taken_over(tmp_path: Path, content: str) -> None:
    path = _lock(tmp_path, _dead_pid())
    if content != "dead":
        path.write_text("" if content == "empty" else "{not json")
    lock = run_lock.acquire(tmp_path)
    assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    run_lock.release(lock)


def test_a_lock_from_another_host_is_never_judged_stale(tmp_path: Path) -> None:
    _lock(tmp_path, _dead_pid(), host="some-other-node")
    with pytest.raises(run_lock.RunFolderLocked, match="on some-other-node"):
        run_lock.acquire(tmp_path)


def test_release_leaves_another_runs_lock(tmp_path: Path) -> None:
    path = _lock(tmp_path, os.getppid())
    run_lock.release(path)
    assert path.exists()


def test_train_into_a_folder_in_use_is_refused(project: Path) -> None:
    spec = str(project / "specs" / "tiny.yaml")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) as owner:
        try:
            _lock(Path("runs/tiny"), owner.pid)
            code, out, err = run("train", spec)
        finally:
            owner.kill()
    assert code == 1
    assert f"runs/tiny is in use by another training run (pid {owner.pid} on" in err
    assert not (Path("runs/tiny") / "checkpoints").exists()
    assert not (Path("runs/tiny") / "model.msz").exists()


def test_train_releases_its_lock(project: Path) -> None:
    assert run("train", str(project / "specs" / "tiny.yaml"))[0] == 0
    assert (Path("runs/tiny") / "model.msz").is_file()
    assert not (Path("runs/tiny") / run_lock.LOCK_FILE).exists()
    assert run("train", str(project / "specs" / "tiny.yaml"))[0] == 0
