"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

# mkstemp makes files private; written artifacts, reports and exports are shared like any file
SHARED_FILE_MODE = 0o644


class FileWriteError(OSError):
    """A file could not be written (a full disk, an I/O error): names the file; the old one,
    if any, is left as it was and no temporary file remains."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, f"could not write {path}: {cause.strerror or cause}")
        self.path = path

    def __str__(self) -> str:
        return str(self.args[1])


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so a reader (or a crash) sees the old file or the new, never half.

    A failing write (ENOSPC, EIO, ...) raises FileWriteError naming `path`."""
    target = Path(path)
    try:
        _write(target, data)
    except FileWriteError:
        raise
    except OSError as exc:
        raise FileWriteError(target, exc) from exc


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, SHARED_FILE_MODE)  # mkstemp makes it private; artifacts are shared
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
