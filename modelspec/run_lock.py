"""One training run per run folder: a lock file naming the owner's pid and host."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from modelspec.errors import RunError

LOCK_FILE = ".lock"


class RunFolderLocked(RunError):
    """Another live run is training into this folder."""


def _owner() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _read(lock: Path) -> dict[str, object] | None:
    """The lock's owner, or None when the file is gone or was left half-written by a crash."""
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _stale(owner: dict[str, object] | None) -> bool:
    """A lock whose process is gone; a lock from another host is never judged stale."""
    if owner is None:
        return True
    return owner.get("host") == socket.gethostname() and not _alive(owner.get("pid"))


def _try_create(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(_owner(), handle)
    return True


def acquire(run_dir: Path) -> Path:
    """Take `run_dir`'s lock, replacing a stale one; raise RunFolderLocked if a run holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_FILE
    for _ in range(2):
        if _try_create(lock):
            return lock
        owner = _read(lock)
        if not _stale(owner):
            assert owner is not None
            raise RunFolderLocked(
                f"{run_dir} is in use by another training run (pid {owner.get('pid')} on "
                f"{owner.get('host')}); wait for it, or choose another --out. If that run is "
                f"gone, delete {lock}."
            )
        lock.unlink(missing_ok=True)
    raise RunFolderLocked(f"{run_dir} is being locked by another run at this moment; try again")


def release(lock: Path) -> None:
    """Remove the lock if it is still ours."""
    if _read(lock) == _owner():
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(run_dir: Path, take: bool = True) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block (`take=False`: a follower rank, which writes nothing)."""
    if not take:
        yield
        return
    lock = acquire(run_dir)
    try:
        yield
    finally:
        release(lock)
